"""Progress lines in the rule logs: the shared tqdm helper and the long steps that use it."""

from __future__ import annotations

import logging
import re
import time

import pytest

from bpnet import progress as progress_mod
from bpnet.progress import LogStream, heartbeat, progress_bar

# desc: pct|bar| done/total unit [rate unit/s, elapsed MM:SS, ETA MM:SS]
LINE = re.compile(r"^(?P<desc>.+): +(?P<pct>\d+)%\|[# 0-9]{10}\| (?P<done>[\d.]+)/(?P<total>[\d.]+) (?P<unit>\S+) "
                  r"\[ *(?P<rate>[\d.?]+)(?P=unit)/s, elapsed (?P<elapsed>[\d:]+), ETA (?P<eta>[\d:?]+)\]$")


class Records(logging.Handler):
    """Collects the messages of one logger."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def log():
    logger = logging.getLogger("test_progress")
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = Records()
    logger.addHandler(handler)
    logger.records = handler.lines
    yield logger
    logger.handlers.clear()


def progress_lines(lines, desc=None):
    """The lines that are progress lines (of ``desc``), parsed."""
    out = [m.groupdict() for m in map(LINE.match, lines) if m]
    return [m for m in out if desc is None or m["desc"] == desc]


class FakeClock:
    """tqdm's clock, advanced by hand."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr("tqdm.std.time", c)  # tqdm reads it when a bar is made
    return c


# ----------------------------------------------------------------------------------- helper


def test_every_update_logs_done_total_rate_and_eta_with_interval_zero(log):
    with progress_bar(log, 5, "things", unit="thing", interval=0) as bar:
        for _ in range(5):
            time.sleep(0.002)
            bar.update(1)
    lines = progress_lines(log.records, "things")
    assert len(lines) == len(log.records) == 6  # the start, then one per update (the last not twice)
    assert [(m["done"], m["total"]) for m in lines] == [(str(i), "5") for i in range(6)]
    assert lines[0]["rate"] == "?" and lines[0]["eta"] == "?"
    assert all(float(m["rate"]) > 0 and re.fullmatch(r"\d\d:\d\d", m["eta"]) for m in lines[1:])
    assert lines[-1]["pct"] == "100" and lines[-1]["unit"] == "thing"


def test_slow_loop_logs_a_line_every_interval_not_every_update(log, clock):
    """Steps of 5 s, interval 20 s: a line every 20 s (well inside 30 s), with the right rate and ETA."""
    with progress_bar(log, 20, "slow step", unit="step", interval=20) as bar:
        for _ in range(20):
            clock.t += 5
            bar.update(1)
    lines = progress_lines(log.records, "slow step")
    assert [int(m["done"]) for m in lines] == [0, 4, 8, 12, 16, 20]
    assert [m["elapsed"] for m in lines] == ["00:00", "00:20", "00:40", "01:00", "01:20", "01:40"]
    assert lines[1]["rate"] == "0.20" and lines[1]["eta"] == "01:20"  # 16 steps left at 0.2 steps/s
    assert lines[-1]["eta"] == "00:00"


def test_close_logs_the_last_state_once(log, clock):
    with progress_bar(log, 10, "partial", interval=20) as bar:
        clock.t += 1
        bar.update(3)
    lines = progress_lines(log.records, "partial")
    assert [int(m["done"]) for m in lines] == [0, 3]  # the update came too soon; close logs it
    assert lines[-1]["rate"] == "3.00" and lines[-1]["pct"] == "30"


def test_bytes_are_shown_in_mb_from_a_resumed_offset(log, clock):
    with progress_bar(log, 3_000_000, "f.bin", unit="B", interval=0, initial=1_000_000) as bar:
        clock.t += 2
        bar.update(2_000_000)
    start, end = progress_lines(log.records, "f.bin")
    assert (start["done"], start["total"], start["pct"], start["unit"]) == ("1.0", "3.0", "33", "MB")
    assert (end["done"], end["rate"], end["elapsed"]) == ("3.0", "1.00", "00:02")  # 2 MB in 2 s


def test_unknown_total_logs_done_and_rate(log, clock):
    with progress_bar(log, None, "stream", unit="B", interval=0) as bar:
        clock.t += 1
        bar.update(500_000)
    assert log.records[-1] == "stream: 0.5 MB [ 0.50MB/s, elapsed 00:01]"


