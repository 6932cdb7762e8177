from bpnet.runner import run_rule
from bpnet.model.weights import import_main

run_rule(snakemake, import_main)
