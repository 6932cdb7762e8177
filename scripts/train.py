"""Rule train: BPNet fitted on the dataset's train split, early stopping on valid (workflow/rules/train.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.training import train_and_save


def main(smk, log):
    train_and_save(
        smk.input.dataset,
        smk.output.model,
        smk.output.history,
        smk.output.curve,
        smk.params.model,
        smk.params.training,
        seed=smk.params.seed,
        device=smk.params.device,
        kernels=smk.params.kernels,
        threads=smk.threads,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
