from bpnet.runner import run_rule
from bpnet.steps.evaluate import main

run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by the script: directive)
