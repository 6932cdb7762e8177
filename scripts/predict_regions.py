"""Rule region_predictions: the user's BED regions or FASTA sequences predicted by an experiment's
model (config key predict_regions; workflow/rules/regions.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.regions import predict_regions


def main(smk, log):
    predict_regions(
        smk.output.counts,
        smk.output.predictions,
        smk.params.tasks,
        smk.input.model,
        smk.input.dataset,
        bed=smk.input.get("bed"),
        sequences=smk.input.get("sequences"),
        genome=smk.input.get("genome"),
        control=list(smk.input.get("control", [])),
        tile_overlap=smk.params.tile_overlap,
        rc_average=smk.params.rc_average,
        device=smk.params.device,
        kernels=smk.params.kernels,
        threads=smk.threads,
        name=smk.wildcards.name,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
