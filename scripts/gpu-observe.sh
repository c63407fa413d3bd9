#!/usr/bin/env bash
# Observe a cell on a real GPU, natively, on a machine without network whose Python already
# has torch (the cell's torch build): the cell's other packages come as wheels in .whl/
# (pip download --no-deps of its lock's pins), installed over the machine's own for this run.
# Measures the torch wheel's GPU code (audiomatrix.suite.fatbin, cross-checked with
# torch's own list and cuobjdump where present), then runs the smoke suite raw and with
# compat. Everything lands in $OUT/observed.tgz for `audiomatrix` to collect.
#
#   OUT=/tmp/out scripts/gpu-observe.sh
set -u
out=${OUT:?set OUT to the folder the archive goes to}
work=$(mktemp -d)
site=$work/site
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .whl/*.whl > "$work/pip.log" 2>&1
export PYTHONPATH="$site:$PWD/src" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 COQUI_TOS_AGREED=1
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv \
    > "$work/nvidia-smi.csv" 2>&1
python3 - > "$work/arch.json" 2> "$work/arch.err" <<'PY'
import json, os, time, torch
from audiomatrix.suite import fatbin
started = time.perf_counter()
measured = fatbin.measure_torch(os.path.dirname(torch.__file__))
print(json.dumps({
    "torch": torch.__version__, "cuda": torch.version.cuda,
    "arch_flags": torch._C._cuda_getArchFlags().split(),
    "get_arch_list": torch.cuda.get_arch_list(),
    "device": torch.cuda.get_device_name(0),
    "capability": list(torch.cuda.get_device_capability(0)),
    "fatbin": measured, "fatbin_seconds": round(time.perf_counter() - started, 3),
}, indent=1))
PY
lib=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cuda.so"))')
if command -v cuobjdump > /dev/null; then
    timeout 90 cuobjdump --list-elf "$lib" > "$work/cuobjdump-elf.txt" 2>&1
    timeout 90 cuobjdump --list-ptx "$lib" > "$work/cuobjdump-ptx.txt" 2>&1
fi
timeout 420 python3 -m audiomatrix.suite.run --out "$work/run" --timeout 240 --jobs 2 \
    > "$work/suite.log" 2>&1
echo "suite exit: $?" >> "$work/suite.log"
tar czf "$out/observed.tgz" -C "$work" --exclude=site .
tail -n 30 "$work/suite.log"
