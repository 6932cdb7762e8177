"""Rule import_weights: published (or other) weights in the trained model's place (workflow/rules/train.smk)."""
from bpnet.model.weights import import_checkpoint
from bpnet.runner import run_rule


def main(smk, log):
    import_checkpoint(smk.input.weights, smk.input.dataset, smk.output.model, expected=smk.params.model, log=log)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
