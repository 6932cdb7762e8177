from bpnet.runner import run_rule
from bpnet.interpret import main

run_rule(snakemake, main)
