"""Track export: nearest-centre stitching, genome tiling, chromosome ends, bigWigs read back."""

import logging
from functools import partial

import numpy as np
import pyBigWig
import pytest
import torch

from bpnet.errors import BPNetInputError
from bpnet.io.sequence import encode
from bpnet.io.tracks import TrackWriter, compact_runs, tile_sums, track_paths, write_bigwig
from bpnet.model.network import BPNet, BPNetConfig, init_weights
from bpnet.model.weights import save_checkpoint
from bpnet.steps.export import (
    export_part,
    export_part_tiles,
    export_tracks,
    owned_intervals,
    part_tile_ranges,
    stitch_windows,
    tile_chromosome,
    tile_starts,
)
from bpnet.steps.predict import predict_outputs, predict_profile

TASKS = ["a", "b"]
LOG = logging.getLogger("test_export")


def tiny_model(use_control=False, seed=0):
    """Receptive field: stem 5 + 2 * (2 + 4) = 17 bp, plus the profile kernel 5: +-10 bp."""
    cfg = BPNetConfig(
        hidden_size=4, stem_kernel=5, num_dilated_layers=2, dilated_kernel=3, profile_kernel=5,
        tasks=tuple(TASKS), use_control=use_control,
    )
    model = BPNet(cfg)
    init_weights(model, seed)
    with torch.no_grad():  # predicted totals of e^3 - 1 reads, so that no track is all zeros
        for head in model.count_heads:
            head.bias.fill_(3.0)
    return model.eval()


def random_genome(tmp_path, lengths, seed=0):
    """A FASTA and chrom sizes file with random sequence (and a run of N in the first chromosome)."""
    rng = np.random.default_rng(seed)
    seqs = {}
    for i, (chrom, n) in enumerate(lengths.items()):
        s = rng.choice(list("ACGT"), n)
        if i == 0 and n > 200:
            s[150:170] = "N"
        seqs[chrom] = "".join(s)
    fasta = tmp_path / "genome.fa"
    fasta.write_text("".join(f">{c}\n{s}\n" for c, s in seqs.items()))
    sizes = tmp_path / "genome.chrom.sizes"
    sizes.write_text("".join(f"{c}\t{n}\n" for c, n in lengths.items()))
    return fasta, sizes, seqs


def read_back(path, chrom_sizes):
    """{chrom: values (size,)} of a bigWig (NaN = no data), after checking its header."""
    bw = pyBigWig.open(str(path))
    try:
        assert bw.chroms() == dict(chrom_sizes)  # every chromosome, with its size, in the header
        return {c: np.asarray(bw.values(c, 0, n, numpy=True)) for c, n in chrom_sizes.items()}
    finally:
        bw.close()


def read_tracks(outdir, chrom_sizes):
    """{chrom: (size, 2T)} values of all exported tracks, channels in model order."""
    per_file = [read_back(p, chrom_sizes) for p in track_paths(outdir, TASKS)]
    return {c: np.stack([f[c] for f in per_file], axis=1) for c in chrom_sizes}


def nearest_centre_reference(starts, values, chrom_len):
    """Brute force: every base takes the covering window whose centre is nearest (ties: downstream)."""
    starts = np.asarray(starts)
    width = values.shape[1]
    pos = np.arange(chrom_len)
    rel = pos[:, None] - starts[None, :]  # (bases, windows)
    covered = (rel >= 0) & (rel < width)
    dist = np.abs(pos[:, None] + 0.5 - (starts[None, :] + width / 2))
    dist = np.where(covered, dist, np.inf)
    # argmin picks the first minimum; scanning windows from the most downstream (largest start,
    # then last given) makes ties go downstream
    order = np.lexsort((-np.arange(len(starts)), -starts))
    owner = order[np.argmin(dist[:, order], axis=1)]
    out = np.full((chrom_len, values.shape[2]), np.nan)
    has = covered.any(axis=1)
    out[has] = values[owner[has], rel[has, owner[has]]]
    return out


