"""End to end: the workflow on a tiny simulated config, through `python -m snakemake`.

One run (about a minute on 2 cores) checks every output of `rule all`, then that a second run has
nothing to do, that a change of the training section reruns training and what follows but not
windowing, and that a config typo fails before any job runs, naming the key. A failing rule shows
that each retry asks for more memory.
"""

import json
import re
import shutil

import numpy as np
import pandas as pd
import pyBigWig
import pytest
from conftest import TINY, jobs_planned, snakemake, tiny_config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("wf")
    config = tiny_config(work / "tiny.yaml")
    result = snakemake(work, config)
    assert result.returncode == 0, result.stderr[-4000:]
    return work, config


@pytest.mark.slow
def test_outputs_of_rule_all(tiny_run):
    work, _ = tiny_run
    res = work / "results" / "tiny"
    metrics = pd.read_csv(res / "evaluation" / "metrics.tsv", sep="\t")
    assert set(metrics["model"]) == {"model", "oracle"}
    assert set(metrics["task"]) == {"Oct4", "Sox2", "Nanog", "Klf4"}
    assert set(metrics["split"]) == {"test", "valid"}
    auprc = metrics[(metrics["metric"] == "auprc") & (metrics["model"] == "oracle")]["value"]
    assert auprc.notna().all() and (auprc > 0).all()
    summary = json.loads((res / "evaluation" / "summary.json").read_text())
    assert summary
    history = pd.read_csv(res / "model" / "history.tsv", sep="\t")
    assert history["epoch"].tolist() == [1, 2]
    assert (res / "model" / "training_curve.png").stat().st_size > 1000
    assert not (res / "model" / "resume.pt").exists()
    sizes = dict(line.split() for line in (work / "results/simulated/genome.chrom.sizes").read_text().splitlines())
    for task in ("Oct4", "Klf4"):
        for strand in ("pos", "neg"):
            bw = pyBigWig.open(str(res / "tracks" / f"{task}.{strand}.bw"))
            assert {c: str(n) for c, n in bw.chroms().items()} == sizes  # header: every chromosome
            windows = pd.read_csv(res / "windows.tsv", sep="\t")
            w = windows[windows["split"] == "test"].iloc[0]
            vals = np.nan_to_num(bw.values(w["chrom"], int(w["start"]), int(w["end"]), numpy=True))
            assert vals.sum() > 0
            bw.close()
    for rule in ("peak_windows", "build_dataset", "train", "predict", "evaluate", "export_tracks"):
        log = work / "logs" / "tiny" / f"{rule}.log"
        assert log.exists() and "finished" in log.read_text(), rule


