"""The IGV session (bpnet.steps.igv): every file it names exists relative to it, every task and
strand has its observed and predicted track, the locus is the test window with the most reads, the
top windows are its regions of interest; the motif instances BED. Small files the tests write.

``check_session`` is also used by the end-to-end test (test_report_workflow.py) on a real run.
"""

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bpnet.data.dataset import write_dataset
from bpnet.data.windows import write_windows
from bpnet.errors import BPNetInputError
from bpnet.steps.igv import session_relative, write_igv_session, write_motif_bed

LOG = logging.getLogger("test_igv")
TASKS = ["Oct4", "Sox2"]
WIDTH = 10


def parse_locus(text):
    chrom, span = text.rsplit(":", 1)
    start, end = span.split("-")
    return chrom, int(start) - 1, int(end)  # 0-based half-open


def check_session(session: Path, tasks, strands=("pos", "neg"), contributions=0, motifs=False):
    """Assert what every session must hold; returns the parsed root."""
    root = ET.parse(session).getroot()
    here = session.parent
    assert root.tag == "Session"
    paths = [r.get("path") for r in root.iter("Resource")]
    assert len(paths) == len(set(paths))
    for path in paths + [root.get("genome")]:
        assert (here / path).exists(), path  # relative to the session (or absolute)
    tracks = {t.get("name"): t for t in root.iter("Track")}
    for t in tracks.values():
        assert t.get("id") in paths
    labels = {"pos": " +", "neg": " -", "": ""}
    for task in tasks:
        for strand in strands:
            for kind in ("observed", "predicted"):
                name = f"{task}{labels[strand]} {kind}"
                assert name in tracks, name
                if strand == "neg" and kind == "predicted":  # drawn downwards, lighter
                    assert tracks[name].find("DataRange").get("flipAxis") == "true"
                    assert tracks[name].get("color") != tracks[f"{task} + predicted"].get("color")
    assert sum("contribution" in n for n in tracks) == contributions * len(tasks)
    assert ("motif instances" in tracks) == motifs
    assert "test windows" in tracks
    # the locus is a test window, the first region of interest
    windows = pd.read_csv(here / "test_windows.bed", sep="\t", skiprows=1, header=None)
    chrom, start, end = parse_locus(root.get("locus"))
    assert ((windows[0] == chrom) & (windows[1] == start) & (windows[2] == end)).any()
    regions = list(root.iter("Region"))
    assert regions and (regions[0].get("chromosome"), int(regions[0].get("start")), int(regions[0].get("end"))) == (
        chrom, start, end)
    top = pd.read_csv(here / "top_windows.bed", sep="\t", skiprows=1, header=None)
    assert len(top) == len(regions)
    return root


@pytest.fixture
def run(tmp_path):
    """windows.tsv (4 test windows, 2 train, 1 test background) and its dataset, tracks on disk."""
    windows = pd.DataFrame({
        "chrom": ["chr1", "chr1", "chr2", "chr2", "chr2", "chr3", "chr3"],
        "start": [0, 100, 0, 5, 50, 0, 200],
        "summit": [5, 105, 5, 10, 55, 5, 205],
        "tasks": ["Oct4", "Sox2", "Oct4,Sox2", "Sox2", "Oct4", "Sox2", ""],
        "split": ["train", "test", "test", "test", "train", "test", "test"],
        "kind": ["peak"] * 6 + ["background"],
    })
    windows["end"] = windows["start"] + WIDTH
    windows["name"] = windows["chrom"] + ":" + windows["start"].astype(str) + "-" + windows["end"].astype(str)
    (tmp_path / "results" / "x").mkdir(parents=True)
    write_windows(tmp_path / "results/x/windows.tsv", windows)
    n = len(windows)
    counts = np.zeros((n, WIDTH, 4), dtype=np.uint16)
    counts[1, 3, 0] = 5  # test chr1:100, 5 reads
    counts[2, :, :] = 1  # test chr2:0, 40 reads: the top window
    counts[3, :, 1] = 3  # test chr2:5, 30 reads, overlaps the top window: not a second top window
    counts[4, :, :] = 9  # train: not a test window
    counts[6, :, :] = 20  # background: not a peak
    write_dataset(tmp_path / "results/x/dataset.npz", {
        "sequence": np.zeros((n, WIDTH), dtype=np.uint8), "counts": counts,
        "chrom": windows["chrom"].to_numpy(str), "start": windows["start"].to_numpy(np.int64),
        "split": windows["split"].to_numpy(str), "window_tasks": windows["tasks"].to_numpy(str),
        "tasks": np.array(TASKS), "width": np.array(WIDTH), "extra_context": np.array(0)})
    files = {"genome": "data/genome.fa"}
    for task in TASKS:
        for strand in ("pos", "neg"):
            files[f"obs_{task}_{strand}"] = f"data/{task}.{strand}.bw"
            files[f"pred_{task}_{strand}"] = f"results/x/tracks/{task}.{strand}.bw"
        for head in ("profile", "counts"):
            files[f"contrib_{task}_{head}"] = f"results/x/interpretation/tracks/{task}.{head}.contrib.bw"
    for path in files.values():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    return tmp_path, files


