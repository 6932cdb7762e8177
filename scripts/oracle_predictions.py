from bpnet.runner import run_rule
from bpnet.steps.evaluate import oracle_main

run_rule(snakemake, oracle_main)  # noqa: F821 (snakemake is injected by the script: directive)
