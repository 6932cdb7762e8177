# Interpretation of the trained model (config section `interpretation`):
#   contrib_scores        DeepLIFT/DeepSHAP contribution scores (profile and count heads, per task)
#   motif_discovery       TF-MoDISco lite per task: motifs (MEME), logos           -> modisco/{task}/
#   motif_instances       CWM scanning of the windows                              -> instances.tsv
#   marginalize           in-silico marginalisation of motif pairs                 -> syntax.tsv, plots
#   interpretation_check  (simulated data) comparison with the planted motif instances and syntax
# Logic: scripts/bpnet/interpret.py, motifs.py, syntax.py. `interpretation_outputs(exp)` (in
# common.smk, with the other helpers) lists the targets of one experiment for `rule all`.

rule interpret:
    # `snakemake --cores all interpret`: the interpretation of every experiment, on demand.
    input:
        [f for exp in experiment_names() for f in interpretation_outputs(exp, always=True)],


rule contrib_scores:
    input:
        dataset="results/{exp}/dataset.npz",
        model="results/{exp}/model/model.safetensors",
        chrom_sizes=lambda w: exp_config(w.exp)["data"]["chrom_sizes"],
    output:
        contrib="results/{exp}/interpretation/contrib.npz",
        # folders: experiments may differ in tasks, heads and pairs
        tracks=directory("results/{exp}/interpretation/tracks"),
    params:
        interpretation=lambda w: interpretation_config(w.exp),
        tasks=lambda w: task_names(w.exp),
        seed=lambda w: exp_config(w.exp)["seed"],
        device=lambda w: exp_config(w.exp)["device"],
        kernels=lambda w: exp_config(w.exp)["kernels"],
    log:
        "logs/{exp}/contrib_scores.log",
    benchmark:
        "results/{exp}/benchmarks/contrib_scores.tsv"
    threads: 8  # capped by --cores / --set-threads and by the cores the job may use
    resources:
        # the dataset, plus float32 hypothetical contributions (T x H x M x W x 4)
        mem_mb=scaled_mem(lambda w, input: max(4000, int(3 * input.size_mb) + 2000)),
        # ~1 s per window on 2 CPU cores (4 tasks, 2 heads, 10 references): 500 windows took 7.6 min
        runtime=lambda w: max(30, int(interpretation_config(w.exp)["max_windows"] or 5000) // 20),
    conda:
        "../../envs/bpnet.yaml"
    script:
        "../../scripts/contrib_scores.py"


rule motif_discovery:
    input:
        contrib="results/{exp}/interpretation/contrib.npz",
        known=lambda w: known_motifs_file(w.exp),
    output:
        h5="results/{exp}/interpretation/modisco/{task}/modisco.h5",
        meme="results/{exp}/interpretation/modisco/{task}/motifs.meme",
        cwms="results/{exp}/interpretation/modisco/{task}/cwms.meme",
        patterns="results/{exp}/interpretation/modisco/{task}/patterns.tsv",
        logos=directory("results/{exp}/interpretation/modisco/{task}/logos"),
    params:
        interpretation=lambda w: interpretation_config(w.exp),
    log:
        "logs/{exp}/motif_discovery.{task}.log",
    benchmark:
        "results/{exp}/benchmarks/motif_discovery.{task}.tsv"
    threads: 8  # capped by --cores / --set-threads and by the cores the job may use
    resources:
        mem_mb=scaled_mem(8000),
        runtime=60,
    conda:
        "../../envs/bpnet.yaml"
    script:
        "../../scripts/motif_discovery.py"


rule motif_instances:
    input:
        contrib="results/{exp}/interpretation/contrib.npz",
        h5=lambda w: expand("results/{exp}/interpretation/modisco/{task}/modisco.h5", exp=w.exp, task=task_names(w.exp)),
        known=lambda w: known_motifs_file(w.exp),
    output:
        instances="results/{exp}/interpretation/instances.tsv",
        motifs="results/{exp}/interpretation/motifs.tsv",
    params:
        interpretation=lambda w: interpretation_config(w.exp),
        tasks=lambda w: task_names(w.exp),
    log:
        "logs/{exp}/motif_instances.log",
    benchmark:
        "results/{exp}/benchmarks/motif_instances.tsv"
    threads: 1
    resources:
        mem_mb=scaled_mem(lambda w, input: max(4000, int(4 * input.size_mb))),
        runtime=30,
    conda:
        "../../envs/bpnet.yaml"
    script:
        "../../scripts/motif_instances.py"


rule marginalize:
    input:
        dataset="results/{exp}/dataset.npz",
        model="results/{exp}/model/model.safetensors",
        known=lambda w: known_motifs_file(w.exp),
    output:
        table="results/{exp}/interpretation/syntax.tsv",
        summary="results/{exp}/interpretation/syntax_summary.tsv",
        plots=directory("results/{exp}/interpretation/syntax"),
    params:
        interpretation=lambda w: interpretation_config(w.exp),
        tasks=lambda w: task_names(w.exp),
        seed=lambda w: exp_config(w.exp)["seed"],
        device=lambda w: exp_config(w.exp)["device"],
        kernels=lambda w: exp_config(w.exp)["kernels"],
    log:
        "logs/{exp}/marginalize.log",
    benchmark:
        "results/{exp}/benchmarks/marginalize.tsv"
    threads: 8  # capped by --cores / --set-threads and by the cores the job may use
    resources:
        mem_mb=scaled_mem(lambda w, input: max(4000, int(2 * input.size_mb) + 2000)),
        runtime=60,
    conda:
        "../../envs/bpnet.yaml"
    script:
        "../../scripts/marginalize.py"


rule interpretation_check:
    input:
        truth=lambda w: interpretation_config(w.exp)["truth_instances"] or [],
        contrib="results/{exp}/interpretation/contrib.npz",
        h5=lambda w: expand("results/{exp}/interpretation/modisco/{task}/modisco.h5", exp=w.exp, task=task_names(w.exp)),
        instances="results/{exp}/interpretation/instances.tsv",
        syntax="results/{exp}/interpretation/syntax.tsv",
        syntax_summary="results/{exp}/interpretation/syntax_summary.tsv",
        truth_syntax=lambda w: interpretation_config(w.exp)["truth_syntax"] or [],
        known=lambda w: known_motifs_file(w.exp),
    output:
        "results/{exp}/interpretation/truth_check.tsv",
    params:
        interpretation=lambda w: interpretation_config(w.exp),
        tasks=lambda w: task_names(w.exp),
    log:
        "logs/{exp}/interpretation_check.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(lambda w, input: max(2000, int(3 * input.size_mb))),
        runtime=15,
    conda:
        "../../envs/bpnet.yaml"
    script:
        "../../scripts/interpretation_check.py"
