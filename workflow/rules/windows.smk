# Peak windowing: the peaks of every task -> fixed-width windows with a train/valid/test split.


def _blacklist(wildcards):
    """The blacklist BED as a list (empty when windows.blacklist is null), so it is tracked."""
    path = exp_config(wildcards.exp)["windows"]["blacklist"]
    return [path] if path else []


rule peak_windows:
    input:
        peaks=lambda w: task_files(w.exp, "peaks"),
        chrom_sizes=lambda w: exp_config(w.exp)["data"]["chrom_sizes"],
        blacklist=_blacklist,
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
        mem_mb=2000,
        runtime=15,
    script:
        "../../scripts/peak_windows.py"
