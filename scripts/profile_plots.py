"""Rule profile_plots: observed vs predicted profiles at the top peaks (workflow/rules/evaluate.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.evaluate import profile_plots


def main(smk, log):
    profile_plots(
        smk.input.dataset,
        dict(zip(smk.params.names, smk.input.predictions, strict=True)),
        smk.params.tasks,
        smk.params.evaluation["splits"],
        smk.params.plots["profile_windows"],
        smk.output.plot,
        log=log,
        flank=smk.params.plots["profile_flank"],
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
