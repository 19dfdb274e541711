#!/usr/bin/env bash
# One short session on a machine with a CUDA GPU: the CUDA tests and the GPU benchmarks, each
# written to a file under $OUT (default gpu-out/), so a lent device's minutes are spent once.
#   OUT=/somewhere bash benchmarks/gpu_session.sh
# Needs the project's venv (make install) with a CUDA build of torch==2.13.0.
set -u
OUT=${OUT:-gpu-out}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
run() {  # run NAME CMD...: output to $OUT/NAME, the exit status and seconds appended
  local name=$1; shift
  local start=$SECONDS
  "$@" > "$OUT/$name" 2>&1
  echo "exit $? after $((SECONDS - start)) s: $*" >> "$OUT/$name"
}
run nvidia-smi.txt nvidia-smi
run torch.txt "$PY" -c "import torch; print(torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0))"
run cuda-tests.txt "$PY" -m pytest -q -p no:randomly tests/training/test_cuda.py \
    tests/image/test_torch_batch.py tests/image/test_torch_batch_more.py
run torch_batch.md "$PY" benchmarks/torch_batch.py
run train_throughput.md "$PY" benchmarks/train_throughput.py --device cuda --markdown
run optimizer_step.md "$PY" benchmarks/optimizer_step.py --device cuda --markdown
ls -l "$OUT"
