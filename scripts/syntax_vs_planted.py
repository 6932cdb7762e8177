"""Rule syntax_vs_planted: marginalised syntax with the planted curves overlaid (workflow/rules/interpret.smk)."""
from bpnet.interpret.truth import plot_against_planted
from bpnet.runner import run_rule


def main(smk, log):
    plot_against_planted(smk.input.syntax, smk.input.planted, smk.output.plots, log=log)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
