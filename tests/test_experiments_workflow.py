"""End to end with several experiments: two seeds and their ensemble, the comparison table, the
HTML report; and dry runs of the default DAG through the bundled workflow profiles.

The two-experiment run uses the tiny config of test_workflow.py (about a minute on 2 cores); the
profile dry runs take seconds each.
"""

import importlib.util

import pandas as pd
import pytest
import yaml
from conftest import REPO, jobs_planned, snakemake, tiny_config


@pytest.fixture(scope="module")
def two_seed_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("experiments")
    config = tiny_config(
        work / "two_seeds.yaml",
        experiments={"s1": {"seed": 1}, "s2": {"seed": 2}},
        ensembles={"both": ["s1", "s2"]},
    )
    result = snakemake(work, config)
    assert result.returncode == 0, result.stderr[-4000:]
    return work, config


@pytest.mark.slow
def test_two_seeds_and_their_ensemble_are_compared(two_seed_run):
    work, _ = two_seed_run
    table = pd.read_csv(work / "results" / "comparison" / "experiments.tsv", sep="\t")
    assert {"s1", "s2", "both"} <= set(table["experiment"])
    for exp in ("s1", "s2"):
        assert (work / "results" / exp / "model" / "model.safetensors").exists()
        png = (work / "results" / exp / "evaluation" / "top_peaks.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # the ensemble has no model of its own: it averages its members' predictions
    assert not (work / "results" / "both" / "model").exists()
    metrics = pd.read_csv(work / "results" / "both" / "evaluation" / "metrics.tsv", sep="\t")
    assert set(metrics["task"]) == {"Oct4", "Sox2", "Nanog", "Klf4"}
    # different seeds train different models
    s1 = pd.read_csv(work / "results" / "s1" / "model" / "history.tsv", sep="\t")
    s2 = pd.read_csv(work / "results" / "s2" / "model" / "history.tsv", sep="\t")
    assert not s1.equals(s2)


@pytest.mark.slow
def test_report_builds_with_captions(two_seed_run):
    work, config = two_seed_run
    report = work / "report.html"
    result = snakemake(work, config, "--report", str(report))
    assert result.returncode == 0, result.stderr[-4000:]
    html = report.read_text(errors="replace")
    assert len(html) > 100_000
    # captions of the evaluation, top-peak, training and comparison entries
    for caption in ("Observed vs predicted profiles", "Evaluation metrics of experiment",
                    "Training curves of experiment", "Comparison of all experiments"):
        assert caption in html, caption


# every step of the default (single-experiment) DAG; export rules are named per experiment
DEFAULT_DAG = {"simulate_dataset", "peak_windows", "build_dataset", "train", "predict", "oracle_predictions",
               "evaluate", "profile_plots", "export_tracks_tiny", "all"}


def _dry_run(tmp_path, profile, *args):
    config = tiny_config(tmp_path / "tiny.yaml")
    return snakemake(tmp_path, config, "-n", "--workflow-profile", str(REPO / "workflow" / "profiles" / profile), *args)


def test_default_profile_plans_the_default_dag(tmp_path):
    result = _dry_run(tmp_path, "default")
    assert result.returncode == 0, result.stderr[-4000:]
    planned = jobs_planned(result)
    assert DEFAULT_DAG <= planned
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(
    importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="snakemake-executor-plugin-slurm is not installed (pip install snakemake-executor-plugin-slurm)",
)
def test_slurm_profile_plans_the_default_dag(tmp_path):
    profile = yaml.safe_load((REPO / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    result = _dry_run(tmp_path, "slurm")
    assert result.returncode == 0, result.stderr[-4000:]
    planned = jobs_planned(result)
    assert DEFAULT_DAG <= planned
    assert not (tmp_path / "results").exists()
