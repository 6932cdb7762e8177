# Interpretation of the trained model (config section `interpretation`):
#   contrib_scores        DeepLIFT/DeepSHAP contribution scores (profile and count heads, per task)
#   motif_discovery       TF-MoDISco lite per task: motifs (MEME), logos           -> modisco/{task}/
#   motif_instances       CWM scanning of the windows                              -> instances.tsv
#   marginalize           in-silico marginalisation of motif pairs                 -> syntax.tsv, plots
#   interpretation_check  (simulated data) comparison with the planted motif instances and syntax
#   ism, ism_track        (section `ism`) in-silico mutagenesis of chosen windows -> ism/
# Logic: scripts/bpnet/interpret/ (contributions, modisco, instances, syntax, truth; meme reads the
# known motifs; ism). `interpretation_outputs(exp)` (in common.smk, with the other helpers) lists the
# targets of one experiment for `rule all`.


rule interpret:
    # `snakemake --cores all interpret`: the interpretation of every experiment, on demand.
    input:
        [f for exp in experiment_names() for f in interpretation_outputs(exp, always=True)],


rule contrib_scores:
    input:
        dataset=rules.build_dataset.output.dataset,
        model="results/{exp}/model/model.safetensors",  # rule train, or import_weights
        chrom_sizes=exp_value("data", "chrom_sizes"),
    output:
        contrib="results/{exp}/interpretation/contrib.npz",
        # folders: experiments may differ in tasks, heads and pairs
        tracks=directory("results/{exp}/interpretation/tracks"),
    log:
        "logs/{exp}/contrib_scores.log",
    benchmark:
        "results/{exp}/benchmarks/contrib_scores.tsv"
    conda:
        "../../envs/bpnet.yaml"
    threads: 8  # capped by --cores / --set-threads and by the cores the job may use
    resources:
        mem_mb=scaled_mem(contrib_mem),
        # ~1 s per window on 2 CPU cores (4 tasks, 2 heads, 10 references): 500 windows took 7.6 min
        runtime=contrib_runtime,
    params:
        interpretation=exp_value("interpretation"),
        tasks=tasks_of,
        seed=exp_value("seed"),
        device=exp_value("device"),
        kernels=exp_value("kernels"),
    script:
        "../../scripts/contrib_scores.py"


rule motif_discovery:
    input:
        contrib=rules.contrib_scores.output.contrib,
        known=known_motifs,
    output:
        h5="results/{exp}/interpretation/modisco/{task}/modisco.h5",
        meme="results/{exp}/interpretation/modisco/{task}/motifs.meme",
        cwms="results/{exp}/interpretation/modisco/{task}/cwms.meme",
        patterns="results/{exp}/interpretation/modisco/{task}/patterns.tsv",
        logos=report(
            directory("results/{exp}/interpretation/modisco/{task}/logos"),
            patterns=["{pattern}.png"],
            category="Interpretation",
            subcategory="{exp}: motifs",
            labels={"task": "{task}", "pattern": "{pattern}"},
            caption="../report/motif_logos.rst",
        ),
    log:
        "logs/{exp}/motif_discovery.{task}.log",
    benchmark:
        "results/{exp}/benchmarks/motif_discovery.{task}.tsv"
    conda:
        "../../envs/bpnet.yaml"
    threads: 8  # capped by --cores / --set-threads and by the cores the job may use
    resources:
        mem_mb=scaled_mem(8000),
        runtime=60,
    params:
        interpretation=exp_value("interpretation"),
    script:
        "../../scripts/motif_discovery.py"


rule motif_instances:
    input:
        contrib=rules.contrib_scores.output.contrib,
        # one per task, in task order ({exp} is filled in from the job's wildcards)
        h5=collect(rules.motif_discovery.output.h5, task=tasks_of, allow_missing=True),
        known=known_motifs,
    output:
        instances="results/{exp}/interpretation/instances.tsv",
        motifs=report(
            "results/{exp}/interpretation/motifs.tsv",
            category="Interpretation",
            subcategory="{exp}: motifs",
            labels={"task": "all", "pattern": "table"},
            caption="../report/motifs_table.rst",
        ),
    log:
        "logs/{exp}/motif_instances.log",
    benchmark:
        "results/{exp}/benchmarks/motif_instances.tsv"
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(input_mem(4, floor=4000)),
        runtime=30,
    params:
        interpretation=exp_value("interpretation"),
        tasks=tasks_of,
    script:
        "../../scripts/motif_instances.py"


