"""Character-level language modelling data: a corpus that ships with Python, a vocabulary, batches.

Miconi et al. 2019 (Backpropamine) also evaluate neuromodulated plastic LSTMs on language
modelling (Penn Treebank, word level). No corpus can be downloaded here, so the reproduction models
characters of the Python standard library's own source code, which every Python installation carries;
:func:`read_corpus` takes any UTF-8 text file instead.

Quality is reported in bits per character: mean cross-entropy in nats divided by ln 2.
"""

from __future__ import annotations

import math
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from neuroplastic._checks import check_fraction, check_int, check_number, check_values
from neuroplastic.tasks._common import check_generator

__all__ = [
    "stdlib_corpus",
    "stdlib_source_files",
    "read_corpus",
    "CharVocabulary",
    "char_batches",
    "split_corpus",
    "sequential_batches",
    "bits_per_character",
]

EXCLUDED_DIRS = frozenset({"test", "tests", "idlelib", "site-packages", "dist-packages"})


def stdlib_source_files() -> list[Path]:
    """The standard library's ``.py`` files, sorted by relative path, without tests, IDLE or site packages.

    Returns:
        Paths under ``sysconfig.get_paths()["stdlib"]`` whose directories include none of ``test``,
        ``tests``, ``idlelib``, ``site-packages``, ``dist-packages``; sorted by their POSIX relative path.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise FileNotFoundError(f"the standard library directory {root} does not exist on this Python")
    files = []
    for path in root.rglob("*.py"):
        relative = path.relative_to(root)
        if EXCLUDED_DIRS.isdisjoint(relative.parts[:-1]) and path.is_file():
            files.append((relative.as_posix(), path))
    files.sort()
    return [path for _, path in files]


def stdlib_corpus(max_chars: int | None = None) -> str:
    """Concatenate the Python standard library's own source files into one text, deterministically.

    Miconi et al. 2019 (Backpropamine) use a language-modelling benchmark; this is an offline stand-in.
    Files come from :func:`stdlib_source_files` in sorted order; each is decoded as UTF-8 (files that are
    not valid UTF-8 are skipped) and ends with a newline. The same Python version gives the same text.

    Args:
        max_chars: cut the text to at most this many characters (None: the whole library, ~10 M chars).

    Returns:
        The corpus as one string.
    """
    if max_chars is not None:
        check_int("max_chars", max_chars)
    parts: list[str] = []
    total = 0
    for path in stdlib_source_files():
        try:
            text = path.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if not text:
            continue
        if not text.endswith("\n"):
            text += "\n"
        parts.append(text)
        total += len(text)
        if max_chars is not None and total >= max_chars:
            break
    corpus = "".join(parts)
    return corpus if max_chars is None else corpus[:max_chars]


def read_corpus(path: str | Path, *, encoding: str = "utf-8") -> str:
    """Read a text corpus from a user file.

    Args:
        path: a text file.
        encoding: its encoding (default UTF-8).

    Returns:
        The file's text.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the path is a directory, the file is empty, or it is not text in ``encoding``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no corpus file at {path}")
    if not path.is_file():
        raise ValueError(f"path must be a text file, got a directory or special file: {path}")
    data = path.read_bytes()
    if not data:
        raise ValueError(f"path: the corpus file {path} is empty")
    if b"\x00" in data:
        raise ValueError(f"path: {path} contains NUL bytes, so it is binary, not text")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        reason = f"{err.reason} at byte {err.start}"
        raise ValueError(f"path: {path} is not valid {encoding} text ({reason})") from err
    except LookupError as err:
        raise ValueError(f"encoding must be a codec name known to Python, got {encoding!r}") from err


