# Several experiments in one config: seed ensembles (averaged predictions, evaluated like a model)
# and the table comparing every experiment. Logic: scripts/bpnet/steps/compare.py (the
# experiments themselves: scripts/bpnet/experiments.py).


rule ensemble_predictions:
    input:
        ensemble_members,
    output:
        "results/{ensemble}/predictions/model.npz",
    log:
        "logs/{ensemble}/ensemble_predictions.log",
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(input_mem(3, per_file=True)),
        runtime=30,
    script:
        "../../scripts/ensemble_predictions.py"


rule compare_experiments:
    input:
        expand("results/{exp}/evaluation/metrics.tsv", exp=list(EXPERIMENTS) + list(ENSEMBLES)),
    output:
        table=report(
            "results/comparison/experiments.tsv", category="Experiments", caption="../report/experiments.rst"
        ),
        plot=report(
            "results/comparison/experiments.png", category="Experiments", caption="../report/experiments.rst"
        ),
    log:
        "logs/compare_experiments.log",
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(1000),
        runtime=10,
    params:
        names=list(EXPERIMENTS) + list(ENSEMBLES),
    script:
        "../../scripts/compare_experiments.py"
