#!/usr/bin/env bash
# `gpu_bench.py --quick` on a lent device machine. Its image has python3 3.12 with CUDA torch, transformers and
# accelerate but no internet and no diffusers, so `make setup TORCH=torch` there is: the image's torch, plus the
# wheels of what it lacks, made here and carried (this repo's .venv is CPU torch on another Python: no use there).
#
#   here, once:  benchmarks/device_quick.sh wheels         # into build/wheels (ignored by git, about 49 MB)
#   device:      benchmarks/device_quick.sh                # run tool: carry ["build/wheels"], timeout_s 540
#   rerun:       BUDGET_S=100 benchmarks/device_quick.sh   # what a failed first run leaves of the 15 minutes
#
# Results (JSON, markdown, the log, the machine's versions) are written to $OUT as each section ends, so a run
# stopped by the hard timeout still brings back what it measured.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=build/wheels
# The bench's imports that the image lacks, at the versions the CPU tests use (.venv)...
PACKAGES=(diffusers av pydantic pydantic_core annotated-types typing-inspection typing_extensions importlib_metadata
          pyloudnorm ftfy wcwidth torchsde trampoline)
# ...and torchao for fp8 matmuls, the release built for the image's torch (2.11).
TORCHAO=torchao==0.17.0

wheels() {
    local names pins
    names=$(IFS='|'; echo "${PACKAGES[*]}")
    pins=$(.venv/bin/python -m pip freeze | grep -i -x -E "($names)==.*")
    [ "$(wc -l <<<"$pins")" -eq "${#PACKAGES[@]}" ] || { echo "missing from .venv: ${PACKAGES[*]} vs $pins" >&2; exit 1; }
    rm -rf "$WHEELS"
    # shellcheck disable=SC2086  # one pin a word
    .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -d "$WHEELS" $pins "$TORCHAO"
    du -sh "$WHEELS"
}

device() {
    : "${OUT:?run this on the device machine, where OUT is set}"
    local budget=${BUDGET_S:-360}
    # A section that starts just inside the budget may run on (a compiled 720p pass: about 90 s).
    local hard=${HARD_S:-$((${budget%.*} + 120))}
    python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$WHEELS"/*.whl
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1  # `python3 -m` finds the repository from its root
    { nvidia-smi || true; python3 -c "import sys, torch, diffusers, torchao, transformers
print(sys.version, 'torch', torch.__version__, 'cuda', torch.version.cuda, 'diffusers', diffusers.__version__,
      'torchao', torchao.__version__, 'transformers', transformers.__version__)"; } 2>&1 | tee "$OUT/device.txt"
    # A missing package or GPU fails here, in seconds.
    python3 -c "import torch, benchmarks.gpu_bench; assert torch.cuda.is_available(), 'no CUDA GPU'"
    local status=0
    timeout -k 15 "$hard" python3 -m benchmarks.gpu_bench --quick --budget-s "$budget" --out "$OUT" 2>&1 \
        | tee "$OUT/gpu_bench-quick.log" || status=$?
    [ "$status" -eq 124 ] && echo "stopped at the hard timeout of $hard s: $OUT has the sections measured so far"
    exit "$status"
}

case "${1:-device}" in
    wheels) wheels ;;
    device) device ;;
    *) echo "usage: $0 [wheels|device]" >&2; exit 2 ;;
esac