class CharVocabulary:
    """A character vocabulary: the sorted distinct characters of a text, each mapped to its rank.

    Args:
        text: the text whose characters make up the vocabulary (non-empty).

    Attributes:
        chars: the characters, sorted by code point; ``chars[i]`` has id ``i``.
        size: number of characters.
    """

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError("text must be a non-empty string to build a vocabulary from")
        self.chars: tuple[str, ...] = tuple(sorted(set(text)))
        self._index = {c: i for i, c in enumerate(self.chars)}
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.int64)  # sorted code points

    @property
    def size(self) -> int:
        """Number of distinct characters."""
        return len(self.chars)

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"CharVocabulary(size={self.size})"

    def encode(self, text: str) -> torch.Tensor:
        """Map a text to character ids.

        Args:
            text: made only of characters in the vocabulary.

        Returns:
            ``[L]`` long tensor, ``L = len(text)``.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        codes = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype="<u4").astype(np.int64)
        ids = np.searchsorted(self._codes, codes).clip(max=self.size - 1)
        if not np.array_equal(self._codes[ids], codes):
            unknown = sorted(set(text) - set(self._index))
            shown = ", ".join(repr(c) for c in unknown[:10]) + (", ..." if len(unknown) > 10 else "")
            raise ValueError(f"text has {len(unknown)} character(s) outside the vocabulary: {shown}")
        return torch.from_numpy(ids)

    def decode(self, ids: torch.Tensor | Iterable[int]) -> str:
        """Map character ids back to text.

        Args:
            ids: a 1-D long tensor ``[L]`` or any iterable of ints in ``0 .. size - 1``.

        Returns:
            The text of length ``L``.
        """
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"ids must be a 1-D tensor, got shape {list(ids.shape)}")
            ids = ids.tolist()
        out = []
        for k, i in enumerate(ids):
            out.append(self.chars[check_int(f"ids[{k}]", i, minimum=0, maximum=self.size - 1)])
        return "".join(out)


def _check_encoded(encoded: object, min_length: int) -> torch.Tensor:
    """An encoded text: a 1-d long tensor of character ids with at least ``min_length`` entries."""
    if not isinstance(encoded, torch.Tensor):
        raise TypeError(f"encoded must be a torch.Tensor of character ids, got {type(encoded).__name__}")
    if encoded.dim() != 1 or encoded.dtype != torch.long:
        raise ValueError(
            f"encoded must be a 1-D long tensor [L], got shape {list(encoded.shape)} of {encoded.dtype}"
        )
    if encoded.numel() < min_length:
        raise ValueError(f"encoded must hold at least {min_length} characters here, got {encoded.numel()}")
    return encoded


def char_batches(
    encoded: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw random training windows from an encoded corpus, with next-character targets.

    Args:
        encoded: ``[L]`` long character ids, ``L >= seq_len + 1``.
        batch_size: windows ``B``.
        seq_len: window length ``T``.
        generator: CPU ``torch.Generator``; window starts are uniform over ``0 .. L - T - 1``.

    Returns:
        ``(inputs, targets)``, both ``[B, T]`` long on ``encoded``'s device, with
        ``targets[:, t] == inputs[:, t + 1]`` for ``t < T - 1`` (the text shifted by one character).
    """
    check_int("batch_size", batch_size)
    check_int("seq_len", seq_len)
    generator = check_generator(generator)
    encoded = _check_encoded(encoded, seq_len + 1)
    starts = torch.randint(0, encoded.numel() - seq_len, (batch_size,), generator=generator)
    index = (starts.unsqueeze(1) + torch.arange(seq_len + 1)).to(encoded.device)
    windows = encoded[index]
    return windows[:, :-1], windows[:, 1:]


def split_corpus(encoded: torch.Tensor, valid_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Split an encoded corpus into a leading training part and a trailing validation part (contiguous).

    Args:
        encoded: ``[L]`` long character ids.
        valid_fraction: share of characters for validation, in (0, 1); ``round(valid_fraction * L)``.

    Returns:
        ``(train [L - V], valid [V])``, both with at least 2 characters.
    """
    valid_fraction = check_fraction("valid_fraction", valid_fraction, low_open=True, high_open=True)
    encoded = _check_encoded(encoded, 4)
    n_valid = int(round(valid_fraction * encoded.numel()))
    n_valid = min(max(n_valid, 2), encoded.numel() - 2)
    return encoded[:-n_valid], encoded[-n_valid:]


def sequential_batches(
    encoded: torch.Tensor, batch_size: int, seq_len: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Iterate over an encoded corpus in order, as ``B`` parallel contiguous streams, for evaluation.

    The corpus is cut into ``B`` equal streams of ``n = (L - 1) // B`` characters (stream ``b`` covers
    ``encoded[b*n : (b+1)*n]``, its targets ``encoded[b*n+1 : (b+1)*n+1]``); the trailing remainder is
    dropped. Chunks of ``T = seq_len`` steps are yielded in order (the last may be shorter), so a stateful
    model can carry its state from one chunk to the next. Every position is predicted exactly once.

    Args:
        encoded: ``[L]`` long character ids, ``L >= batch_size + 1``.
        batch_size: streams ``B``.
        seq_len: chunk length ``T``.

    Yields:
        ``(inputs, targets)``, both ``[B, T']`` long with ``T' <= T``, targets shifted by one.
    """
    check_int("batch_size", batch_size)
    check_int("seq_len", seq_len)
    encoded = _check_encoded(encoded, batch_size + 1)
    n = (encoded.numel() - 1) // batch_size
    inputs = encoded[: batch_size * n].reshape(batch_size, n)
    targets = encoded[1 : batch_size * n + 1].reshape(batch_size, n)
    for start in range(0, n, seq_len):
        yield inputs[:, start : start + seq_len], targets[:, start : start + seq_len]


def bits_per_character(mean_cross_entropy_nats: float | torch.Tensor) -> float:
    """Convert a mean per-character cross-entropy in nats into bits per character (divide by ln 2).

    Args:
        mean_cross_entropy_nats: a non-negative number or a one-element tensor (e.g.
            ``F.cross_entropy(...)``, which is in nats).

    Returns:
        Bits per character as a float.
    """
    if isinstance(mean_cross_entropy_nats, torch.Tensor):
        if mean_cross_entropy_nats.numel() != 1:
            raise ValueError(
                "mean_cross_entropy_nats must be a number or a one-element tensor, "
                f"got shape {list(mean_cross_entropy_nats.shape)}"
            )
        value = float(check_number("mean_cross_entropy_nats", float(mean_cross_entropy_nats.detach().item()),
                                   minimum=0))
    else:
        value = float(check_values("mean_cross_entropy_nats", mean_cross_entropy_nats, minimum=0))
    return value / math.log(2)
