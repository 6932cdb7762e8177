# Dataset building: windows -> sequence codes and per-strand counts (and control) in one .npz.


rule build_dataset:
    input:
        windows="results/{exp}/windows.tsv",
        fasta=lambda w: exp_config(w.exp)["data"]["genome_fasta"],
        pos=lambda w: task_files(w.exp, "pos"),
        neg=lambda w: task_files(w.exp, "neg"),
        control=lambda w: control_files(w.exp),
    output:
        "results/{exp}/dataset.npz",
    params:
        dataset=lambda w: exp_config(w.exp)["dataset"],
        tasks=lambda w: task_names(w.exp),
        nan_as_zero=lambda w: bool(exp_config(w.exp)["data"].get("nan_as_zero", False)),
    log:
        "logs/{exp}/build_dataset.log",
    benchmark:
        "results/{exp}/benchmarks/build_dataset.tsv"
    threads: 1
    resources:
        # The arrays of ~150k paper windows (uint16 counts, 8 channels) take ~2.5 GB, plus one
        # float32 track (~0.6 GB) while reading.
        mem_mb=scaled_mem(8000),
        runtime=60,
    conda:
        "../../envs/bpnet.yaml"
    script:
        "../../scripts/build_dataset.py"
