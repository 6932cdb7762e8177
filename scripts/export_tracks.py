"""Rules export_tracks_<exp>: predicted tracks as bigWigs per task and strand (workflow/rules/export.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.export import export_tracks


def main(smk, log):
    export_tracks(
        list(smk.output),
        smk.params.tasks,
        smk.params.export,
        smk.input.chrom_sizes,
        dataset=smk.input.get("dataset"),
        predictions=smk.input.get("predictions"),
        parts=list(smk.input.get("parts", [])),
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