def export_job(tmp_path, inputs, regions, tile_overlap=30, n_parts=3, compact=None, chunk_tiles=2):
    """rule export_tracks as a call (a tiling: rule export_part for each of ``n_parts`` parts,
    then the merge): (run, output folder)."""
    outdir = tmp_path / "tracks"
    outdir.mkdir(exist_ok=True)
    inputs = {k: (list(map(str, v)) if isinstance(v, list) else str(v)) for k, v in inputs.items()}
    settings = {"regions": regions, "tile_overlap": tile_overlap, **(compact or {})}
    outputs = [str(p) for p in track_paths(outdir, TASKS)]
    if regions == "test":
        return partial(export_tracks, outputs, TASKS, settings, log=LOG, **inputs), outdir

    def run():
        parts = [str(outdir / "parts" / f"{i}-of-{n_parts}") for i in range(n_parts)]
        for i, part in enumerate(parts):
            export_part(part, TASKS, settings, part=i, n_parts=n_parts, device="cpu", log=LOG,
                        chunk_tiles=chunk_tiles, **inputs)
        export_tracks(outputs, TASKS, settings, inputs["chrom_sizes"], parts=parts, log=LOG)

    return run, outdir


# --------------------------------------------------------------------------------------------
# Stitching test windows
# --------------------------------------------------------------------------------------------


def test_owned_intervals_match_brute_force_nearest_centre():
    starts = np.array([0, 5, 13, 13, 40, 41, 90])
    width = 10
    values = np.arange(len(starts))[:, None, None] * np.ones((1, width, 1))
    ref = nearest_centre_reference(starts, values, 110)[:, 0]
    segments = stitch_windows(starts, values)
    got = np.full(110, np.nan)
    for s, v in segments:
        got[s:s + len(v)] = v[:, 0]
    np.testing.assert_array_equal(got, ref)
    # gaps between windows split the output: [0, 23), [40, 51), [90, 100)
    assert [(s, len(v)) for s, v in segments] == [(0, 23), (40, 11), (90, 10)]
    lo, hi = owned_intervals(starts, width)
    assert lo[1] == 7 and hi[0] == 7  # base 7 is halfway between centres 5 and 10: downstream wins


def test_test_windows_exported_and_read_back(tmp_path):
    width = 10
    sizes = {"chr1": 60, "chr2": 30, "chr3": 1000}  # chr3 has no window but is in every header
    (tmp_path / "sizes").write_text("".join(f"{c}\t{n}\n" for c, n in sizes.items()))
    chrom = np.array(["chr1", "chr1", "chr1", "chr1", "chr2"])
    start = np.array([0, 5, 13, 40, 20])
    split = np.array(["test", "test", "test", "valid", "test"])
    np.savez(tmp_path / "dataset.npz", chrom=chrom, start=start, split=split, width=np.array(width),
             tasks=np.array(TASKS))
    # row r, channel c, offset j -> 100 r + 10 c + j / 10: every value says where it came from
    index = np.array([4, 2, 0, 3, 1])  # not in dataset order
    profile = (100 * index[:, None, None] + 10 * np.arange(4)[None, None, :]
               + np.arange(width)[None, :, None] / 10).astype(np.float32)
    np.savez(tmp_path / "model.npz", index=index, profile=profile, tasks=np.array(TASKS))
    run, outdir = export_job(tmp_path, {"chrom_sizes": tmp_path / "sizes", "dataset": tmp_path / "dataset.npz",
                                      "predictions": tmp_path / "model.npz"}, "test")
    run()

    tracks = read_tracks(outdir, sizes)
    is_test = split[index] == "test"
    for c in ("chr1", "chr2"):
        sel = is_test & (chrom[index] == c)
        ref = nearest_centre_reference(start[index][sel], profile[sel], sizes[c])
        np.testing.assert_allclose(tracks[c], ref, rtol=1e-6)
    # spot checks: base 7 is halfway between the centres of windows 0 and 5 -> downstream (row 1)
    np.testing.assert_allclose(tracks["chr1"][7], 100 + 10 * np.arange(4) + 0.2, rtol=1e-6)
    np.testing.assert_allclose(tracks["chr1"][6], 10 * np.arange(4) + 0.6, rtol=1e-6)
    assert np.isnan(tracks["chr1"][23:]).all()  # the valid window at 40 is not exported
    assert np.isnan(tracks["chr3"]).all()
    assert not np.isnan(tracks["chr2"][20:30]).any()


