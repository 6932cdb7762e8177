#!/usr/bin/env bash
# Creates benchmarks/.venv: torch 2.13.0 first (the CPU wheel these machines carry, so pip does
# not fetch the CUDA build), then the project (editable) and the peers of requirements.txt, all
# under constraints.txt so that no dependency replaces torch.
#   bash benchmarks/setup.sh            # PYTHON=python3.11 bash benchmarks/setup.sh for another interpreter
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv"
"${PYTHON:-python3}" -m venv "$venv"
pip() {
    # the machine's pip config names local indexes that lack most packages: drop those notices
    "$venv/bin/python" -m pip install --quiet "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}
pip --upgrade pip
pip "torch==2.13.0"
pip -c "$here/constraints.txt" -e "$root"
# bpnet-lite pulls MACS3, whose cykhash dependency compiles from source: several minutes
pip -c "$here/constraints.txt" -r "$here/requirements.txt"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
import torch
assert torch.__version__.startswith("2.13.0"), torch.__version__
for name in ("torch", "bpnet-pipeline", "bpnet-lite", "tangermeme"):
    print(f"{name} {md.version(name)}")
PY
echo "benchmarks/.venv ready; see benchmarks/README.md for the commands"
