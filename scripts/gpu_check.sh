#!/usr/bin/env bash
# The prepared GPU check: `make bench`, then the whole Table 2 grid on ../shared/data/ham10000-mel-nv, timings and
# the grid table in artifacts/gpu_check/gpu_check.md. Installs nothing beyond the pinned stack (the venv of
# `make install`). `scripts/gpu_check.sh --tiny` is the CPU smoke mode run in CI (no `make bench`, seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
VPY="${VPY:-.venv/bin/python}"
if [[ " $* " != *" --tiny "* ]]; then
  "$VPY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu_check: no CUDA device (use --tiny on CPU)")'
  make bench
fi
exec "$VPY" -m moleport.train.gpu_check "$@"
