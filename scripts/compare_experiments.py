"""Rule compare_experiments: every experiment's headline metrics side by side (workflow/rules/experiments.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.compare import compare_experiments


def main(smk, log):
    compare_experiments(dict(zip(smk.params.names, smk.input, strict=True)), smk.output.table, smk.output.plot,
                        log=log)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