def _write(tmp_path, files, monkeypatch, **kw):
    monkeypatch.chdir(tmp_path)  # the workflow's paths are relative to its working directory
    Path("results/x/igv").mkdir(exist_ok=True)
    observed = [files[f"obs_{t}_{s}"] for t in TASKS for s in ("pos", "neg")]
    predicted = [files[f"pred_{t}_{s}"] for t in TASKS for s in ("pos", "neg")]
    args = dict(genome_fasta=files["genome"], n_top=2, log=LOG)
    args.update(kw)
    return write_igv_session("results/x/igv/session.xml", "results/x/windows.tsv", "results/x/dataset.npz", TASKS,
                             observed, predicted, "results/x/igv/test_windows.bed",
                             "results/x/igv/top_windows.bed", **args)


def test_session_opens_every_track_at_the_top_test_window(run, monkeypatch):
    tmp_path, files = run
    assert _write(tmp_path, files, monkeypatch) == "chr2:1-10"
    session = tmp_path / "results/x/igv/session.xml"
    root = check_session(session, TASKS)
    assert root.get("genome") == "../../../data/genome.fa"
    assert [r.get("path") for r in root.iter("Resource")][0] == "../../../data/Oct4.pos.bw"
    # the test peak windows (not train, not background), in windows.tsv order
    bed = (tmp_path / "results/x/igv/test_windows.bed").read_text().splitlines()
    assert bed[1:] == ["chr1\t100\t110\tchr1:100-110|Sox2\t0\t.", "chr2\t0\t10\tchr2:0-10|Oct4,Sox2\t0\t.",
                       "chr2\t5\t15\tchr2:5-15|Sox2\t0\t.", "chr3\t0\t10\tchr3:0-10|Sox2\t0\t."]
    top = (tmp_path / "results/x/igv/top_windows.bed").read_text().splitlines()
    assert top[1:] == ["chr2\t0\t10\ttop1|chr2:0-10|40 reads|Oct4,Sox2\t1000\t.",
                       "chr1\t100\t110\ttop2|chr1:100-110|5 reads|Sox2\t500\t."]
    # + and - of a task in one family, tasks in different ones; observed and predicted share a scale
    tracks = {t.get("name"): t for t in root.iter("Track")}
    assert tracks["Oct4 + observed"].get("color") == tracks["Oct4 + predicted"].get("color")
    assert tracks["Oct4 + observed"].get("color") != tracks["Sox2 + observed"].get("color")
    assert tracks["Oct4 - observed"].get("autoscaleGroup") == tracks["Oct4 + predicted"].get("autoscaleGroup")
    # the same inputs give the same bytes
    first = session.read_bytes()
    _write(tmp_path, files, monkeypatch)
    assert session.read_bytes() == first


