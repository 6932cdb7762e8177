from bpnet.runner import run_rule
from bpnet.steps.predict import main

run_rule(snakemake, main)
