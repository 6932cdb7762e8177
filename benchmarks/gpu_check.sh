#!/usr/bin/env bash
# GPU check: on a Linux machine with an NVIDIA GPU, prints nvidia-smi's summary and the table of
# benchmarks/bench_gpu.py (training, prediction and contribution-score throughput of BPNet-OSKN,
# bpnet-lite's training step beside it), all within GPU_CHECK_SECONDS (default 480 s).
#
#   bash benchmarks/gpu_check.sh                  # from anywhere; extra arguments go to bench_gpu.py
#   PYTHON=/path/to/python bash benchmarks/gpu_check.sh     # the interpreter to start from
#   TORCH_CUDA=cu126 bash benchmarks/gpu_check.sh           # the CUDA build of torch to install, if one is needed
#
# Environment: benchmarks/.venv-gpu. When it already has a torch that sees the GPU it is used as it
# is. Otherwise, when $PYTHON (or python3, python) has one, the new venv reuses that torch (a .pth
# file puts that interpreter's site-packages after the venv's own) and installs no torch; only when
# none has one is a CUDA build of torch installed from download.pytorch.org (TORCH_CUDA, default
# chosen from the CUDA version nvidia-smi reports). Then the project (pip install -e .; offline,
# where its dependencies cannot be fetched, bench_gpu.py runs from scripts/ on PYTHONPATH, as it
# needs only torch and numpy) and bpnet-lite 1.1.0 + tangermeme 1.6.0 without their dependencies
# (MACS3 would compile for minutes; what bpnetlite imports comes with the project). A step that
# cannot reach the package index is skipped with a message, never an error. Offline with wheels:
# PIP_NO_INDEX=1 PIP_FIND_LINKS=/dir/of/wheels bash benchmarks/gpu_check.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv-gpu"
limit="${GPU_CHECK_SECONDS:-480}"
cd "$root"

say() { printf '\n== %s (%ds)\n' "$*" "$SECONDS" >&2; }
warn() { printf 'gpu_check: %s\n' "$*" >&2; }
pip_in() {  # quiet pip into the venv, bounded: an unreachable index fails in seconds, not minutes
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --retries 1 --timeout 20 "$@" 2>&1 |
        { grep -v "is ignored: it is neither a file nor a directory" || true; }
    return "${PIPESTATUS[0]}"
}
cuda_torch() {  # does interpreter $1 have a torch that sees a GPU?
    "$1" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1
}

say "GPU"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,utilization.gpu,temperature.gpu,clocks.max.sm \
        --format=csv || true
    driver_cuda="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1)"
    echo "driver supports CUDA ${driver_cuda:-?}"
else
    warn "nvidia-smi not found: this machine has no NVIDIA driver, so no GPU to measure (bench_gpu.py --smoke --device cpu checks the code on a CPU)"
    exit 2
fi

say "Python environment"
if [ -x "$venv/bin/python" ] && cuda_torch "$venv/bin/python"; then
    echo "reusing $venv: its torch sees the GPU"
else
    base=""
    for cand in "${PYTHON:-}" python3 python; do
        [ -n "$cand" ] && command -v "$cand" >/dev/null && cuda_torch "$cand" && { base="$cand"; break; }
    done
    # --clear: a venv left by an earlier run without a working torch starts afresh
    "${base:-${PYTHON:-python3}}" -m venv --clear "$venv" || { warn "could not create $venv"; exit 2; }
    echo "*" > "$venv/.gitignore"
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    if [ -n "$base" ]; then
        # the venv sees base's packages (its CUDA torch) after its own
        "$base" -c 'import sys; print("\n".join(p for p in sys.path if p.endswith(("site-packages", "dist-packages"))))' \
            > "$site/_base_python.pth"
        echo "$base has a torch that sees the GPU: $venv reuses it ($(command -v "$base"))"
    else
        if [ -z "${TORCH_CUDA:-}" ]; then
            case "${driver_cuda:-}" in
                13.*) TORCH_CUDA=cu130 ;;
                12.[89]*) TORCH_CUDA=cu128 ;;
                12.[67]*) TORCH_CUDA=cu126 ;;
                *) TORCH_CUDA=cu124 ;;
            esac
        fi
        echo "no Python here has a torch that sees the GPU: installing torch from the $TORCH_CUDA index (a few GB)"
        pip_in --upgrade pip
        pip_in torch --index-url "https://download.pytorch.org/whl/$TORCH_CUDA" ||
            warn "pip could not install torch ($TORCH_CUDA); set TORCH_CUDA to one the driver supports (cu124, cu126, cu128, cu130)"
    fi
fi
py="$venv/bin/python"
if ! cuda_torch "$py"; then
    "$py" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)' 2>&1 || true
    warn "the torch of $venv does not see the GPU; remove $venv and rerun (TORCH_CUDA=cuNNN for another CUDA build)"
    exit 2
fi
torch_version="$("$py" -c 'import torch; print(torch.__version__)')"
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==${torch_version}" > "$constraints"  # nothing below may replace that torch

say "the project"
if "$py" -c 'import bpnet.model.network, bpnet.interpret' 2>/dev/null && [ "$("$py" -c 'import bpnet, os; print(os.path.dirname(bpnet.__file__))')" = "$root/scripts/bpnet" ]; then
    echo "bpnet already installed from $root"
elif pip_in -c "$constraints" -e "$root"; then
    echo "pip install -e . done"
else
    warn "pip install -e . failed (no package index, or a conflict with torch $torch_version): running from $root/scripts on PYTHONPATH instead"
    export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
fi
"$py" -c 'import bpnet.model.network, bpnet.interpret, bpnet.steps.predict' || { warn "bpnet cannot be imported"; exit 2; }

say "bpnet-lite (the peer)"
lite_import='from bpnetlite import BPNet; from bpnetlite.losses import _mixture_loss'
if "$py" -c "$lite_import" 2>/dev/null; then
    echo "bpnet-lite already importable"
elif pip_in -c "$constraints" --no-deps bpnet-lite==1.1.0 tangermeme==1.6.0 && "$py" -c "$lite_import" 2>/dev/null; then
    echo "bpnet-lite 1.1.0 installed (without its dependencies)"
else
    "$py" -c "$lite_import" 2>&1 | tail -n 1 >&2 || true
    warn "bpnet-lite could not be installed or imported (no package index?): its row is skipped"
fi

say "benchmark"
left=$((limit - SECONDS - 15))
if [ "$left" -lt 60 ]; then
    warn "only ${left}s of the ${limit}s left after the setup: running the eager cases only"
    set -- --skip compile "$@"
    left=60
fi
# compiled cases start only while 150 s remain for the last of them; SIGINT at the limit still prints the table
budget=$((left - 150 > 0 ? left - 150 : 0))
PYTHONUNBUFFERED=1 timeout -s INT -k 20 "$left" "$py" benchmarks/bench_gpu.py --device cuda --budget-s "$budget" "$@"
rc=$?
say "done"
exit "$rc"
