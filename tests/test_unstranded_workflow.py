"""A ChIP-seq-like run of unstranded tasks: one bigWig per task (reads of both strands summed) and an
unstranded input control, from the tiny simulated dataset, through `rule all`: single-channel
dataset, model, predictions, metrics and one exported track per task."""

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import yaml
from conftest import snakemake, tiny_config
from test_igv import check_session

from bpnet.io.tracks import read_chrom_sizes, write_bigwig


def summed_bigwig(pos: str, neg: str, sizes: dict, out) -> np.ndarray:
    """Write pos + neg as one bigWig; returns chr1's values."""
    tracks = {}
    for chrom, n in sizes.items():
        with pyBigWig.open(pos) as p, pyBigWig.open(neg) as m:
            tracks[chrom] = np.nan_to_num(p.values(chrom, 0, n, numpy=True)) + np.nan_to_num(m.values(chrom, 0, n, numpy=True))
    write_bigwig(out, sizes, tracks)
    return tracks


@pytest.fixture(scope="module")
def unstranded_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("unstranded")
    reference = tiny_config(work / "tiny.yaml")
    result = snakemake(work, reference, "simulate_dataset")
    assert result.returncode == 0, result.stderr[-4000:]
    cfg = yaml.safe_load(reference.read_text())
    sizes = read_chrom_sizes(work / cfg["data"]["chrom_sizes"])
    tasks = {}
    summed = {}
    for task in ("Oct4", "Sox2"):
        files = cfg["data"]["tasks"][task]
        out = work / f"{task}.bw"
        summed[task] = summed_bigwig(str(work / files["pos"]), str(work / files["neg"]), sizes, out)
        tasks[task] = {"bw": str(out), "peaks": files["peaks"]}
    control = "results/simulated/chip-nexus/patchcap/counts.{}.bw"
    summed_bigwig(str(work / control.format("pos")), str(work / control.format("neg")), sizes, work / "input.bw")
    cfg.update(experiment="chipseq_like")
    cfg["data"].update(tasks=tasks, control={"bw": str(work / "input.bw")}, truth=None)
    cfg["model"].update(use_control=True)
    (work / "regions.bed").write_text("chr1\t1000\t1300\tr1\nchr1\t5000\t7500\tr2\n")
    cfg["predict_regions"] = {"mine": {"bed": str(work / "regions.bed")}}
    config = work / "chipseq_like.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = snakemake(work, config)
    assert result.returncode == 0, result.stderr[-4000:]
    return work, summed


@pytest.mark.slow
def test_unstranded_tasks_run_end_to_end(unstranded_run):
    work, summed = unstranded_run
    res = work / "results/chipseq_like"
    ds = np.load(res / "dataset.npz")
    assert ds["counts"].shape[-1] == 2 and ds["control"].shape[-1] == 1  # one channel per task
    w = 0
    chrom, start = str(ds["chrom"][w]), int(ds["start"][w])
    width, c = int(ds["width"]), int(ds["extra_context"])
    np.testing.assert_array_equal(ds["counts"][w, c:c + width, 1], summed["Sox2"][chrom][start:start + width])
    pred = np.load(res / "predictions/model.npz")
    assert pred["profile"].shape[-1] == 2
    metrics = pd.read_csv(res / "evaluation/metrics.tsv", sep="\t")
    assert set(metrics["task"]) == {"Oct4", "Sox2"}
    auprc = metrics[metrics["metric"] == "auprc"]["value"]
    assert auprc.notna().all() and (auprc > 0).all()
    for task in ("Oct4", "Sox2"):
        with pyBigWig.open(str(res / "tracks" / f"{task}.bw")) as bw:
            assert set(bw.chroms()) == set(summed[task])
    assert not list((res / "tracks").glob("*.pos.bw"))
    assert (res / "evaluation/top_peaks.png").stat().st_size > 1000
    session = check_session(res / "igv/session.xml", ["Oct4", "Sox2"], strands=("",))  # one track per task
    assert "control" in {t.get("name") for t in session.iter("Track")}
    regions = pd.read_csv(res / "regions/mine/counts.tsv", sep="\t")
    assert list(regions.columns) == ["name", "chrom", "start", "end", "length", "Oct4_total", "Sox2_total"]
    assert sorted(p.name for p in (res / "regions/mine/tracks").glob("*.bw")) == ["Oct4.bw", "Sox2.bw"]


def test_a_mix_of_stranded_and_unstranded_tasks_stops_before_any_job(tmp_path):
    cfg = yaml.safe_load(tiny_config(tmp_path / "t.yaml").read_text())
    oct4 = cfg["data"]["tasks"]["Oct4"]
    cfg["data"]["tasks"]["Oct4"] = {"bw": oct4["pos"], "peaks": oct4["peaks"]}
    cfg["data"]["truth"] = None
    (tmp_path / "mixed.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = snakemake(tmp_path, tmp_path / "mixed.yaml", "-n")
    assert result.returncode != 0
    assert ("error: config key data.tasks: Oct4 unstranded (bw) but Sox2, Nanog, Klf4 stranded (pos + neg or bam)"
            in result.stderr)