rule marginalize:
    input:
        dataset=rules.build_dataset.output.dataset,
        model="results/{exp}/model/model.safetensors",  # rule train, or import_weights
        known=known_motifs,
    output:
        table="results/{exp}/interpretation/syntax.tsv",
        summary=report(
            "results/{exp}/interpretation/syntax_summary.tsv",
            category="Interpretation",
            subcategory="{exp}: syntax",
            labels={"pair": "summary table"},
            caption="../report/syntax_summary.rst",
        ),
        plots=report(
            directory("results/{exp}/interpretation/syntax"),
            patterns=["{pair}.png"],
            category="Interpretation",
            subcategory="{exp}: syntax",
            labels={"pair": "{pair}"},
            caption="../report/syntax_plot.rst",
        ),
    log:
        "logs/{exp}/marginalize.log",
    benchmark:
        "results/{exp}/benchmarks/marginalize.tsv"
    conda:
        "../../envs/bpnet.yaml"
    threads: 8  # capped by --cores / --set-threads and by the cores the job may use
    resources:
        mem_mb=scaled_mem(input_mem(2, floor=4000, extra=2000)),
        runtime=60,
    params:
        interpretation=exp_value("interpretation"),
        tasks=tasks_of,
        seed=exp_value("seed"),
        device=exp_value("device"),
        kernels=exp_value("kernels"),
    script:
        "../../scripts/marginalize.py"


rule interpretation_check:
    input:
        # the simulator's planted instances and syntax: the file the config names, or none ([])
        truth=branch(
            exp_value("interpretation", "truth_instances"),
            then=exp_value("interpretation", "truth_instances"),
        ),
        contrib=rules.contrib_scores.output.contrib,
        h5=collect(rules.motif_discovery.output.h5, task=tasks_of, allow_missing=True),
        instances=rules.motif_instances.output.instances,
        syntax=rules.marginalize.output.table,
        syntax_summary=rules.marginalize.output.summary,
        truth_syntax=branch(
            exp_value("interpretation", "truth_syntax"), then=exp_value("interpretation", "truth_syntax")
        ),
        known=known_motifs,
    output:
        check=report(
            "results/{exp}/interpretation/truth_check.tsv",
            category="Interpretation",
            subcategory="{exp}: truth check",
            caption="../report/interpretation_truth_check.rst",
        ),
    log:
        "logs/{exp}/interpretation_check.log",
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(input_mem(3)),
        runtime=15,
    params:
        interpretation=exp_value("interpretation"),
        tasks=tasks_of,
    script:
        "../../scripts/interpretation_check.py"


rule ism:
    # every base of the chosen windows mutated to the three others (bpnet/interpret/ism.py)
    input:
        unpack(ism_region_inputs),
        dataset=rules.build_dataset.output.dataset,
        model="results/{exp}/model/model.safetensors",  # rule train, or import_weights
    output:
        npz="results/{exp}/interpretation/ism/ism.npz",
        windows="results/{exp}/interpretation/ism/windows.tsv",
    log:
        "logs/{exp}/ism.log",
    benchmark:
        "results/{exp}/benchmarks/ism.tsv"
    wildcard_constraints:
        # ensembles have no model of their own
        exp=_alternatives(EXPERIMENTS),
    conda:
        "../../envs/bpnet.yaml"
    threads: 8  # capped by --cores / --set-threads and by the cores the job may use
    resources:
        mem_mb=scaled_mem(ism_mem),
        runtime=ism_runtime,
    params:
        settings=exp_value("ism"),
        tasks=tasks_of,
        rc_average=exp_value("predict", "reverse_complement_average"),
        contrib=ism_contrib,  # read when present: its correlation with ISM is logged
        device=exp_value("device"),
        kernels=exp_value("kernels"),
    script:
        "../../scripts/ism.py"


rule ism_track:
    input:
        npz=rules.ism.output.npz,
        chrom_sizes=exp_value("data", "chrom_sizes"),
    output:
        track="results/{exp}/interpretation/ism/{task}.max_effect.bw",
    log:
        "logs/{exp}/ism_track.{task}.log",
    wildcard_constraints:
        exp=_alternatives(EXPERIMENTS),
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(input_mem(3)),
        runtime=15,
    script:
        "../../scripts/ism_track.py"


rule syntax_vs_planted:
    # (simulated data) every marginalised pair with the simulator's planted curves overlaid
    input:
        syntax=rules.marginalize.output.table,
        planted=exp_value("interpretation", "truth_syntax"),
    output:
        plots=directory("results/{exp}/interpretation/syntax_vs_planted"),
    log:
        "logs/{exp}/syntax_vs_planted.log",
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(1000),
        runtime=10,
    script:
        "../../scripts/syntax_vs_planted.py"
