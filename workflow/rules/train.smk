# Training and prediction. Training reads only dataset.npz; its params are the model and training
# sections, so editing them reruns training and what follows, never windowing or dataset building.


rule train:
    wildcard_constraints:
        exp=_alternatives(TRAINED),
    input:
        dataset=rules.build_dataset.output.dataset,
    output:
        model="results/{exp}/model/model.safetensors",
        history="results/{exp}/model/history.tsv",
        curve=report("results/{exp}/model/training_curve.png", category="Training", caption="../report/training_curve.rst"),
    params:
        model=exp_value("model"),
        training=exp_value("training"),
        seed=exp_value("seed"),
        device=exp_value("device"),
        kernels=exp_value("kernels"),
    log:
        "logs/{exp}/train.log",
    benchmark:
        "results/{exp}/benchmarks/train.tsv"
    # at most 8 (fewer with --cores or --set-threads train=N); torch never runs more than the cores it may use
    threads: 8
    resources:
        mem_mb=scaled_mem(8000),
        runtime=720,
    conda:
        "../../envs/bpnet.yaml"
    script:
        "../../scripts/train.py"


rule predict:
    wildcard_constraints:
        # ensembles get their model.npz from rule ensemble_predictions
        exp=_alternatives(EXPERIMENTS),
    input:
        dataset=rules.build_dataset.output.dataset,
        model="results/{exp}/model/model.safetensors",  # rule train, or import_weights
    output:
        predictions="results/{exp}/predictions/model.npz",
    params:
        splits=exp_value("evaluation", "splits"),
        device=exp_value("device"),
        kernels=exp_value("kernels"),
    log:
        "logs/{exp}/predict.log",
    benchmark:
        "results/{exp}/benchmarks/predict.tsv"
    threads: 2
    resources:
        mem_mb=scaled_mem(8000),
        runtime=120,
    conda:
        "../../envs/bpnet.yaml"
    script:
        "../../scripts/predict.py"


rule import_weights:
    # model.pretrained: the published (or any other) weights take the trained model's place.
    wildcard_constraints:
        exp=_alternatives(PRETRAINED),
    input:
        weights=pretrained_weights,
        dataset=rules.build_dataset.output.dataset,
    output:
        model="results/{exp}/model/model.safetensors",
    params:
        model=exp_value("model"),
    log:
        "logs/{exp}/import_weights.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=10,
    conda:
        "../../envs/bpnet.yaml"
    script:
        "../../scripts/import_weights.py"
