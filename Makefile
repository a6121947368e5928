# `make run` and `make test` set everything up on a fresh machine with nothing but Python.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# experiments run at once by `make run` (auto: as many as the cores allow at their thread counts)
JOBS ?= auto

.PHONY: setup run test lint docs bench bench-env clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first and pinned, so that pip does not fetch a multi-GB CUDA build
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[data,dev]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/neuroplastic run --all --budget quick --out runs --jobs $(JOBS) --overwrite
	$(VENV)/bin/neuroplastic report runs --output runs/report.html

# in parallel worker processes (pytest-xdist, one per core); the 15 slowest tests are listed at the end
test: $(STAMP)
	$(PY) -m pytest tests -n auto --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

# the documentation (docs/ and the API reference from the docstrings) as a static site in site/
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --site-dir site

bench: $(STAMP)
	$(PY) benchmarks/plastic_rnn.py --hidden 200 --steps 200 --batch 30
	$(PY) benchmarks/mask_overhead.py
	$(PY) benchmarks/compaction.py
	if [ -x .bench-venv/bin/python ]; then .bench-venv/bin/python benchmarks/snn_layer.py; \
	else $(PY) benchmarks/snn_layer.py; echo "peers not installed: run make bench-env first"; fi
	if [ -x .bench-venv/bin/python ]; then .bench-venv/bin/python benchmarks/evolution.py; \
	else $(PY) benchmarks/evolution.py; echo "EvoTorch not installed: run make bench-env first"; fi
	$(PY) benchmarks/safe_mutation_cost.py --outputs 4,16 --width 64
	$(PY) benchmarks/safe_mutation_cost.py --outputs 4,16 --width 256 --repeats 10
	$(PY) benchmarks/pattern_weights.py --threads 1 --parameters 100
	$(PY) benchmarks/pattern_weights.py --threads 1 --parameters 200
	$(PY) benchmarks/quine_loss.py --hidden 32,32 --embedding 32
	$(PY) benchmarks/simulator.py --batch 1000 --steps 100 --repeats 2
	$(PY) benchmarks/binary_matmul.py --batches 1,64 --repeats 40
	$(PY) benchmarks/clnp_compaction.py --hidden 1000 --tolerance 1
	$(PY) benchmarks/hlop_cost.py --tasks 1,5,10
	if [ -x .bench-venv/bin/python ]; then .bench-venv/bin/python benchmarks/reservoir.py; \
	else echo "reservoirpy not installed: run make bench-env first (benchmarks/reservoir.py skipped)"; fi
	if [ -x .bench-venv-avalanche/bin/python ]; then .bench-venv-avalanche/bin/python benchmarks/continual_metrics_check.py; \
	else echo "Avalanche not installed: run make bench-env first (benchmarks/continual_metrics_check.py skipped)"; fi

# peer libraries, never dependencies: snnTorch, SpikingJelly (Norse in its own venv) for benchmarks/snn_layer.py,
# EvoTorch (with gymnasium and ray) for benchmarks/evolution.py
bench-env:
	bash benchmarks/bench_env.sh

clean:
	rm -rf $(VENV) .bench-venv .bench-venv-norse runs site build *.egg-info src/*.egg-info
