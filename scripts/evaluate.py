from bpnet.runner import run_rule
from bpnet.evaluate import main

run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by the script: directive)
