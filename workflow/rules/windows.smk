# Peak windowing: the peaks of every task -> fixed-width windows with a train/valid/test split.


rule peak_windows:
    input:
        peaks=lambda w: task_files(w.exp, "peaks"),
        chrom_sizes=lambda w: exp_config(w.exp)["data"]["chrom_sizes"],
        blacklist=blacklist_files,
    output:
        windows="results/{exp}/windows.tsv",
        summary="results/{exp}/windows_summary.tsv",
    params:
        windows=lambda w: exp_config(w.exp)["windows"],
        tasks=lambda w: task_names(w.exp),
    log:
        "logs/{exp}/peak_windows.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=15,
    conda:
        "../../envs/bpnet.yaml"
    script:
        "../../scripts/peak_windows.py"
