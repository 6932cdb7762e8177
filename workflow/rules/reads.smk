# Aligned reads -> 5'-end count bigWigs: a task (or the control) given as BAM/CRAM files in the
# config is counted here once, for every experiment that names it (bpnet/data/reads.py).


rule bam_counts:
    input:
        reads=source_reads,
        chrom_sizes=source_value("chrom_sizes"),
        fasta=source_value("genome_fasta"),  # CRAM decoding
        aliases=source_value("chrom_aliases"),
    output:
        pos="results/reads/{source}/counts.pos.bw",
        neg="results/reads/{source}/counts.neg.bw",
        summary="results/reads/{source}/read_counts.tsv",
    log:
        "logs/reads/{source}/bam_counts.log",
    benchmark:
        "results/reads/{source}/benchmark.tsv"
    wildcard_constraints:
        source=_alternatives(READ_SOURCES),
    conda:
        "../../envs/bpnet.yaml"
    # pysam decompresses with the extra threads; the counting loop is one
    threads: 2
    resources:
        mem_mb=scaled_mem(reads_mem),
        runtime=120,
    params:
        reads=source_value("reads"),
    script:
        "../../scripts/bam_counts.py"
