"""Rule oracle_predictions: the simulated truth at the evaluation windows (workflow/rules/evaluate.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.evaluate import oracle_predictions


def main(smk, log):
    oracle_predictions(
        smk.input.dataset,
        list(smk.input.truth),
        smk.params.tasks,
        smk.params.evaluation["splits"],
        smk.output[0],
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
