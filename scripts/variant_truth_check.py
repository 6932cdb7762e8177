"""Rule variant_truth_check: predicted against planted variant effects (workflow/rules/variants.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.variants import write_truth_check


def main(smk, log):
    write_truth_check(smk.input.scores, smk.input.effects, smk.output.table, log=log)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
