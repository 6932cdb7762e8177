from bpnet.steps.experiments import ensemble_main
from bpnet.runner import run_rule

run_rule(snakemake, ensemble_main)
