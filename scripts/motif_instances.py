from bpnet.runner import run_rule
from bpnet.motifs import instances_main

run_rule(snakemake, instances_main)
