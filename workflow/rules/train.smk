# Training and prediction. Training reads only dataset.npz; its params are the model and training
# sections, so editing them reruns training and what follows, never windowing or dataset building.


rule train:
    input:
        dataset=rules.build_dataset.output.dataset,
    output:
        model="results/{exp}/model/model.safetensors",
        history="results/{exp}/model/history.tsv",
        curve=report(
            "results/{exp}/model/training_curve.png",
            category="Training",
            caption="../report/training_curve.rst",
        ),
    log:
        "logs/{exp}/train.log",
    benchmark:
        "results/{exp}/benchmarks/train.tsv"
    wildcard_constraints:
        exp=_alternatives(TRAINED),
    conda:
        "../../envs/bpnet.yaml"
    # at most 8 (fewer with --cores or --set-threads train=N); torch never runs more than the cores it may use
    threads: 8
    resources:
        mem_mb=scaled_mem(8000),
        runtime=720,
    params:
        model=exp_value("model"),
        training=exp_value("training"),
        seed=exp_value("seed"),
        device=exp_value("device"),
        kernels=exp_value("kernels"),
    script:
        "../../scripts/train.py"


rule predict:
    input:
        dataset=rules.build_dataset.output.dataset,
        model="results/{exp}/model/model.safetensors",  # rule train, or import_weights
    output:
        predictions="results/{exp}/predictions/model.npz",
    log:
        "logs/{exp}/predict.log",
    benchmark:
        "results/{exp}/benchmarks/predict.tsv"
    wildcard_constraints:
        # ensembles get their model.npz from rule ensemble_predictions
        exp=_alternatives(EXPERIMENTS),
    conda:
        "../../envs/bpnet.yaml"
    threads: 2
    resources:
        mem_mb=scaled_mem(prediction_mem),
        # the paper's 60k evaluation windows: 2.5 min on 2 CPU cores
        runtime=120,
    params:
        splits=exp_value("evaluation", "splits"),
        device=exp_value("device"),
        kernels=exp_value("kernels"),
        rc_average=exp_value("predict", "reverse_complement_average"),
    script:
        "../../scripts/predict.py"


rule import_weights:
    input:
        weights=pretrained_weights,
        dataset=rules.build_dataset.output.dataset,
    output:
        model="results/{exp}/model/model.safetensors",
    log:
        "logs/{exp}/import_weights.log",
    # model.pretrained: the published (or any other) weights take the trained model's place.
    wildcard_constraints:
        exp=_alternatives(PRETRAINED),
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=10,
    params:
        model=exp_value("model"),
    script:
        "../../scripts/import_weights.py"