def test_without_a_logger_the_bar_is_silent_but_usable(caplog):
    with caplog.at_level(logging.DEBUG):
        with progress_bar(None, 3, "quiet", interval=0) as bar:
            bar.update(3)
    assert "quiet" not in caplog.text
    warnings_only = logging.getLogger("test_progress.warnings_only")
    warnings_only.setLevel(logging.WARNING)
    bar = progress_bar(warnings_only, 3, "quiet", interval=0)  # nothing to format for a dropped level
    assert bar.disable
    bar.update(1)
    bar.close()


def test_default_interval_is_read_at_each_call(log, monkeypatch):
    assert progress_mod.PROGRESS_INTERVAL_S <= 30
    monkeypatch.setattr(progress_mod, "PROGRESS_INTERVAL_S", 0)
    with progress_bar(log, 3, "default") as bar:
        for _ in range(3):
            bar.update(1)
    assert [m["done"] for m in progress_lines(log.records, "default")] == ["0", "1", "2", "3"]


def test_log_stream_logs_one_record_per_line_without_redraws_or_escapes(log):
    stream = LogStream(log)
    stream.write("\r first   ")
    stream.write("\n\x1b[A\r")
    stream.write("second\nthird\n")
    assert log.records == ["first", "second", "third"]


def test_heartbeat_logs_elapsed_time_until_the_block_ends(log):
    with heartbeat(log, "TF-MoDISco", interval=0.02):
        time.sleep(0.2)
    n = len(log.records)
    assert n >= 2 and all(re.fullmatch(r"TF-MoDISco: running, elapsed \d\d:\d\d", r) for r in log.records)
    time.sleep(0.1)
    assert len(log.records) == n  # stopped with the block
    with heartbeat(None, "nothing", interval=0.01):
        time.sleep(0.05)


# ------------------------------------------------------------------------------- long steps


@pytest.fixture
def every_update(monkeypatch):
    """The default interval 0: every update of every bar logs a line."""
    monkeypatch.setattr(progress_mod, "PROGRESS_INTERVAL_S", 0)


def tiny_model(tasks=("a", "b")):
    from bpnet.model.network import BPNet, BPNetConfig, init_weights

    model = BPNet(BPNetConfig(hidden_size=4, stem_kernel=5, num_dilated_layers=2, dilated_kernel=3,
                              profile_kernel=5, tasks=tuple(tasks)))
    init_weights(model, 0)
    return model.eval()


def test_prediction_logs_batch_progress_and_the_same_numbers(log, every_update):
    import numpy as np

    from bpnet.steps.predict import predict_outputs

    codes = np.random.default_rng(0).integers(0, 4, (10, 60)).astype(np.uint8)
    model = tiny_model()
    with_log = predict_outputs(model, codes, batch_size=4, log=log)
    lines = progress_lines(log.records, "predict")
    assert [(m["done"], m["total"], m["unit"]) for m in lines] == [
        ("0", "10", "window"), ("4", "10", "window"), ("8", "10", "window"), ("10", "10", "window")]
    silent = predict_outputs(model, codes, batch_size=4)
    for key in silent:
        np.testing.assert_array_equal(with_log[key], silent[key])


def test_contribution_scores_log_window_progress(log, every_update):
    import numpy as np

    from bpnet.interpret.contributions import contribution_scores

    codes = np.random.default_rng(1).integers(0, 4, (3, 40)).astype(np.uint8)
    contribution_scores(tiny_model(), codes, n_references=2, batch_size=2, log=log)
    assert [m["done"] for m in progress_lines(log.records, "contribution scores")] == ["0", "2", "3"]


def test_marginalisation_advances_the_callers_bar_by_every_distance(log, every_update):
    import numpy as np

    from bpnet.interpret.syntax import marginalize_pair, pair_layout

    backgrounds = np.random.default_rng(2).integers(0, 4, (2, 100)).astype(np.uint8)
    motif = np.array([0, 1, 2, 3, 0], dtype=np.uint8)
    n_distances = len(pair_layout(5, 5, 100, 30)[2])
    with progress_bar(log, n_distances, "marginalisation", unit="distance") as bar:
        marginalize_pair(tiny_model(), backgrounds, motif, motif, max_distance=30, batch_size=4, progress=bar)
    lines = progress_lines(log.records, "marginalisation")
    assert len(lines) > 2 and lines[-1]["done"] == lines[-1]["total"] == str(n_distances)


