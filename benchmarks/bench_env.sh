#!/usr/bin/env bash
# Benchmark environments with the peer libraries (never dependencies of neuroplastic itself):
#   .bench-venv        torch 2.13.0 (pinned, installed first so pip does not fetch a multi-GB CUDA build),
#                      neuroplastic (editable, with its rl and ray extras: gymnasium, ray), snnTorch,
#                      SpikingJelly, EvoTorch (GymNE and its Ray actors, for benchmarks/evolution.py),
#                      reservoirpy (benchmarks/reservoir.py) and Brevitas (benchmarks/brevitas_compare.py)
#   .bench-venv-norse  Norse (with its nir/nirtorch dependencies, kept apart from SpikingJelly's) and
#                      neuroplastic (editable), on the same pinned torch 2.13.0 (norse accepts torch>=2.0)
#   .bench-venv-avalanche  avalanche-lib (0.6.0) and neuroplastic (editable, data extra) on the same pinned
#                      torch 2.13.0, for benchmarks/continual_metrics_check.py. Kept apart: avalanche requires
#                      torchvision, and PyPI's Linux torchvision (0.28.0 for torch 2.13.0) is a CUDA build whose C
#                      extension cannot load beside the CPU torch, so `import torchvision` raises RuntimeError
#                      ("operator torchvision::nms does not exist"), not ImportError, which would break any peer
#                      that try-imports torchvision; avalanche also pulls wandb, tensorboard, pytorchcv,
#                      torchmetrics and qpsolvers. pip resolves it beside the peers without replacing torch, but
#                      the check script imports avalanche behind a shim that skips torchvision's fake-kernel
#                      registrations (its metrics never call a torchvision operator).
# Every install repeats the torch pin: snnTorch, SpikingJelly and Norse depend on torchvision/torchaudio,
# which would otherwise pull the newest CUDA torch (~5 GB) over the CPU one.
# Usage: bash benchmarks/bench_env.sh   (from the repository root; PYTHON=python3.11 to choose the interpreter)
# Then:  .bench-venv/bin/python benchmarks/snn_layer.py
#        .bench-venv/bin/python benchmarks/evolution.py
#        .bench-venv/bin/python benchmarks/reservoir.py
#        .bench-venv/bin/python benchmarks/brevitas_compare.py
#        .bench-venv-norse/bin/python benchmarks/snn_layer.py --only norse,neuroplastic
#        .bench-venv-avalanche/bin/python benchmarks/continual_metrics_check.py
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

make_venv() {
    local venv="$1"
    test -x "$venv/bin/python" || "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
}

TORCH="torch==2.13.0"
make_venv .bench-venv
.bench-venv/bin/python -m pip install -q "$TORCH"
.bench-venv/bin/python -m pip install -q -e '.[rl,ray]' "$TORCH"
.bench-venv/bin/python -m pip install -q snntorch "$TORCH"
# EvoTorch: GymNE needs gymnasium (CartPole) and ray (its actors); both come with the extras above
.bench-venv/bin/python -m pip install -q evotorch gymnasium ray "$TORCH"
# reservoirpy (numpy/scipy echo-state networks) for benchmarks/reservoir.py
.bench-venv/bin/python -m pip install -q reservoirpy "$TORCH"
# Brevitas (binary QuantLinear / QuantIdentity) for benchmarks/brevitas_compare.py; 0.13.4 accepts torch 2.13
.bench-venv/bin/python -m pip install -q brevitas "$TORCH"
# SpikingJelly 2.x requires torchvision, torchaudio, tensorboard and more for parts the benchmark does not
# use; its neurons and layers need only these:
.bench-venv/bin/python -m pip install -q --no-deps spikingjelly
.bench-venv/bin/python -m pip install -q numpy scipy tqdm loguru packaging "$TORCH"

make_venv .bench-venv-norse
.bench-venv-norse/bin/python -m pip install -q "$TORCH"
.bench-venv-norse/bin/python -m pip install -q norse "$TORCH"
.bench-venv-norse/bin/python -m pip install -q -e . "$TORCH"

make_venv .bench-venv-avalanche
.bench-venv-avalanche/bin/python -m pip install -q "$TORCH"
.bench-venv-avalanche/bin/python -m pip install -q -e '.[data]' avalanche-lib "$TORCH"
.bench-venv-avalanche/bin/python -m pip show avalanche-lib torch torchvision | grep -E '^(Name|Version)'

for venv in .bench-venv .bench-venv-norse; do
    "$venv/bin/python" - <<'EOF'
import importlib, sys
found = []
for name in ("torch", "neuroplastic", "snntorch", "spikingjelly", "evotorch", "gymnasium", "ray", "norse",
             "reservoirpy", "brevitas"):
    try:
        module = importlib.import_module(name)
        found.append(f"{name} {getattr(module, '__version__', '?')}")
    except Exception as error:  # a peer that fails to import is reported, not fatal
        found.append(f"{name} missing ({type(error).__name__})")
print(sys.prefix + ": " + ", ".join(found))
EOF
done
