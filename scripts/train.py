from bpnet.runner import run_rule
from bpnet.steps.training import main

run_rule(snakemake, main)
