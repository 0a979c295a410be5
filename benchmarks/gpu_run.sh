#!/usr/bin/env bash
# The one command for a bare GPU machine (Python 3.12 with torch, lightning, numpy,
# scipy, scikit-image, tifffile, rich, typer...; nothing can be downloaded there):
# install the carried wheels (.whl, made by gpu_prepare.py) into /tmp/site, run
# gpu_suite.py on the carried data (.gl/data) writing its JSON (after every section) and
# log straight into $OUT (bench_out/gpu when OUT is unset), then copy the JSON to results/raw/.
#
#   bash benchmarks/gpu_run.sh            # BUDGET=480 seconds for the suite's sections
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-$PWD/bench_out/gpu}"
mkdir -p "$OUT" results
PY="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH="$PWD/src:/tmp/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{ date -u; nvidia-smi; } > "$OUT/nvidia-smi.txt" 2>&1
"$PY" -c "import torch, microsight, pydantic, zarr; print('torch', torch.__version__, \
'cuda', torch.cuda.is_available(), 'pydantic', pydantic.__version__)" || exit 1
DATA=()
[ -d .gl/data ] && DATA=(--data .gl/data)
"$PY" benchmarks/gpu_suite.py "${DATA[@]}" --out "$OUT" --budget "${BUDGET:-480}" "$@" 2>&1 \
    | tee "$OUT/gpu_suite.log"
rc=${PIPESTATUS[0]}
mkdir -p results/raw && cp "$OUT"/gpu_*.json results/raw/ 2>/dev/null
exit "$rc"
