from bpnet.runner import run_rule
from bpnet.motifs import check_main

run_rule(snakemake, check_main)
