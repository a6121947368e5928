import math
import sysconfig
from pathlib import Path

import pytest
import torch

from neuroplastic.tasks import (
    CharVocabulary,
    bits_per_character,
    char_batches,
    read_corpus,
    sequential_batches,
    split_corpus,
    stdlib_corpus,
    stdlib_source_files,
)

TEXT = "def f(x):\n    return x * 2  # double\n" * 20


def test_vocabulary_round_trip_and_order():
    vocab = CharVocabulary(TEXT)
    assert list(vocab.chars) == sorted(set(TEXT))
    assert vocab.size == len(set(TEXT)) == len(vocab)
    ids = vocab.encode(TEXT)
    assert ids.dtype == torch.long and ids.shape == (len(TEXT),)
    assert vocab.decode(ids) == TEXT
    assert vocab.decode([0, 1]) == vocab.chars[0] + vocab.chars[1]
    assert vocab.encode(" ").tolist() == [vocab.chars.index(" ")]
    unicode = CharVocabulary("héllo ✓\n")
    assert unicode.decode(unicode.encode("✓ héllo")) == "✓ héllo"


def test_vocabulary_errors():
    vocab = CharVocabulary("abc")
    with pytest.raises(ValueError, match="outside the vocabulary: 'z'"):
        vocab.encode("abz")
    with pytest.raises(ValueError, match="ids"):
        vocab.decode([3])
    with pytest.raises(ValueError, match="text"):
        CharVocabulary("")


def test_char_batches_are_aligned_windows_of_the_corpus():
    vocab = CharVocabulary(TEXT)
    encoded = vocab.encode(TEXT)
    inputs, targets = char_batches(encoded, 16, 25, torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (16, 25)
    assert torch.equal(targets[:, :-1], inputs[:, 1:])
    for b in range(16):
        window = vocab.decode(inputs[b]) + vocab.decode(targets[b, -1:])
        assert window in TEXT


def test_char_batches_reach_both_ends_and_are_seeded():
    encoded = torch.arange(12)
    inputs, targets = char_batches(encoded, 400, 5, torch.Generator().manual_seed(0))
    assert int(inputs[:, 0].min()) == 0 and int(targets[:, -1].max()) == 11
    again = char_batches(encoded, 400, 5, torch.Generator().manual_seed(0))
    assert torch.equal(inputs, again[0]) and torch.equal(targets, again[1])
    with pytest.raises(ValueError, match="encoded"):
        char_batches(torch.arange(5), 2, 5, torch.Generator())
    with pytest.raises(ValueError, match="seq_len"):
        char_batches(encoded, 2, 0, torch.Generator())


def test_split_corpus():
    encoded = torch.arange(100)
    train, valid = split_corpus(encoded, 0.1)
    assert len(valid) == 10 and torch.equal(torch.cat([train, valid]), encoded)
    with pytest.raises(ValueError, match="valid_fraction"):
        split_corpus(encoded, 1.0)


def test_sequential_batches_cover_every_position_once_in_order():
    encoded = torch.arange(103)
    chunks = list(sequential_batches(encoded, 4, 7))
    inputs = torch.cat([x for x, _ in chunks], dim=1)
    targets = torch.cat([y for _, y in chunks], dim=1)
    n = 102 // 4
    assert inputs.shape == (4, n) and [x.shape[1] for x, _ in chunks] == [7, 7, 7, 4]
    assert torch.equal(inputs, torch.arange(4 * n).reshape(4, n))
    assert torch.equal(targets, inputs + 1)


def test_stdlib_corpus_is_deterministic_and_skips_tests():
    text = stdlib_corpus(max_chars=20_000)
    assert len(text) == 20_000 and text == stdlib_corpus(max_chars=20_000)
    files = stdlib_source_files()
    assert len(files) > 100
    assert files == sorted(files, key=lambda p: p.as_posix())
    root = Path(sysconfig.get_paths()["stdlib"])
    excluded = {"test", "tests", "idlelib", "site-packages"}
    assert not any(excluded & set(p.relative_to(root).parts[:-1]) for p in files)
    assert root / "json" / "decoder.py" in files
    first = files[0].read_text(encoding="utf-8")
    assert text.startswith(first[:1000])
    vocab = CharVocabulary(text)
    assert vocab.decode(vocab.encode(text)) == text


def test_read_corpus(tmp_path):
    good = tmp_path / "corpus.txt"
    good.write_text("hello\nworld\n", encoding="utf-8")
    assert read_corpus(good) == "hello\nworld\n"
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_corpus(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        read_corpus(empty)
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match="binary"):
        read_corpus(binary)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="utf-8"):
        read_corpus(latin)
    assert read_corpus(latin, encoding="latin-1") == "café"
    with pytest.raises(ValueError, match="directory"):
        read_corpus(tmp_path)


def test_bits_per_character():
    assert bits_per_character(math.log(2)) == pytest.approx(1.0)
    assert bits_per_character(torch.tensor(2 * math.log(2))) == pytest.approx(2.0)
    assert bits_per_character(0) == 0.0
    with pytest.raises(ValueError, match="mean_cross_entropy_nats"):
        bits_per_character(-1.0)
    with pytest.raises(ValueError, match="mean_cross_entropy_nats"):
        bits_per_character(torch.zeros(3))