def test_simulation_logs_progress_of_every_stage(log, every_update, tmp_path):
    from bpnet.simulate.files import output_paths
    from bpnet.simulate.generate import simulate_dataset

    simulate_dataset(tmp_path, {"seed": 3, "scale": 0.1}, log)  # the small config of test_simulate
    n_files = len(output_paths(tmp_path)) - 1  # the FASTA index is written with the FASTA
    expected = {"simulate genome": ("19", "chrom"), "simulate tracks": ("10", "track"),
                "call peaks": (str(4 * 19), "chrom"), "write dataset": (str(n_files), "file")}
    for desc, (total, unit) in expected.items():
        lines = progress_lines(log.records, desc)
        assert len(lines) >= 3, desc
        assert lines[0]["done"] == "0" and lines[-1]["done"] == lines[-1]["total"] == total, desc
        assert all(m["unit"] == unit and m["total"] == total for m in lines), desc
    assert any(r.startswith("simulated 19 chromosomes") for r in log.records)  # the summary stays


def test_dataset_building_logs_windows_read_per_source(log, every_update, tmp_path):
    import numpy as np
    import pandas as pd
    import pyfaidx

    from bpnet.data.dataset import build_dataset
    from bpnet.io.tracks import write_bigwig

    sizes = {"chr1": 600, "chr2": 400}
    rng = np.random.default_rng(3)
    fasta = tmp_path / "genome.fa"
    fasta.write_text("".join(f">{c}\n{''.join(rng.choice(list('ACGT'), n))}\n" for c, n in sizes.items()))
    pyfaidx.Faidx(str(fasta))
    bigwigs = []
    for strand in ("pos", "neg"):
        path = tmp_path / f"a.{strand}.bw"
        write_bigwig(path, sizes, {c: rng.poisson(1.0, n).astype(float) for c, n in sizes.items()})
        bigwigs.append(path)
    windows = pd.DataFrame({"chrom": ["chr1", "chr1", "chr2"], "start": [0, 300, 100], "end": [100, 400, 200],
                            "split": "train", "tasks": "a"})
    build_dataset(windows, fasta, bigwigs, ["a"], log=log)
    lines = progress_lines(log.records, "build dataset")
    # 3 windows x 3 sources (FASTA, + and - counts), read chromosome by chromosome (2, then 1)
    assert [m["done"] for m in lines] == ["0", "2", "3", "5", "6", "8", "9"]
    assert all(m["total"] == "9" and m["unit"] == "window" for m in lines)


def test_cwm_scanning_advances_the_bar_by_windows_of_every_pattern(log, every_update):
    import numpy as np

    from bpnet.interpret.instances import scan_cwms
    from bpnet.interpret.modisco import Pattern

    rng = np.random.default_rng(4)
    cwm = rng.normal(size=(6, 4))
    usable = Pattern("t.pos.0", "t", "pos", np.full((6, 4), 0.25), cwm, cwm, cwm[None] + rng.normal(size=(5, 6, 4)))
    empty = Pattern("t.pos.1", "t", "pos", np.full((6, 4), 0.25), cwm, cwm, np.zeros((0, 6, 4)))  # not scanned
    contrib = rng.normal(size=(7, 50, 4))
    with progress_bar(log, 2 * len(contrib), "CWM scanning", unit="window-pattern") as bar:
        scan_cwms(contrib, [usable, empty], batch=3, progress=bar)
    assert [m["done"] for m in progress_lines(log.records, "CWM scanning")] == ["0", "3", "6", "7", "14"]


def test_count_head_refit_logs_progress_of_its_forward_passes(log, every_update, tmp_path):
    """The refit's forward passes over all training and validation windows (minutes at the
    paper's size) log progress like an epoch."""
    import numpy as np
    from test_training import count_dataset
    from test_training import tiny_model as tiny_training_model

    from bpnet.steps.training import TrainingConfig, train_model

    ds = count_dataset()
    cfg = TrainingConfig(batch_size=16, max_epochs=1, threads=1, device="cpu", refit_count_head=True)
    train_model(ds, tiny_training_model(), cfg, tmp_path, log=log)
    n_train, n_valid = int(np.sum(ds.split == "train")), int(np.sum(ds.split == "valid"))
    for what, n in (("training windows", n_train), ("validation windows", n_valid)):
        lines = progress_lines(log.records, f"count head refit, {what}")
        assert lines and lines[-1]["done"] == lines[-1]["total"] == str(n), what
