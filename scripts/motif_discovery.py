from bpnet.runner import run_rule
from bpnet.motifs import discovery_main

run_rule(snakemake, discovery_main)
