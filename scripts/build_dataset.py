"""Rule build_dataset: sequence codes and per-strand counts of every window (workflow/rules/dataset.smk)."""
from bpnet.data.dataset import write_dataset_file
from bpnet.runner import run_rule


def main(smk, log):
    write_dataset_file(
        smk.input.windows,
        smk.input.fasta,
        list(smk.input.counts),
        list(smk.params.tasks),
        smk.output.dataset,
        control_bigwigs=list(smk.input.control) or None,
        extra_context=smk.params.dataset.get("extra_context", 0),
        nan_as_zero=smk.params.nan_as_zero,
        minus_strand_negative=smk.params.dataset.get("minus_strand_negative", False),
        outlier_quantile=smk.params.dataset.get("outlier_quantile"),
        strands=smk.params.dataset.get("strands", 2),
        chrom_aliases=smk.input.aliases[0] if smk.input.aliases else None,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
