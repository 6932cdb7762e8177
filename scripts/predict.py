from bpnet.runner import run_rule
from bpnet.predict import main

run_rule(snakemake, main)
