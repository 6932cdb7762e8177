# Evaluation: score the predictions of the trained model (and, with truth tracks, the oracle)
# on evaluation.splits with the paper's metrics (profile auPRC at several bin sizes, count
# correlations on log(1 + total)) plus JSD and multinomial NLL. Logic: scripts/bpnet/steps/evaluate.py.


rule oracle_predictions:
    # The true expected-rate tracks of the simulated dataset, read at the evaluation windows and
    # written in the predictions format: the ceiling a model can reach on this data.
    input:
        dataset=evaluated_dataset,
        truth=truth_bigwigs,
    output:
        "results/{exp}/predictions/oracle.npz",
    log:
        "logs/{exp}/oracle_predictions.log",
    benchmark:
        "results/{exp}/benchmarks/oracle_predictions.tsv"
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(prediction_mem),
        # the paper's 60k evaluation windows: 25 s
        runtime=30,
    params:
        evaluation=exp_value("evaluation"),
        tasks=tasks_of,
    script:
        "../../scripts/oracle_predictions.py"


rule evaluate:
    input:
        dataset=evaluated_dataset,
        predictions=prediction_files,
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
    log:
        "logs/{exp}/evaluate.log",
    benchmark:
        "results/{exp}/benchmarks/evaluate.tsv"
    conda:
        "../../envs/bpnet.yaml"
    threads: 2  # tasks scored in parallel
    resources:
        mem_mb=scaled_mem(evaluate_mem),
        # the paper's 60k evaluation windows, model and oracle: 7 min on 2 cores
        runtime=60,
    params:
        evaluation=exp_value("evaluation"),
        tasks=tasks_of,
        names=scored_models,
        seed=exp_value("seed"),
    script:
        "../../scripts/evaluate.py"


rule profile_plots:
    # Observed vs predicted profiles at the few windows of each task with the most reads.
    input:
        dataset=evaluated_dataset,
        predictions=prediction_files,
    output:
        plot=report(
            "results/{exp}/evaluation/top_peaks.png",
            category="Evaluation",
            subcategory="{exp}",
            caption="../report/top_peaks.rst",
        ),
    log:
        "logs/{exp}/profile_plots.log",
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(input_mem(2)),
        runtime=10,
    params:
        evaluation=exp_value("evaluation"),
        tasks=tasks_of,
        names=scored_models,
        plots=exp_value("plots"),
    script:
        "../../scripts/profile_plots.py"
