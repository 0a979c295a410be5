#!/usr/bin/env bash
# Create the separate virtual environment with Cellpose 3.1.1.3 that
# benchmarks/peers/cellpose_runner.py runs in. Not part of the test suite.
#
#   bash benchmarks/peers/setup_cellpose_venv.sh [VENV]   # default bench_out/peers-venvs/cellpose
#
# Order matters: the CPU build of torch 2.13.0 goes in FIRST and is then pinned with a
# constraints file, so no later step can swap it for a CUDA build (GBs). Cellpose is
# installed with --no-deps and its requirements are installed explicitly: that keeps
# out the GUI stack and any torch spec that would pull CUDA. Cellpose 3 trains from
# scratch offline (pretrained_model=None); its pretrained weights are never fetched.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${1:-$REPO/bench_out/peers-venvs/cellpose}"
PY="${PYTHON:-python3}"

mkdir -p "$(dirname "$VENV")"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"

$PIP install --upgrade pip
# 1. torch first (the CPU wheel; any other torch spec pulls the CUDA wheels).
$PIP install torch==2.13.0

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==2.13.0" > "$CONSTRAINTS"

# 2. Cellpose itself, without its dependencies.
$PIP install --no-deps cellpose==3.1.1.3

# 3. Its core requirements (cellpose 3.1.1.3 METADATA Requires-Dist, no GUI extras),
#    with torch held at 2.13.0.
$PIP install -c "$CONSTRAINTS" \
    "numpy>=1.20.0,<2.1" scipy natsort tifffile tqdm "numba>=0.53.0" llvmlite \
    opencv-python-headless fastremap imagecodecs roifile fill-voids

"$VENV/bin/python" - <<'PYEOF'
import importlib.metadata as md
import torch
from cellpose import models  # noqa: F401
print("torch", torch.__version__, "| cellpose", md.version("cellpose"))
PYEOF
echo "Cellpose venv ready: $VENV"