def test_no_test_windows_in_predictions_is_an_error(tmp_path):
    (tmp_path / "sizes").write_text("chr1\t100\n")
    np.savez(tmp_path / "dataset.npz", chrom=np.array(["chr1"]), start=np.array([0]),
             split=np.array(["valid"]), width=np.array(10), tasks=np.array(TASKS))
    np.savez(tmp_path / "model.npz", index=np.array([0]), profile=np.ones((1, 10, 4), np.float32),
             tasks=np.array(TASKS))
    run, _ = export_job(tmp_path, {"chrom_sizes": tmp_path / "sizes", "dataset": tmp_path / "dataset.npz",
                                 "predictions": tmp_path / "model.npz"}, "test")
    with pytest.raises(BPNetInputError, match="evaluation.splits"):
        run()


# --------------------------------------------------------------------------------------------
# Tiling
# --------------------------------------------------------------------------------------------


def test_tile_starts_cover_the_chromosome_and_end_at_its_end():
    np.testing.assert_array_equal(tile_starts(537, 100, 30), [0, 40, 80, 120, 160, 200, 240, 280, 320, 360, 400, 437])
    np.testing.assert_array_equal(tile_starts(100, 100, 30), [0])
    np.testing.assert_array_equal(tile_starts(60, 100, 30), [-20])  # centred, padded with N
    np.testing.assert_array_equal(tile_starts(140, 100, 30), [0, 40])
    with pytest.raises(BPNetInputError, match="export.tile_overlap"):
        tile_starts(537, 100, 50)


