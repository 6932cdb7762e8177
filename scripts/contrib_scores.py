"""Rule contrib_scores: DeepLIFT/DeepSHAP contribution scores of the chosen windows (workflow/rules/interpret.smk)."""
from bpnet.interpret.contributions import compute_contributions
from bpnet.runner import run_rule


def main(smk, log):
    compute_contributions(
        smk.input.dataset,
        smk.input.model,
        smk.input.chrom_sizes,
        smk.output.contrib,
        smk.output.tracks,
        list(smk.params.tasks),
        smk.params.interpretation,
        seed=smk.params.seed,
        device=smk.params.device,
        kernels=smk.params.kernels,
        threads=smk.threads,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
