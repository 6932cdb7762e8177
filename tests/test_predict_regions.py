"""Predicting the user's regions (config key predict_regions, bpnet.steps.regions): BED regions and
FASTA sequences of any length give the model's predictions for the same sequence, each base once;
counts.tsv sums the profile; the bigWigs hold the npz's values; bad input is one clear line. The
last test runs the workflow's target on the tiny config."""

import copy
import gzip

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import torch
from conftest import REPO, jobs_planned, snakemake, tiny_config

from bpnet.config_check import input_paths, schema_error_line
from bpnet.errors import BPNetInputError
from bpnet.io.npz import write_npz
from bpnet.io.sequence import decode, encode
from bpnet.io.tracks import write_bigwig
from bpnet.model.network import BPNet, BPNetConfig, init_weights, postprocess
from bpnet.model.weights import save_checkpoint
from bpnet.steps.predict import predict_outputs, predict_profile
from bpnet.steps.regions import (
    predict_regions,
    read_bed_regions,
    read_fasta_records,
    region_tiles,
    write_region_tracks,
)

TASKS = ("a", "b")
W = 100  # the dataset's window width
CHROMS = {"chr1": 1500, "chr2": 60}  # chr2: shorter than a window


def tiny_model(use_control=False):
    model = BPNet(BPNetConfig(hidden_size=4, stem_kernel=5, num_dilated_layers=2, dilated_kernel=3,
                              profile_kernel=5, tasks=TASKS, use_control=use_control))
    init_weights(model, 5)
    with torch.no_grad():  # totals of a few reads rather than ~0
        for head in model.count_heads:
            head.bias.add_(2.0)
    return model.eval()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A genome FASTA, a checkpoint, a dataset.npz holding the window width, and the model."""
    d = tmp_path_factory.mktemp("regions")
    rng = np.random.default_rng(7)
    genome = {c: decode(rng.integers(0, 4, n).astype(np.uint8)) for c, n in CHROMS.items()}
    with open(d / "genome.fa", "w") as fh:
        for c, seq in genome.items():
            fh.write(f">{c}\n" + "".join(seq[i:i + 60] + "\n" for i in range(0, len(seq), 60)))
    (d / "genome.chrom.sizes").write_text("".join(f"{c}\t{n}\n" for c, n in CHROMS.items()))
    model = tiny_model()
    save_checkpoint(model, d / "model.safetensors")
    write_npz(d / "dataset.npz", {"width": np.int64(W)})
    return d, genome, model


def window_codes(seq: str, start: int, width: int = W) -> np.ndarray:
    """Codes of ``seq[start:start + width]`` with N outside the sequence."""
    text = "".join(seq[p] if 0 <= p < len(seq) else "N" for p in range(start, start + width))
    return encode(text)


def expected_track(model, codes: np.ndarray) -> np.ndarray:
    out = predict_outputs(model, codes[None])
    return postprocess({k: torch.from_numpy(v) for k, v in out.items()}).numpy()[0]


def run(d, name, **kwargs):
    out = d / name
    out.mkdir(exist_ok=True)
    predict_regions(out / "counts.tsv", out / "predictions.npz", TASKS, d / "model.safetensors",
                    d / "dataset.npz", genome=d / "genome.fa", device="cpu", name=name, **kwargs)
    with np.load(out / "predictions.npz") as npz:
        pred = {k: npz[k] for k in npz.files}
    return out, pred


# BED regions of at most W bp: one window with the region in its centre, the genome's bases around
# it (N past a chromosome end).
SHORT = [("chr1", 200, 300, "exact"), ("chr1", 1000, 1050, "short"), ("chr1", 1480, 1500, "at_end"),
         ("chr2", 10, 30, "short_chrom"), ("chr1", 0, 7, None)]


def test_a_bed_region_gets_the_prediction_of_its_centred_window(setup):
    d, genome, model = setup
    (d / "short.bed").write_text("track name=x\n" + "".join(
        f"{c}\t{s}\t{e}" + (f"\t{n}\t0\t+" if n else "") + "\n" for c, s, e, n in SHORT))
    _, pred = run(d, "short", bed=d / "short.bed")
    assert list(pred["name"]) == ["exact", "short", "at_end", "short_chrom", "chr1:0-7"]
    assert list(pred["chrom"]) == [r[0] for r in SHORT] and list(pred["length"]) == [r[2] - r[1] for r in SHORT]
    assert pred["profile"].dtype == np.float32 and pred["profile"].shape == (sum(pred["length"]), 4)
    assert list(pred["tasks"]) == list(TASKS) and int(pred["width"]) == W
    for i, (chrom, start, end, _) in enumerate(SHORT):
        length = end - start
        window = start - (W - length) // 2
        track = expected_track(model, window_codes(genome[chrom], window))
        got = pred["profile"][pred["offsets"][i]:pred["offsets"][i + 1]]
        np.testing.assert_allclose(got, track[start - window:end - window], rtol=1e-5, atol=1e-7)
    # a region of exactly W bp: its reads are the count head's prediction
    out = predict_outputs(model, window_codes(genome["chr1"], 200)[None])
    np.testing.assert_allclose(pred["counts"][0], np.expm1(out["count_logits"][0]).clip(0), rtol=1e-5)


@pytest.mark.parametrize("overlap", [0, 20, 49])
def test_tiling_covers_every_region_exactly_once(overlap):
    lengths = np.array([1, 50, 99, 100, 101, 150, 333, 1000, 100])
    region, start, lo, hi = region_tiles(lengths, W, overlap)
    assert np.all(np.diff(region) >= 0)
    for i, n in enumerate(lengths):
        sel = region == i
        bases = np.concatenate([np.arange(a, b) for a, b in zip(lo[sel], hi[sel])])
        np.testing.assert_array_equal(bases, np.arange(n))  # each base once, in order
        assert np.all((lo[sel] >= start[sel]) & (hi[sel] <= start[sel] + W))  # inside its window
        if n <= W:
            assert start[sel].tolist() == [-((W - n) // 2)]
        else:  # windows inside the region, the last one at its end
            assert start[sel].min() == 0 and start[sel].max() == n - W
            assert np.all(np.diff(start[sel]) <= W - 2 * overlap)


def test_a_long_region_takes_each_base_from_the_nearest_window_and_a_fasta_record_agrees(setup):
    d, genome, model = setup
    start, end, overlap = 100, 433, 20
    (d / "long.bed").write_text(f"chr1\t{start}\t{end}\tlong\n")
    _, pred = run(d, "long", bed=d / "long.bed", tile_overlap=overlap)
    # the windows by hand: step W - 2 * overlap from the region start, the last at its end
    starts = list(range(start, end - W, W - 2 * overlap)) + [end - W]
    tracks = predict_profile(model, np.stack([window_codes(genome["chr1"], s) for s in starts]))
    centres = np.array(starts) + W / 2
    expected = np.empty((end - start, 4), np.float32)
    for p in range(start, end):
        covering = [k for k, s in enumerate(starts) if s <= p < s + W]
        dist = [abs(p + 0.5 - centres[k]) for k in covering]
        k = covering[max(j for j in range(len(dist)) if dist[j] == min(dist))]  # ties: downstream
        expected[p - start] = tracks[k, p - starts[k]]
    np.testing.assert_allclose(pred["profile"], expected, rtol=1e-5, atol=1e-7)
    # the same sequence as a FASTA record (and a lower-case copy) gives the same profile
    seq = genome["chr1"][start:end]
    (d / "long.fa").write_text(f">rec description\n{seq[:150]}\n{seq[150:]}\n>low\n{seq.lower()}\n")
    _, fa = run(d, "long_fasta", sequences=d / "long.fa", tile_overlap=overlap)
    assert list(fa["name"]) == ["rec", "low"] and "chrom" not in fa
    np.testing.assert_allclose(fa["profile"][:end - start], pred["profile"], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(fa["profile"][end - start:], fa["profile"][:end - start])


def test_a_short_fasta_sequence_is_centred_between_ns(setup):
    d, _, model = setup
    (d / "short.fa").write_text(">s\nACGTRYACGTACGTTTGACCA\n")  # 21 bp, R and Y taken as N
    _, pred = run(d, "short_fasta", sequences=d / "short.fa")
    codes = encode("N" * ((W - 21) // 2) + "ACGTNNACGTACGTTTGACCA" + "N" * (W - 21 - (W - 21) // 2))
    track = expected_track(model, codes)
    lo = (W - 21) // 2
    np.testing.assert_allclose(pred["profile"], track[lo:lo + 21], rtol=1e-5, atol=1e-7)


def test_a_control_model_reads_the_control_of_the_regions_zero_past_a_chromosome_end(setup, tmp_path):
    d, genome, _ = setup
    rng = np.random.default_rng(2)
    control = {c: rng.poisson(1.0, (n, 2)).astype(np.float32) for c, n in CHROMS.items()}
    paths = [tmp_path / f"control.{s}.bw" for s in ("pos", "neg")]
    for k, path in enumerate(paths):
        write_bigwig(path, CHROMS, {c: v[:, k] for c, v in control.items()})
    model = tiny_model(use_control=True)
    save_checkpoint(model, tmp_path / "control.safetensors")
    (tmp_path / "r.bed").write_text("chr1\t1470\t1500\nchr1\t300\t400\nchr2\t0\t60\n")
    gz = tmp_path / "r.bed.gz"
    gz.write_bytes(gzip.compress((tmp_path / "r.bed").read_bytes()))  # gzipped BED: the same
    predict_regions(tmp_path / "c.tsv", tmp_path / "p.npz", TASKS, tmp_path / "control.safetensors",
                    d / "dataset.npz", bed=gz, genome=d / "genome.fa", control=paths, device="cpu")
    with np.load(tmp_path / "p.npz") as npz:
        profile = npz["profile"]
    for row, (chrom, window, lo, hi) in zip((0, 30, 130), [("chr1", 1435, 35, 65), ("chr1", 300, 0, 100),
                                                           ("chr2", -20, 20, 80)]):
        ctl = np.zeros((W, 2), np.float32)
        inside = np.arange(window, window + W)
        ok = (inside >= 0) & (inside < CHROMS[chrom])
        ctl[ok] = control[chrom][inside[ok]]
        out = predict_outputs(model, window_codes(genome[chrom], window)[None], ctl[None])
        track = postprocess({k: torch.from_numpy(v) for k, v in out.items()}).numpy()[0]
        np.testing.assert_allclose(profile[row:row + hi - lo], track[lo:hi], rtol=1e-5, atol=1e-7)


def test_counts_tsv_totals_are_the_sums_of_the_profile(setup):
    d, _, _ = setup
    (d / "sums.bed").write_text("chr1\t200\t300\tone\nchr1\t10\t450\ttwo\nchr2\t0\t60\n")
    out, pred = run(d, "sums", bed=d / "sums.bed")
    table = pd.read_csv(out / "counts.tsv", sep="\t")
    assert list(table.columns) == ["name", "chrom", "start", "end", "length",
                                   "a_total", "a_pos", "a_neg", "b_total", "b_pos", "b_neg"]
    assert table["name"].tolist() == ["one", "two", "chr2:0-60"] and table["length"].tolist() == [100, 440, 60]
    for i in range(3):
        rows = pred["profile"][pred["offsets"][i]:pred["offsets"][i + 1]].astype(np.float64)
        for t, task in enumerate(TASKS):
            pos, neg = rows[:, 2 * t].sum(), rows[:, 2 * t + 1].sum()
            np.testing.assert_allclose(table[f"{task}_pos"][i], pos, rtol=1e-6)
            np.testing.assert_allclose(table[f"{task}_neg"][i], neg, rtol=1e-6)
            np.testing.assert_allclose(table[f"{task}_total"][i], pos + neg, rtol=1e-6)
            np.testing.assert_allclose(pred["counts"][i, 2 * t:2 * t + 2], [pos, neg], rtol=1e-12)
    # FASTA input: name and length only
    (d / "two.fa").write_text(">x\n" + "ACGT" * 30 + "\n>y\n" + "GATTACA" * 3 + "\n")
    out, _ = run(d, "two_fasta", sequences=d / "two.fa")
    table = pd.read_csv(out / "counts.tsv", sep="\t")
    assert list(table.columns[:3]) == ["name", "length", "a_total"] and table["length"].tolist() == [120, 21]


def test_bigwig_values_are_the_npz_values_and_overlaps_go_to_the_nearest_centre(setup):
    d, _, _ = setup
    # two overlapping regions on chr1 (out of order), one on chr2
    (d / "tracks.bed").write_text("chr1\t250\t400\tB\nchr1\t200\t300\tA\nchr2\t5\t55\tC\n")
    out, pred = run(d, "tracks", bed=d / "tracks.bed")
    write_region_tracks(out / "tracks", out / "predictions.npz", d / "genome.chrom.sizes", TASKS)
    prof = {str(n): pred["profile"][pred["offsets"][i]:pred["offsets"][i + 1]] for i, n in enumerate(pred["name"])}
    for c, (task, strand) in enumerate([(t, s) for t in TASKS for s in ("pos", "neg")]):
        bw = pyBigWig.open(str(out / "tracks" / f"{task}.{strand}.bw"))
        assert bw.chroms() == CHROMS
        chr1 = bw.values("chr1", 0, CHROMS["chr1"], numpy=True)
        np.testing.assert_array_equal(bw.values("chr2", 5, 55, numpy=True), prof["C"][:, c])
        bw.close()
        assert np.isnan(chr1[:200]).all() and np.isnan(chr1[400:]).all()
        # centres 250 (A) and 325 (B): bases up to 286 are nearer A's, from 288 on B's; 287 is as
        # near to both and goes to the one listed first (B)
        np.testing.assert_array_equal(chr1[200:287], prof["A"][:87, c])
        np.testing.assert_array_equal(chr1[287:400], prof["B"][37:, c])


def test_write_region_tracks_refuses_fasta_predictions(setup):
    d, _, _ = setup
    (d / "one.fa").write_text(">x\nACGTACGT\n")
    out, _ = run(d, "one_fasta", sequences=d / "one.fa")
    with pytest.raises(BPNetInputError, match="hold FASTA sequences, which have no genome coordinates"):
        write_region_tracks(out / "tracks", out / "predictions.npz", d / "genome.chrom.sizes", TASKS)


@pytest.mark.parametrize("text, message", [
    ("chr1\t100\n", r"bad\.bed, line 1: expected at least 3 columns \(chrom, start, end\), got 2"),
    ("chr1\t100\t2x0\n", r"bad\.bed, line 1: expected integer start and end .*'100' and '2x0'"),
    ("# header\nchr1\t300\t300\n", r"bad\.bed, line 2: expected 0 <= start < end .*start 300 and end 300"),
    ("chr1\t300\t200\n", r"bad\.bed, line 1: expected 0 <= start < end"),
    ("chr1\t-5\t20\n", r"bad\.bed, line 1: expected 0 <= start < end"),
    ("chr1\t1\t10\nchrZ\t1\t10\n", r"bad\.bed, line 2: chromosome 'chrZ' is not in the genome FASTA .*genome\.fa \(it has chr1, chr2\)"),
    ("chr1\t1400\t1501\n", r"bad\.bed, line 1: region chr1:1400-1501 ends past the end of chr1 \(1500 bp in"),
    ("", r"BED file .*bad\.bed holds no regions"),
    ("# nothing\n\n", r"BED file .*bad\.bed holds no regions"),
])
def test_bad_bed_lines_are_one_clear_error(setup, text, message):
    d, _, _ = setup
    (d / "bad.bed").write_text(text)
    with pytest.raises(BPNetInputError, match=message):
        read_bed_regions(d / "bad.bed", CHROMS, d / "genome.fa")
    with pytest.raises(BPNetInputError, match=message):  # the same through the rule's function
        run(d, "bad_bed", bed=d / "bad.bed")


@pytest.mark.parametrize("text, message", [
    ("", r"FASTA file .*bad\.fa holds no records"),
    ("\n\n", r"FASTA file .*bad\.fa holds no records"),
    ("ACGT\n", r"bad\.fa, line 1: sequence before the first header line"),
    (">a\nACGT\n>b\nACJGT\n", r"bad\.fa, record 'b' \(header on line 3\): letter 'J' at position 2 is not DNA"),
    (">a\n>b\nACGT\n", r"bad\.fa, line 1: record 'a' has no sequence"),
    (">a\nACGT\n> \nACGT\n", r"bad\.fa, line 3: a header '>' without a name"),
])
def test_bad_fasta_files_are_one_clear_error(setup, text, message):
    d, _, _ = setup
    (d / "bad.fa").write_text(text)
    with pytest.raises(BPNetInputError, match=message):
        read_fasta_records(d / "bad.fa")
    with pytest.raises(BPNetInputError, match=message):
        run(d, "bad_fasta", sequences=d / "bad.fa")


def test_missing_files_a_bad_overlap_and_a_control_model_with_fasta(setup, tmp_path):
    d, _, _ = setup
    with pytest.raises(BPNetInputError, match=r"BED file .*nowhere\.bed does not exist"):
        run(d, "missing", bed=d / "nowhere.bed")
    with pytest.raises(BPNetInputError, match=r"FASTA file .*nowhere\.fa does not exist"):
        run(d, "missing", sequences=d / "nowhere.fa")
    (d / "ok.fa").write_text(">x\nACGT\n")
    with pytest.raises(BPNetInputError, match=r"config key predict_regions\.wide\.tile_overlap: 50 bp .* "
                                              r"expected 0 <= tile_overlap < 50"):
        run(d, "wide", sequences=d / "ok.fa", tile_overlap=50)
    save_checkpoint(tiny_model(use_control=True), tmp_path / "control.safetensors")
    with pytest.raises(BPNetInputError, match="uses a control track, which FASTA sequences do not have"):
        predict_regions(tmp_path / "c.tsv", tmp_path / "p.npz", TASKS, tmp_path / "control.safetensors",
                        d / "dataset.npz", sequences=d / "ok.fa", device="cpu", name="ctl")


def _schema_line(predict_regions_section):
    from snakemake.utils import validate

    cfg = {"data": {"genome_fasta": "g.fa", "chrom_sizes": "g.sizes",
                    "tasks": {"a": {"pos": "p.bw", "neg": "n.bw", "peaks": "x.bed"}}},
           "predict_regions": copy.deepcopy(predict_regions_section)}
    try:
        validate(cfg, schema=str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    except Exception as err:  # snakemake's WorkflowError
        return schema_error_line(err)
    return cfg


def test_the_schema_wants_exactly_one_of_bed_and_fasta():
    assert _schema_line({"both": {"bed": "r.bed", "fasta": "s.fa"}}) == (
        "error: config key predict_regions.both: give bed or fasta (exactly one of these), found bed, fasta")
    assert _schema_line({"neither": {"tile_overlap": 10}}) == (
        "error: config key predict_regions.neither: give bed or fasta (exactly one of these), found tile_overlap")
    assert "predict_regions.x" in _schema_line({"x": {"bed": "r.bed", "typo": 1}})
    cfg = _schema_line({"mine": {"bed": "r.bed"}, "seqs": {"fasta": "s.fa", "tile_overlap": 30}})
    assert cfg["predict_regions"] == {"mine": {"bed": "r.bed", "tile_overlap": None},
                                      "seqs": {"fasta": "s.fa", "tile_overlap": 30}}
    # the files are checked at parse time like every input the config names
    assert ("predict_regions.mine.bed", "r.bed") in input_paths(cfg)
    assert ("predict_regions.seqs.fasta", "s.fa") in input_paths(cfg)


@pytest.mark.slow
def test_the_predict_regions_target_on_the_tiny_config(tmp_path):
    """The tiny config up to `predict_regions` (simulation, windows, dataset, training, then the
    region rules; no evaluation or export) with a small BED and FASTA; rule all leaves the region
    rules out when the key is absent."""
    (tmp_path / "regions.bed").write_text(
        "chr1\t10000\t10200\tpeak\nchr1\t20000\t20050\nchr1\t30000\t30750\tlong\nchr2\t5000\t5300\n")
    rng = np.random.default_rng(1)
    (tmp_path / "seqs.fa").write_text(f">short\n{decode(rng.integers(0, 4, 150).astype(np.uint8))}\n"
                                      f">long\n{decode(rng.integers(0, 4, 520).astype(np.uint8))}\n")
    regions = {"peaks": {"bed": "regions.bed"}, "seqs": {"fasta": "seqs.fa", "tile_overlap": 40}}
    config = tiny_config(tmp_path / "regions.yaml", predict_regions=regions)
    result = snakemake(tmp_path, config, "predict_regions")
    assert result.returncode == 0, result.stderr[-4000:]
    res = tmp_path / "results" / "tiny" / "regions"
    table = pd.read_csv(res / "peaks" / "counts.tsv", sep="\t")
    assert table["name"].tolist() == ["peak", "chr1:20000-20050", "long", "chr2:5000-5300"]
    assert table["length"].tolist() == [200, 50, 750, 300]
    assert (table["Oct4_total"] > 0).all()
    with np.load(res / "peaks" / "predictions.npz") as npz:
        profile, offsets = npz["profile"], npz["offsets"]
    assert profile.shape == (1300, 8)
    np.testing.assert_allclose(table["Nanog_pos"], np.add.reduceat(profile[:, 4].astype(float), offsets[:-1]),
                               rtol=1e-6)
    bw = pyBigWig.open(str(res / "peaks" / "tracks" / "Nanog.pos.bw"))
    np.testing.assert_array_equal(bw.values("chr1", 30000, 30750, numpy=True), profile[250:1000, 4])
    bw.close()
    seqs = pd.read_csv(res / "seqs" / "counts.tsv", sep="\t")
    assert seqs["name"].tolist() == ["short", "long"] and seqs["length"].tolist() == [150, 520]
    assert not (res / "seqs" / "tracks").exists()
    for log in ("region_predictions/peaks", "region_predictions/seqs", "region_tracks/peaks"):
        assert "finished" in (tmp_path / "logs" / "tiny" / f"{log}.log").read_text(), log
    assert not (tmp_path / "results" / "tiny" / "evaluation").exists()
    # without the key, rule all plans no region rule; with it, all includes them (done already)
    plain = snakemake(tmp_path, tiny_config(tmp_path / "plain.yaml"), "-n")
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert "evaluate" in jobs_planned(plain) and not jobs_planned(plain) & {"region_predictions", "region_tracks"}
    (res / "seqs" / "counts.tsv").unlink()
    planned = jobs_planned(snakemake(tmp_path, config, "-n"))
    assert {"evaluate", "region_predictions"} <= planned and "region_tracks" not in planned