@pytest.mark.parametrize("use_control", [False, True])
def test_tiled_logits_equal_one_full_chromosome_pass(tmp_path, use_control):
    """With a receptive field (+-10 bp, +-25 bp for the smoothed control) inside tile_overlap,
    the stitched per-position logits equal one forward pass over the whole chromosome, ends included.
    (Postprocessed counts are normalised per tile, so logits are what can be compared exactly.)"""
    chrom_len, width, overlap = 1037, 120, 40
    fasta, _, seqs = random_genome(tmp_path, {"chrA": chrom_len})
    model = tiny_model(use_control)
    control_paths, control_full = [], None
    if use_control:
        rng = np.random.default_rng(1)
        ctl = rng.poisson(0.5, (chrom_len, 2)).astype(np.float32)
        for s, strand in enumerate(("pos", "neg")):
            control_paths.append(tmp_path / f"control.{strand}.bw")
            write_bigwig(control_paths[-1], {"chrA": chrom_len}, {"chrA": ctl[:, s]})
        control_full = ctl[None]

    def logits(codes, control):
        return predict_outputs(model, codes, control)["profile_logits"]

    full = logits(encode(seqs["chrA"])[None], control_full)[0]
    for chunk_tiles in (3, 512):
        segments = list(tile_chromosome(fasta, "chrA", chrom_len, width, overlap, logits, control_paths,
                                        chunk_tiles=chunk_tiles))
        assert len(segments) == -(-len(tile_starts(chrom_len, width, overlap)) // chunk_tiles)
        assert [s for s, _ in segments] == list(np.cumsum([0] + [len(v) for _, v in segments[:-1]]))
        stitched = np.concatenate([v for _, v in segments])
        assert stitched.shape == full.shape  # covers [0, chrom_len) exactly once
        np.testing.assert_allclose(stitched, full, atol=1e-5, rtol=1e-5)

    # The comparison has power: without trimmed edges, the tile edges lack context and differ.
    untrimmed = np.concatenate([v for _, v in tile_chromosome(fasta, "chrA", chrom_len, width, 0, logits,
                                                              control_paths)])
    assert np.abs(untrimmed - full).max() > 1e-3


def test_genome_export_read_back(tmp_path):
    """regions: genome through the rule entry point, against per-tile predictions stitched by brute
    force: a long chromosome (last tile aligned to its end), one of exactly W and one shorter than W."""
    width, overlap = 100, 30
    lengths = {"chrA": 537, "chrB": 60, "chrC": 100}
    fasta, sizes_path, seqs = random_genome(tmp_path, lengths)
    model = tiny_model(seed=3)
    save_checkpoint(model, tmp_path / "model.safetensors")
    np.savez(tmp_path / "dataset.npz", width=np.array(width))
    run, outdir = export_job(tmp_path, {"chrom_sizes": sizes_path, "dataset": tmp_path / "dataset.npz",
                                      "model": tmp_path / "model.safetensors", "fasta": fasta, "control": []},
                           "genome", overlap)
    run()
    tracks = read_tracks(outdir, lengths)

    # chrA: tiles every W - 2 * overlap = 40 bp, the last one ending exactly at the chromosome end
    codes = encode(seqs["chrA"])
    starts = np.array(list(range(0, 537 - width, 40)) + [537 - width])
    tiles = codes[starts[:, None] + np.arange(width)]
    ref = nearest_centre_reference(starts, predict_profile(model, tiles), 537)
    np.testing.assert_allclose(tracks["chrA"], ref, rtol=1e-5, atol=1e-7)
    # kept bases of the last tile really come from it (end-aligned, not padded past the end)
    last_tile = predict_profile(model, codes[None, 537 - width:])[0]
    np.testing.assert_allclose(tracks["chrA"][-50:], last_tile[-50:], rtol=1e-5, atol=1e-7)

    # chrC is exactly one tile; chrB (60 bp) sits in the middle of one tile padded with 20 N each side
    np.testing.assert_allclose(tracks["chrC"], predict_profile(model, encode(seqs["chrC"])[None])[0], rtol=1e-5)
    padded = np.concatenate([np.full(20, 4, np.uint8), encode(seqs["chrB"]), np.full(20, 4, np.uint8)])
    np.testing.assert_allclose(tracks["chrB"], predict_profile(model, padded[None])[0, 20:80], rtol=1e-5)
    assert all(np.all(t > 0) for t in tracks.values())  # every base has a prediction


def test_listed_chromosomes_only(tmp_path):
    width = 100
    lengths = {"chrA": 537, "chrB": 60, "chrC": 100}
    fasta, sizes_path, _ = random_genome(tmp_path, lengths)
    save_checkpoint(tiny_model(), tmp_path / "model.safetensors")
    np.savez(tmp_path / "dataset.npz", width=np.array(width))
    inputs = {"chrom_sizes": sizes_path, "dataset": tmp_path / "dataset.npz",
              "model": tmp_path / "model.safetensors", "fasta": fasta}
    run, outdir = export_job(tmp_path, inputs, ["chrC", "chrB"])
    run()
    tracks = read_tracks(outdir, lengths)  # the header still lists every chromosome
    assert np.isnan(tracks["chrA"]).all()
    assert not np.isnan(tracks["chrB"]).any() and not np.isnan(tracks["chrC"]).any()

    run, _ = export_job(tmp_path, inputs, ["chrA", "chrZ"])
    with pytest.raises(BPNetInputError, match=r"export\.regions.*chrZ"):
        run()


def test_writer_rejects_values_past_the_chromosome_end(tmp_path):
    paths = track_paths(tmp_path, TASKS)
    with pytest.raises(BPNetInputError, match="leave the chromosome"):
        with TrackWriter(paths, {"chr1": 50}) as writer:
            writer.add("chr1", 45, np.ones((10, 4)))


def test_export_tiled_chunks_give_identical_files(tmp_path):
    """Deterministic and independent of the chunk size: the same bytes of values either way."""
    lengths = {"chrA": 537, "chrC": 100}
    fasta, _, _ = random_genome(tmp_path, lengths)
    model = tiny_model()

    def predict(codes, control):
        return predict_profile(model, codes, control)

    results = []
    for chunk in (2, 512):
        outdir = tmp_path / f"chunk{chunk}"
        outdir.mkdir()
        with TrackWriter(track_paths(outdir, TASKS), lengths) as writer:
            ranges = part_tile_ranges(lengths, list(lengths), 100, 30, 0, 1)
            export_part_tiles(writer, fasta, ranges, 100, 30, predict, chunk_tiles=chunk)
        results.append(read_tracks(outdir, lengths))
    for c in lengths:
        np.testing.assert_array_equal(results[0][c], results[1][c])
        assert not np.isnan(results[0][c]).any()


def test_part_tile_ranges_cover_every_tile_once_in_whole_chunks():
    sizes = {"chrA": 537, "chrB": 60, "chrC": 100, "chrD": 1000}
    n_tiles = {c: len(tile_starts(n, 100, 30)) for c, n in sizes.items()}
    for n_parts in (1, 2, 3, 7, 40):  # 40: more parts than chunks, some parts empty
        seen = {c: [] for c in sizes}
        bases = {c: [] for c in sizes}
        for part in range(n_parts):
            for chrom, first, stop, lo, hi in part_tile_ranges(sizes, list(sizes), 100, 30, part, n_parts, 3):
                assert first % 3 == 0  # parts start at a chunk of the chromosome
                seen[chrom].extend(range(first, stop))
                bases[chrom].append((lo, hi))
        for c in sizes:
            assert seen[c] == list(range(n_tiles[c]))  # every tile once, in order
            # the parts' bases are adjacent and cover the chromosome
            assert bases[c][0][0] == 0 and bases[c][-1][1] == sizes[c]
            assert all(a[1] == b[0] for a, b in zip(bases[c][:-1], bases[c][1:]))
    chunks = [sum(-(-(b - a) // 3) for _, a, b, _, _ in part_tile_ranges(sizes, list(sizes), 100, 30, i, 4, 3))
              for i in range(4)]
    assert max(chunks) - min(chunks) <= 1  # parts of equal cost


@pytest.mark.parametrize("compact", [{}, {"decimals": 2, "floor": 0.2}])
def test_merged_parts_equal_a_single_pass(tmp_path, compact):
    """Parts (each its own job in the workflow) merged into one file per track give the values of
    one part over the whole genome, per base and compact alike, and zoom levels for browsers."""
    lengths = {"chrA": 537, "chrB": 60, "chrC": 100, "chrD": 1000}
    fasta, sizes_path, _ = random_genome(tmp_path, lengths)
    save_checkpoint(tiny_model(seed=5), tmp_path / "model.safetensors")
    np.savez(tmp_path / "dataset.npz", width=np.array(100))
    inputs = {"chrom_sizes": sizes_path, "dataset": tmp_path / "dataset.npz",
              "model": tmp_path / "model.safetensors", "fasta": fasta}
    results = {}
    for n_parts in (1, 3, 40):  # 40: more parts than tiles, some parts empty
        sub = tmp_path / f"parts{n_parts}"
        sub.mkdir()
        run, outdir = export_job(sub, inputs, "genome", n_parts=n_parts, compact=compact)
        run()
        results[n_parts] = read_tracks(outdir, lengths)
        if not compact:  # zoom levels in the final file (libBigWig skips them for a few entries)
            bw = pyBigWig.open(str(track_paths(outdir, TASKS)[0]))
            assert bw.header()["nLevels"] > 0
            bw.close()
        part_bw = pyBigWig.open(str(outdir / "parts" / f"0-of-{n_parts}" / "a.pos.bw"))
        assert part_bw.header()["nLevels"] == 0
        part_bw.close()
    for n_parts in (3, 40):
        for c in lengths:
            np.testing.assert_array_equal(results[n_parts][c], results[1][c])
    if compact:  # values below the floor are no data, the rest rounded
        values = results[1]["chrD"]
        assert np.isnan(values).any() and not np.isnan(values).all()
        kept = values[~np.isnan(values)]
        np.testing.assert_array_equal(kept, np.round(kept, 2).astype(np.float32))
        assert (kept >= 0.2).all()
    else:
        assert not any(np.isnan(v).any() for v in results[1].values())


def test_merge_needs_complete_parts(tmp_path):
    lengths = {"chrA": 537}
    fasta, sizes_path, _ = random_genome(tmp_path, lengths)
    save_checkpoint(tiny_model(), tmp_path / "model.safetensors")
    np.savez(tmp_path / "dataset.npz", width=np.array(100))
    part = tmp_path / "part"
    export_part(str(part), TASKS, {"regions": "genome", "tile_overlap": 30}, str(sizes_path),
                str(tmp_path / "dataset.npz"), str(tmp_path / "model.safetensors"), str(fasta), 0, 1,
                device="cpu", log=LOG)
    (part / "segments.tsv").unlink()
    with pytest.raises(BPNetInputError, match="lacks segments.tsv"):
        export_tracks([str(p) for p in track_paths(tmp_path, TASKS)], TASKS, {"regions": "genome"},
                      str(sizes_path), parts=[str(part)], log=LOG)


def test_missing_or_mismatched_predictions_are_clear_errors(tmp_path):
    (tmp_path / "sizes").write_text("chr1\t100\n")
    np.savez(tmp_path / "dataset.npz", chrom=np.array(["chr1"]), start=np.array([0]),
             split=np.array(["test"]), width=np.array(10), tasks=np.array(TASKS))
    inputs = {"chrom_sizes": tmp_path / "sizes", "dataset": tmp_path / "dataset.npz",
              "predictions": tmp_path / "model.npz"}
    run, _ = export_job(tmp_path, inputs, "test")
    with pytest.raises(BPNetInputError, match="model.npz does not exist"):
        run()
    np.savez(tmp_path / "model.npz", index=np.array([0]), profile=np.ones((1, 10, 2), np.float32),
             tasks=np.array(["a"]))
    with pytest.raises(BPNetInputError, match=r"tasks \['a'\], but data.tasks is \['a', 'b'\]"):
        run()


def test_compact_runs_rebuild_the_rounded_track():
    rng = np.random.default_rng(7)
    for _ in range(100):
        x = (rng.integers(0, 4, 60) / 4 + rng.random(60) * 1e-3).astype(np.float32)
        starts, ends, values = compact_runs(x, 2, 0.2)
        rebuilt = np.full(60, np.nan)
        for s, e, v in zip(starts, ends, values):
            rebuilt[s:e] = v
        rounded = np.round(x, 2)
        np.testing.assert_allclose(rebuilt, np.where(rounded >= 0.2, rounded, np.nan), equal_nan=True)
        assert (starts[1:] >= ends[:-1]).all() and (ends > starts).all()
        # maximal runs: two touching runs never hold the same value
        touching = starts[1:] == ends[:-1]
        assert not (touching & (values[1:] == values[:-1])).any()


def test_compact_tracks_read_back_rounded_and_floored(tmp_path):
    """decimals / floor: what a browser reads is the rounded value, and no data below the floor."""
    sizes = {"chr1": 300, "chr2": 50}
    rng = np.random.default_rng(1)
    values = np.full((300, 4), 0.0004, np.float32) + rng.random((300, 4)).astype(np.float32) * 1e-4  # background
    for centre in (40, 150, 260):  # three peaks, most of the track stays background
        values[centre - 10:centre + 10] = rng.random((20, 4)) * 5
    dense, compact = tmp_path / "dense", tmp_path / "compact"
    for folder, args in ((dense, ()), (compact, (2, 0.01))):
        folder.mkdir()
        with TrackWriter(track_paths(folder, TASKS), sizes, *args) as writer:
            writer.add("chr1", 0, values[:120])
            writer.add("chr1", 120, values[120:])
    np.testing.assert_allclose(read_tracks(dense, sizes)["chr1"], values, rtol=1e-6)
    got = read_tracks(compact, sizes)["chr1"]
    rounded = np.round(values, 2)
    np.testing.assert_allclose(got, np.where(rounded >= 0.01, rounded, np.nan), rtol=1e-6, equal_nan=True)
    assert sum(p.stat().st_size for p in track_paths(compact, TASKS)) < sum(
        p.stat().st_size for p in track_paths(dense, TASKS))


def test_tile_sums_match_the_values(tmp_path):
    rng = np.random.default_rng(3)
    sizes = {"chr1": 2500, "chr2": 700}
    dense = {c: np.where(rng.random(n) < 0.5, 0.0, rng.random(n)).round(3) for c, n in sizes.items()}
    write_bigwig(tmp_path / "t.bw", sizes, dense)
    sums = tile_sums(tmp_path / "t.bw", "chr1", 2500, 1000)
    np.testing.assert_allclose(sums, [dense["chr1"][:1000].sum(), dense["chr1"][1000:2000].sum(),
                                      dense["chr1"][2000:].sum()], rtol=1e-5)
    assert tile_sums(tmp_path / "t.bw", "chr2", 700, 1000).shape == (1,)
