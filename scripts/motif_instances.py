"""Rule motif_instances: CWM scanning of every task's patterns for motif instances (workflow/rules/interpret.smk)."""
from bpnet.interpret.instances import call_instances
from bpnet.runner import run_rule


def main(smk, log):
    call_instances(
        smk.input.contrib,
        dict(zip(smk.params.tasks, smk.input.h5)),
        smk.input.known,
        smk.output.instances,
        smk.output.motifs,
        interpretation=smk.params.interpretation,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
