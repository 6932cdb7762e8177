from bpnet.runner import run_rule
from bpnet.data.windows import main
run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
