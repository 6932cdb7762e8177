"""Rule igv_motif_instances: the motif instances as a BED for IGV (workflow/rules/igv.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.igv import write_motif_bed


def main(smk, log):
    write_motif_bed(smk.input.instances, smk.output.bed, list(smk.params.tasks), log=log)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
