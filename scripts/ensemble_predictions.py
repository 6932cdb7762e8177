"""Rule ensemble_predictions: the members' predictions averaged (workflow/rules/experiments.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.compare import write_ensemble


def main(smk, log):
    write_ensemble(list(smk.input), smk.output[0], log=log)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
