"""Rule evaluate: the paper's metrics of the model (and the oracle) (workflow/rules/evaluate.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.evaluate import evaluate_predictions


def main(smk, log):
    evaluate_predictions(
        smk.input.dataset,
        dict(zip(smk.params.names, smk.input.predictions, strict=True)),
        smk.params.tasks,
        smk.params.evaluation,
        smk.output.metrics,
        smk.output.summary,
        smk.output.plot,
        seed=smk.params.seed,
        threads=smk.threads,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
