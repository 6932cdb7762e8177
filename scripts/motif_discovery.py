"""Rule motif_discovery: TF-MoDISco lite on one task's contributions, motifs and logos (workflow/rules/interpret.smk)."""
from bpnet.interpret.modisco import discover_motifs
from bpnet.runner import run_rule


def main(smk, log):
    discover_motifs(
        smk.input.contrib,
        smk.input.known,
        smk.output.h5,
        smk.output.meme,
        smk.output.cwms,
        smk.output.patterns,
        smk.output.logos,
        task=smk.wildcards.task,
        interpretation=smk.params.interpretation,
        threads=smk.threads,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
