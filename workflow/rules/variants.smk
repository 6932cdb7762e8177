# Variant effects (config key variants): every allele of a VCF scored by each experiment's model
# (an ensemble: its members averaged), and, where planted effects are known (the simulated
# truth), the scores checked against them. Logic: scripts/bpnet/steps/variants.py.


rule score_variants_all:
    # `snakemake --cores all score_variants_all`: every variants entry for every experiment and
    # ensemble (part of rule all too once the config has the key).
    input:
        all_variant_outputs(),


rule score_variants:
    input:
        vcf=variant_value("vcf"),
        fasta=exp_value("data", "genome_fasta"),
        chrom_sizes=exp_value("data", "chrom_sizes"),
        models=variant_models,
        dataset=evaluated_dataset,  # the window width
        control=control_bigwigs,  # read at each variant's window when the model uses a control
    output:
        scores="results/{exp}/variants/{name}/scores.tsv",
        plot=report(
            "results/{exp}/variants/{name}/top_variants.png",
            category="Variant effects",
            caption="../report/top_variants.rst",
        ),
    log:
        "logs/{exp}/score_variants/{name}.log",
    benchmark:
        "results/{exp}/benchmarks/score_variants/{name}.tsv"
    wildcard_constraints:
        name=_alternatives(VARIANT_SETS),
    conda:
        "../../envs/bpnet.yaml"
    threads: 4  # capped by --cores and by the cores the job may use
    resources:
        # windows in chunks; the variants' table and the scores (README: Variant effects)
        mem_mb=scaled_mem(variant_mem),
        runtime=120,
    params:
        tasks=tasks_of,
        settings=exp_value("variant_scoring"),
        seed=exp_value("seed"),
        device=exp_value("device"),
        kernels=exp_value("kernels"),
        rc_average=exp_value("predict", "reverse_complement_average"),
    script:
        "../../scripts/score_variants.py"


rule variant_truth_check:
    # variants entries with `effects` (planted effects: the simulated truth)
    input:
        scores=rules.score_variants.output.scores,
        effects=variant_value("effects"),
    output:
        table=report(
            "results/{exp}/variants/{name}/truth_check.tsv",
            category="Variant effects",
            caption="../report/variant_truth_check.rst",
        ),
    log:
        "logs/{exp}/variant_truth_check/{name}.log",
    wildcard_constraints:
        name=_alternatives(VARIANT_SETS),
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(input_mem(10, floor=1000)),
        runtime=10,
    script:
        "../../scripts/variant_truth_check.py"
