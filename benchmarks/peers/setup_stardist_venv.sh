#!/usr/bin/env bash
# Create the separate virtual environment with StarDist 0.9.2 (+ CSBDeep, TensorFlow CPU)
# that benchmarks/peers/stardist_runner.py runs in. Not part of the test suite.
#
#   bash benchmarks/peers/setup_stardist_venv.sh [VENV]   # default bench_out/peers-venvs/stardist
#
# Everything is installed now from the package registry; at run time nothing is downloaded
# (StarDist trains from scratch, no pretrained weights).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${1:-$REPO/bench_out/peers-venvs/stardist}"
PY="${PYTHON:-python3}"

mkdir -p "$(dirname "$VENV")"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"

$PIP install --upgrade pip
# tensorflow-cpu only: the plain "tensorflow" wheel pulls the CUDA libraries.
$PIP install "tensorflow-cpu==2.21.*" "stardist==0.9.2" csbdeep tifffile

"$VENV/bin/python" - <<'PYEOF'
import importlib.metadata as md
import tensorflow as tf
import stardist
print("tensorflow", tf.__version__, "| stardist", stardist.__version__,
      "| csbdeep", md.version("csbdeep"))
PYEOF
echo "StarDist venv ready: $VENV"