@pytest.mark.slow
def test_second_run_does_nothing(tiny_run):
    work, config = tiny_run
    result = snakemake(work, config, "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_training_change_reruns_training_not_windowing(tiny_run):
    work, _ = tiny_run
    changed = tiny_config(work / "changed.yaml", training={**TINY["training"], "learning_rate": 0.001})
    result = snakemake(work, changed, "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    planned = jobs_planned(result)
    assert {"train", "predict", "evaluate"} <= planned
    assert not planned & {"simulate_dataset", "peak_windows", "build_dataset", "oracle_predictions"}


@pytest.mark.slow
def test_genome_tiling_runs_in_parts_and_redoes_only_a_lost_one(tiny_run):
    """export.regions as a tiling: export.parts jobs merged into one bigWig per track; a part
    lost (a killed job) is redone alone, and the merged tracks come back the same."""
    work, _ = tiny_run
    sizes = dict(line.split() for line in (work / "results/simulated/genome.chrom.sizes").read_text().splitlines())
    chrom = list(sizes)[-1]
    config = tiny_config(work / "tiling.yaml", export={"regions": [chrom], "tile_overlap": 50, "parts": 3,
                                                       "decimals": 2})
    result = snakemake(work, config, "export_tracks_tiny")
    assert result.returncode == 0, result.stderr[-4000:]
    parts = work / "results/tiny/tracks/parts"
    assert sorted(p.name for p in parts.iterdir()) == ["0-of-3", "1-of-3", "2-of-3"]
    for i in range(3):
        assert "finished" in (work / f"logs/tiny/export_part/{i}-of-3.log").read_text()
    track = work / "results/tiny/tracks/Oct4.pos.bw"

    def values():
        bw = pyBigWig.open(str(track))
        try:
            return bw.values(chrom, 0, int(sizes[chrom]), numpy=True)
        finally:
            bw.close()

    first = values()
    assert not np.isnan(first).any() and first.sum() > 0  # every base of the chromosome
    np.testing.assert_array_equal(first, np.round(first, 2).astype(np.float32))

    # a run killed while part 1 was running: no merged tracks yet, parts 0 and 2 done
    shutil.rmtree(parts / "1-of-3")
    for bw in (work / "results/tiny/tracks").glob("*.bw"):
        bw.unlink()
    result = snakemake(work, config, "export_tracks_tiny", "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"^export_part\s+1$", result.stdout, re.M), result.stdout[-3000:]
    result = snakemake(work, config, "export_tracks_tiny")
    assert result.returncode == 0, result.stderr[-4000:]
    np.testing.assert_array_equal(values(), first)


@pytest.mark.slow
def test_config_typo_fails_before_any_job(tmp_path):
    config = tiny_config(tmp_path / "typo.yaml", training={**TINY["training"], "learning_rte": 0.1})
    result = snakemake(tmp_path, config, "-n")
    assert result.returncode != 0
    assert "learning_rte" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_each_retry_asks_for_more_memory(tmp_path):
    """A job resubmitted by `retries` (the cluster profiles set 2) asks for the rule's mem_mb times
    the attempt number. Rule peak_windows alone (no simulation) fails on a 3-column peak file."""
    (tmp_path / "peaks.narrowPeak").write_text("chr1\t1000\t1200\n")
    # the split chromosomes of the config (chr1-4, 8, 9) must be in the genome (checked before any job)
    (tmp_path / "genome.chrom.sizes").write_text("".join(f"chr{i}\t100000\n" for i in range(1, 10)))
    for strand in ("pos", "neg"):  # must exist (the config check); rule peak_windows never reads them
        (tmp_path / f"unread.{strand}.bw").write_bytes(b"")
    tasks = {"Oct4": {"pos": "unread.pos.bw", "neg": "unread.neg.bw", "peaks": "peaks.narrowPeak"}}
    config = tiny_config(tmp_path / "broken.yaml", experiment="broken",
                         data={"chrom_sizes": "genome.chrom.sizes", "tasks": tasks, "truth": None, "control": None})
    result = snakemake(tmp_path, config, "--retries", "2", "results/broken/windows.tsv")
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert out.count("Error in rule peak_windows") == 3, out[-4000:]
    # the resources Snakemake resolved for each of the three attempts (only peak_windows runs)
    mem = [int(m) for m in re.findall(r"^    resources: .*\bmem_mb=(\d+)", out, flags=re.M)]
    assert len(mem) == 3 and mem[0] > 0, out[-4000:]
    assert mem == [mem[0], 2 * mem[0], 3 * mem[0]]


def test_split_chromosomes_the_genome_lacks_stop_the_workflow_before_any_job(tmp_path):
    """valid/test chromosomes are checked against a genome whose chrom sizes exist when the config
    is read (they used to surface at training, after windowing and dataset building); a yeast-like
    genome with Roman-numeral chromosomes gets a warning for the default exclude_chroms chrX."""
    (tmp_path / "peaks.narrowPeak").write_text("chrI\t1000\t1200\t.\t0\t.\t5\t-1\t-1\t100\n")
    (tmp_path / "genome.chrom.sizes").write_text(
        "".join(f"chr{r}\t100000\n" for r in ("I", "II", "III", "IV", "IX", "X", "XI")))
    for strand in ("pos", "neg"):
        (tmp_path / f"unread.{strand}.bw").write_bytes(b"")
    tasks = {"Oct4": {"pos": "unread.pos.bw", "neg": "unread.neg.bw", "peaks": "peaks.narrowPeak"}}
    data = {"chrom_sizes": "genome.chrom.sizes", "tasks": tasks, "truth": None, "control": None}
    config = tiny_config(tmp_path / "yeast.yaml", experiment="yeast", data=data)
    result = snakemake(tmp_path, config, "-n", "results/yeast/windows.tsv")
    err = result.stderr + result.stdout
    assert result.returncode != 0
    assert "error: config key windows.valid_chroms: chr2, chr3, chr4 not in the genome's chrom sizes" in err, err[-3000:]
    assert "error: config key windows.test_chroms: chr1, chr8, chr9 not in" in err
    assert "windows.exclude_chroms drops chrX" in err and "Roman numerals" in err
    fixed = tiny_config(tmp_path / "fixed.yaml", experiment="yeast", data=data,
                        windows={"width": 200, "valid_chroms": ["chrII"], "test_chroms": ["chrIII"],
                                 "exclude_chroms": ["chrM"]})
    result = snakemake(tmp_path, fixed, "-n", "results/yeast/windows.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Roman numerals" not in result.stderr + result.stdout


def test_a_missing_input_file_is_one_line_naming_the_config_key(tmp_path):
    """A config naming a bigWig that does not exist (and that no rule makes) stops the workflow
    before any job, with one line per file naming the config key, not a MissingInputException."""
    (tmp_path / "peaks.narrowPeak").write_text("chr1\t1000\t1200\t.\t0\t.\t5\t-1\t-1\t100\n")
    (tmp_path / "genome.chrom.sizes").write_text("chr1\t100000\n")
    (tmp_path / "counts.neg.bw").write_bytes(b"")
    tasks = {"Oct4": {"pos": "nowhere/counts.pos.bw", "neg": "counts.neg.bw", "peaks": "peaks.narrowPeak"}}
    config = tiny_config(tmp_path / "broken.yaml", experiment="broken",
                         data={"chrom_sizes": "genome.chrom.sizes", "tasks": tasks, "truth": None, "control": None})
    result = snakemake(tmp_path, config, "-n", "results/broken/windows.tsv")
    err = result.stderr + result.stdout
    assert result.returncode != 0
    assert "error: config key data.tasks.Oct4.pos: nowhere/counts.pos.bw does not exist" in err, err[-3000:]
    assert "data.tasks.Oct4.neg" not in err  # the file that exists is not reported
    assert "MissingInputException" not in err
