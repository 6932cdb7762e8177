"""Rule ism_track: one task's bigWig of the per-base max |ISM effect| (workflow/rules/interpret.smk)."""
from bpnet.interpret.ism import write_max_effect_track
from bpnet.runner import run_rule


def main(smk, log):
    write_max_effect_track(smk.input.npz, smk.input.chrom_sizes, smk.wildcards.task, smk.output.track, log=log)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
