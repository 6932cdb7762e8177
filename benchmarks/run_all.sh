#!/usr/bin/env bash
# Every benchmark at full size, one after the other, on the data of make_data.py; the tables go to
# stdout and to benchmarks/data/results.md. Run on an otherwise idle machine (about 40 minutes).
#   bash benchmarks/run_all.sh                 # extra arguments go to every script, e.g. --threads 2
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="$here/.venv/bin/python"
[ -x "$py" ] || { echo "no $py: run bash benchmarks/setup.sh first" >&2; exit 2; }
cd "$(dirname "$here")"
"$py" benchmarks/make_data.py
{
    echo "# Benchmarks $(date -u +%Y-%m-%dT%H:%MZ)"
    for script in bench_dataset bench_train bench_predict_export bench_contrib bench_quality; do
        "$py" "benchmarks/$script.py" "$@"
    done
} | tee "$here/data/results.md"
