"""Rule score_variants: a VCF's variants scored by the model(s) of an experiment (workflow/rules/variants.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.variants import score_variants


def main(smk, log):
    score_variants(
        smk.input.vcf,
        smk.input.fasta,
        smk.input.chrom_sizes,
        list(smk.input.models),
        smk.input.dataset,
        list(smk.params.tasks),
        smk.output.scores,
        smk.output.plot,
        smk.params.settings,
        control=list(smk.input.control),
        seed=smk.params.seed,
        device=smk.params.device,
        kernels=smk.params.kernels,
        threads=smk.threads,
        rc_average=smk.params.rc_average,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
