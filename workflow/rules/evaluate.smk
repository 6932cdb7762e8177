# Evaluation: score the predictions of the trained model (and, with truth tracks, the oracle)
# on evaluation.splits with the paper's metrics (profile auPRC at several bin sizes, count
# correlations on log(1 + total)) plus JSD and multinomial NLL. Logic: scripts/bpnet/evaluate.py.


rule oracle_predictions:
    # The true expected-rate tracks of the simulated dataset, read at the evaluation windows and
    # written in the predictions format: the ceiling a model can reach on this data.
    input:
        dataset=lambda w: dataset_path(w.exp),
        truth=lambda w: truth_files(w.exp),
    output:
        "results/{exp}/predictions/oracle.npz",
    params:
        evaluation=lambda w: exp_config(w.exp)["evaluation"],
        tasks=lambda w: task_names(w.exp),
    log:
        "logs/{exp}/oracle_predictions.log",
    benchmark:
        "results/{exp}/benchmarks/oracle_predictions.tsv"
    threads: 1
    resources:
        # the dataset is loaded whole; the oracle profile is at most as large again in float32
        mem_mb=scaled_mem(lambda w, input: max(2000, int(4 * input.size_mb))),
        runtime=30,
    conda:
        "../../envs/bpnet.yaml"
    script:
        "../../scripts/oracle_predictions.py"


rule evaluate:
    input:
        dataset=lambda w: dataset_path(w.exp),
        predictions=lambda w: expand(
            "results/{exp}/predictions/{name}.npz", exp=w.exp, name=prediction_names(w.exp)
        ),
    output:
        metrics=report(
            "results/{exp}/evaluation/metrics.tsv",
            category="Evaluation",
            subcategory="{exp}",
            caption="../report/metrics_table.rst",
        ),
        summary="results/{exp}/evaluation/summary.json",
        plot=report(
            "results/{exp}/evaluation/metrics.png",
            category="Evaluation",
            subcategory="{exp}",
            caption="../report/metrics_plot.rst",
        ),
    params:
        evaluation=lambda w: exp_config(w.exp)["evaluation"],
        tasks=lambda w: task_names(w.exp),
        names=lambda w: prediction_names(w.exp),
        seed=lambda w: exp_config(w.exp)["seed"],
    log:
        "logs/{exp}/evaluate.log",
    benchmark:
        "results/{exp}/benchmarks/evaluate.tsv"
    threads: 2  # tasks scored in parallel
    resources:
        # dataset + predictions in memory, plus float64 copies of one split and two tasks at a time
        mem_mb=scaled_mem(lambda w, input: max(2000, int(4 * input.size_mb))),
        runtime=60,
    conda:
        "../../envs/bpnet.yaml"
    script:
        "../../scripts/evaluate.py"


rule profile_plots:
    # Observed vs predicted profiles at the few windows of each task with the most reads.
    input:
        dataset=lambda w: dataset_path(w.exp),
        predictions=lambda w: expand(
            "results/{exp}/predictions/{name}.npz", exp=w.exp, name=prediction_names(w.exp)
        ),
    output:
        plot=report(
            "results/{exp}/evaluation/top_peaks.png",
            category="Evaluation",
            subcategory="{exp}",
            caption="../report/top_peaks.rst",
        ),
    params:
        evaluation=lambda w: exp_config(w.exp)["evaluation"],
        tasks=lambda w: task_names(w.exp),
        names=lambda w: prediction_names(w.exp),
        n_windows=3,
    log:
        "logs/{exp}/profile_plots.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(lambda w, input: max(2000, int(2 * input.size_mb))),
        runtime=10,
    conda:
        "../../envs/bpnet.yaml"
    script:
        "../../scripts/profile_plots.py"
