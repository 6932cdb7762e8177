from bpnet.runner import run_rule
from bpnet.training import main

run_rule(snakemake, main)
