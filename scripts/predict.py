"""Rule predict: the trained model's predictions on the evaluation splits (workflow/rules/train.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.predict import predict_dataset


def main(smk, log):
    predict_dataset(
        smk.input.dataset,
        smk.input.model,
        smk.output.predictions,
        smk.params.splits,
        device=smk.params.device,
        kernels=smk.params.kernels,
        threads=smk.threads,
        rc_average=smk.params.rc_average,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
