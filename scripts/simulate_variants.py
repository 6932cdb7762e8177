"""Rule simulate_variants: the truth VCF of the simulated dataset and its planted effects (workflow/rules/simulate.smk)."""
from bpnet.runner import run_rule
from bpnet.simulate.variants import simulate_variants


def main(smk, log):
    simulate_variants(smk.input.fasta, smk.input.instances, smk.output.vcf, smk.output.effects,
                      config=smk.params.simulation, width=smk.params.width, log=log)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
