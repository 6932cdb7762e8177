"""Rule export_part: one part of a genome tiling, as bigWigs without zoom levels (workflow/rules/export.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.export import export_part


def main(smk, log):
    export_part(
        smk.output[0],
        smk.params.tasks,
        smk.params.export,
        smk.input.chrom_sizes,
        smk.input.dataset,
        smk.input.model,
        smk.input.fasta,
        part=int(smk.wildcards.part),
        n_parts=int(smk.wildcards.parts),
        control=list(smk.input.get("control", [])),
        device=smk.params.device,
        kernels=smk.params.kernels,
        threads=smk.threads,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
