from bpnet.runner import run_rule
from bpnet.syntax import main

run_rule(snakemake, main)
