"""Rule region_tracks: bigWigs of the predictions of BED regions at their genome coordinates
(config key predict_regions; workflow/rules/regions.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.regions import write_region_tracks


def main(smk, log):
    write_region_tracks(
        smk.output.tracks,
        smk.input.predictions,
        smk.input.chrom_sizes,
        smk.params.tasks,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
