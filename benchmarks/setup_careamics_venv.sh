#!/usr/bin/env bash
# Create the separate virtual environment with CAREamics 0.3.5 that
# benchmarks/restoration_fmd.py uses as the external reference (via
# benchmarks/careamics_runner.py). Not part of the test suite.
#
#   bash benchmarks/setup_careamics_venv.sh [VENV]   # default bench_out/careamics-venv
#
# Order matters: the CPU build of torch 2.13.0 goes in FIRST and is then pinned with a
# constraints file, so no later step can swap it for a CUDA build (GBs). CAREamics is
# installed with --no-deps and its requirements (from the wheel's METADATA) are installed
# explicitly, leaving out torchvision: it has no working CPU build here, and CAREamics only
# imports it for one crop function, which careamics_runner.py provides with a stand-in.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$REPO/bench_out/careamics-venv}"
PY="${PYTHON:-python3}"

mkdir -p "$(dirname "$VENV")"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"

# 1. torch first (the CPU wheel; any other torch spec pulls the CUDA wheels).
$PIP install torch==2.13.0

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==2.13.0" > "$CONSTRAINTS"

# 2. CAREamics itself, without its dependencies.
$PIP install --no-deps careamics==0.3.5

# 3. Its requirements (careamics 0.3.5 METADATA Requires-Dist), minus torchvision,
#    with torch held at 2.13.0.
$PIP install -c "$CONSTRAINTS" \
    "bioimageio-core>=0.9.0,<=0.11.0" \
    "lightning>=2.2,<=2.6.6,!=2.6.2,!=2.6.3" \
    "matplotlib<=3.11.2" \
    "microssim<=0.0.5" \
    "numpy>=1.21,<=2.4.6" \
    "pillow<=13.0.0" \
    "psutil<=7.2.2" \
    "pydantic>=2.11,<=2.14.1" \
    "pyyaml<=6.0.3,!=6.0.0" \
    "scikit-image<=0.26.0" \
    "tifffile<=2026.3.3" \
    "torchmetrics>0.7.0,<1.9.0" \
    "zarr>=3.0.0,<4.0.0"

"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
import torch
print("torch", torch.__version__, "| careamics", md.version("careamics"))
try:
    md.version("torchvision")
    print("WARNING: torchvision got installed; careamics_runner.py replaces it with a stand-in")
except md.PackageNotFoundError:
    print("torchvision: not installed (careamics_runner.py provides a stand-in)")
EOF
echo "CAREamics venv ready: $VENV"
