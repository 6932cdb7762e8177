from bpnet.steps.experiments import compare_main
from bpnet.runner import run_rule

run_rule(snakemake, compare_main)