def test_session_with_interpretation_control_and_genome_id(run, monkeypatch):
    tmp_path, files = run
    (tmp_path / "results/x/igv").mkdir(parents=True, exist_ok=True)
    (tmp_path / "results/x/igv/motif_instances.bed").write_text("")
    contrib = [files[f"contrib_{t}_{h}"] for t in TASKS for h in ("profile", "counts")]
    control = ["data/control.pos.bw", "data/control.neg.bw"]
    for path in control:
        (tmp_path / path).write_text("")
    _write(tmp_path, files, monkeypatch, contributions=contrib, contribution_heads=["profile", "counts"],
           control=control, motif_bed="results/x/igv/motif_instances.bed", minus_strand_negative=True)
    root = check_session(tmp_path / "results/x/igv/session.xml", TASKS, contributions=2, motifs=True)
    tracks = {t.get("name"): t for t in root.iter("Track")}
    assert "control -" in tracks
    # a - strand stored negative is drawn as it is; the predicted one (positive) is flipped
    assert tracks["Oct4 - observed"].find("DataRange").get("flipAxis") == "false"
    _write(tmp_path, files, monkeypatch, genome_id="mm10")
    assert ET.parse(tmp_path / "results/x/igv/session.xml").getroot().get("genome") == "mm10"


def test_unstranded_tasks_have_one_track_each(run, monkeypatch):
    tmp_path, files = run
    monkeypatch.chdir(tmp_path)
    Path("results/x/igv").mkdir(exist_ok=True)
    for task in TASKS:
        Path(f"data/{task}.bw").write_text("")
        Path(f"results/x/tracks/{task}.bw").write_text("")
    # the dataset's counts have 4 channels, read as 2 tasks x 2 strands: reads are summed all the same
    write_igv_session("results/x/igv/session.xml", "results/x/windows.tsv", "results/x/dataset.npz", TASKS,
                      [f"data/{t}.bw" for t in TASKS], [f"results/x/tracks/{t}.bw" for t in TASKS],
                      "results/x/igv/test_windows.bed", "results/x/igv/top_windows.bed",
                      genome_fasta=files["genome"], log=LOG)
    check_session(tmp_path / "results/x/igv/session.xml", TASKS, strands=("",))
    with pytest.raises(BPNetInputError, match="3 tracks for 2 tasks"):
        write_igv_session("results/x/igv/session.xml", "results/x/windows.tsv", "results/x/dataset.npz", TASKS,
                          ["a", "b", "c"], ["a", "b", "c"], "results/x/igv/test_windows.bed",
                          "results/x/igv/top_windows.bed", genome_fasta=files["genome"], log=LOG)


def test_paths_relative_to_the_session_unless_absolute():
    assert session_relative("results/x/tracks/a.bw", "results/x/igv") == "../tracks/a.bw"
    assert session_relative("/data/a.bw", "results/x/igv") == "/data/a.bw"


def test_motif_bed_names_task_pattern_and_motif(tmp_path):
    inst = pd.DataFrame({
        "chrom": ["chr1", "chr2"], "start": [10, 20], "end": [25, 31], "strand": ["+", "-"],
        "pattern": ["pattern_0", "pattern_3"], "task": ["Sox2", "Oct4"], "match": [0.91234, 1.2],
        "contrib": [0.5, 0.2], "window_index": [0, 1], "motif": ["Oct4-Sox2", ""], "similarity": [0.9, None]})
    inst.to_csv(tmp_path / "instances.tsv", sep="\t", index=False)
    assert write_motif_bed(tmp_path / "instances.tsv", tmp_path / "m.bed", TASKS, log=LOG) == 2
    lines = (tmp_path / "m.bed").read_text().splitlines()
    assert lines[0].startswith("track") and 'itemRgb="On"' in lines[0]
    assert lines[1] == "chr1\t10\t25\tSox2/pattern_0/Oct4-Sox2\t912\t+\t10\t25\t255,127,14"
    assert lines[2] == "chr2\t20\t31\tOct4/pattern_3\t1000\t-\t20\t31\t31,119,180"
    # an experiment without instances: a BED with its track line only
    pd.DataFrame(columns=inst.columns).to_csv(tmp_path / "none.tsv", sep="\t", index=False)
    assert write_motif_bed(tmp_path / "none.tsv", tmp_path / "none.bed", TASKS, log=LOG) == 0
    assert len((tmp_path / "none.bed").read_text().splitlines()) == 1
