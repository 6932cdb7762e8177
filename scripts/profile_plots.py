from bpnet.runner import run_rule
from bpnet.steps.evaluate import profile_plots_main

run_rule(snakemake, profile_plots_main)  # noqa: F821 (snakemake is injected by the script: directive)
