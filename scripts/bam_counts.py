"""Rule bam_counts: 5'-end count bigWigs per strand from a task's BAM/CRAM files (workflow/rules/reads.smk)."""
from bpnet.data.reads import write_read_bigwigs
from bpnet.runner import run_rule


def main(smk, log):
    write_read_bigwigs(
        list(smk.input.reads),
        smk.input.chrom_sizes,
        smk.output.pos,
        smk.output.neg,
        smk.output.summary,
        min_mapq=smk.params.reads["min_mapq"],
        keep_duplicates=smk.params.reads["keep_duplicates"],
        paired_end=smk.params.reads["paired_end"],
        fasta=smk.input.fasta,
        threads=smk.threads,
        log=log,
        chrom_aliases=smk.input.aliases[0] if smk.input.aliases else None,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
