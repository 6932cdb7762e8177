# Peak windowing: the peaks of every task -> fixed-width windows with a train/valid/test split,
# and, with windows.background.enabled, GC-matched background windows (which read the genome).


rule peak_windows:
    input:
        peaks=peak_files,
        chrom_sizes=exp_value("data", "chrom_sizes"),
        blacklist=blacklist_files,
        fasta=background_fasta,
        aliases=chrom_alias_files,
    output:
        windows="results/{exp}/windows.tsv",
        summary=report(
            "results/{exp}/windows_summary.tsv",
            category="Data",
            subcategory="{exp}",
            caption="../report/windows_summary.rst",
        ),
    log:
        "logs/{exp}/peak_windows.log",
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=15,
    params:
        windows=windows_settings,
        tasks=tasks_of,
    script:
        "../../scripts/peak_windows.py"
