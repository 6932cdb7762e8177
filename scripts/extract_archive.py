from bpnet.runner import run_rule
from bpnet.download import extract_main
run_rule(snakemake, extract_main)  # noqa: F821 (injected by Snakemake)
