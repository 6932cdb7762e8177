"""Rules export_tracks_<exp>: predicted tracks as bigWigs per task and strand (workflow/rules/export.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.export import export_tracks


def main(smk, log):
    export_tracks(
        list(smk.output),
        smk.params.tasks,
        smk.params.export,
        smk.input.chrom_sizes,
        smk.input.dataset,
        predictions=smk.input.get("predictions"),
        model=smk.input.get("model"),
        fasta=smk.input.get("fasta"),
        control=list(smk.input.get("control", [])),
        device=smk.params.device,
        kernels=smk.params.kernels,
        threads=smk.threads,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
