# Dataset building: windows -> sequence codes and per-strand counts (and control) in one .npz.


rule build_dataset:
    input:
        windows=rules.peak_windows.output.windows,
        fasta=exp_value("data", "genome_fasta"),
        counts=count_bigwigs,
        control=control_bigwigs,
        aliases=chrom_alias_files,
    output:
        dataset="results/{exp}/dataset.npz",
    log:
        "logs/{exp}/build_dataset.log",
    benchmark:
        "results/{exp}/benchmarks/build_dataset.tsv"
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(dataset_mem),
        # the paper's 157k windows: 84 s
        runtime=30,
    params:
        dataset=dataset_settings,
        tasks=tasks_of,
        nan_as_zero=nan_as_zero,
    script:
        "../../scripts/build_dataset.py"
