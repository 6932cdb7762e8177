from bpnet.runner import run_rule
from bpnet.data.download import extract_main
run_rule(snakemake, extract_main)  # noqa: F821 (injected by Snakemake)
