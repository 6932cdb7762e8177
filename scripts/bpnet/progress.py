"""Progress lines a person can watch: done/total, rate and ETA in the rule's log, every 20 s.

Every long step reports through :func:`progress_bar`, a :class:`tqdm.tqdm` whose lines go through
a :class:`logging.Logger` (the rule logger of :func:`bpnet.runner.get_logger` writes them to the
rule's log file and to stderr), one line at most every ``interval`` seconds::

    2025-01-01 12:00:00 INFO export tracks:  45%|####5     | 450/1000 tile [4.50tile/s, elapsed 01:40, ETA 02:02]

A bar logs its first line when it starts (``0/total``), then a line at the first update after
each ``interval`` seconds, and a last line (overall rate) when it is closed. With steps of a few
seconds between updates, a line comes well inside 30 s. Bytes (``unit="B"``) are shown in MB.

Library functions take plain values plus an optional ``log`` (a function that runs once per
rule, e.g. :func:`bpnet.steps.predict.predict_outputs`) or ``progress`` (an object with
``update(n)``, for a function called in a loop by a caller that owns the bar, e.g.
:func:`bpnet.interpret.syntax.marginalize_pair`); the default None means no output. The rule
scripts pass the rule logger.

Steps that run inside a library call with no loop of ours (TF-MoDISco) get :func:`heartbeat`:
a line with the elapsed time every ``interval`` seconds until the call returns.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from tqdm import tqdm

# ``log.info(..., extra=FILE_ONLY)``: a line for the rule's log file, not the console (long
# listings: per-task metric lines, every syntax curve's summary); the rule logger's console
# handler drops it (:func:`console_line`).
FILE_ONLY = {"file_only": True}


def console_line(record: logging.LogRecord) -> bool:
    """Logging filter of the console: False for records logged with ``extra=FILE_ONLY``."""
    return not getattr(record, "file_only", False)


PROGRESS_INTERVAL_S = 20.0  # at most one progress line per bar this often (the issue asks <= 30 s)

_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal cursor moves tqdm may write


class LogStream:
    """A file-like object that forwards writes (e.g. tqdm's lines) to a logger, one record per line.

    tqdm redraws with ``\\r`` and pads with spaces; both, empty lines and terminal escape codes
    are dropped.
    """

    def __init__(self, logger: logging.Logger, level: int = logging.INFO):
        self.logger, self.level = logger, level

    def write(self, text: str) -> int:
        for line in re.split(r"[\r\n]+", _ESCAPES.sub("", text)):
            line = line.strip()
            if line:
                self.logger.log(self.level, line)
        return len(text)

    def flush(self) -> None:  # nothing buffered
        pass


def progress_stream(logger: logging.Logger) -> LogStream:
    """A stream for ``tqdm(file=...)`` so that progress lines land in the rule's log."""
    return LogStream(logger)


class LogProgress(tqdm):
    """tqdm for log files: no monitor thread (lines come from ``update`` and ``close``)."""

    monitor_interval = 0

    @property
    def format_dict(self):
        d = super().format_dict
        scale = d.get("unit_scale")
        if scale and scale is not True and scale != 1:
            # tqdm scales n but not initial: the overall rate of a resumed count would be wrong
            d["initial"] = d["initial"] * scale
        return d

    def close(self) -> None:
        # The last line is logged once: not again when the last update has just logged it.
        if not self.disable and self.n == self.last_print_n and self.last_print_t > self.start_t:
            self.leave = False
        super().close()


def _bar_format(total: float | None, scaled: bool) -> str:
    done = "{n:.1f}/{total:.1f}" if scaled else "{n_fmt}/{total_fmt}"
    if total is None:
        done = "{n:.1f}" if scaled else "{n_fmt}"
        return "{desc}: " + done + " {unit} [{rate_noinv_fmt}, elapsed {elapsed}]"
    # rate_noinv: always "<x> unit/s" (tqdm's rate_fmt turns into "s/unit" below one per second)
    return "{desc}: {percentage:3.0f}%|{bar}| " + done + " {unit} [{rate_noinv_fmt}, elapsed {elapsed}, ETA {remaining}]"


def progress_bar(
    log: logging.Logger | None,
    total: float | None,
    desc: str,
    unit: str = "it",
    interval: float | None = None,
    **kwargs,
) -> tqdm:
    """A tqdm bar that logs ``desc: pct|bar| done/total unit [rate, elapsed, ETA]`` through ``log``.

    Args:
        log: the logger (the rule logger); None (or a logger that drops INFO) gives a silent bar
            that still accepts ``update``/``close``/``with``.
        total: units of work; None when unknown (then no percentage or ETA).
        desc: what is running (the start of every line).
        unit: the unit counted; ``"B"`` (bytes) is shown as MB.
        interval: at most one line this often (seconds), plus the first and the last line;
            None: :data:`PROGRESS_INTERVAL_S` (read at each call, so a test can set it to 0).
        kwargs: more :class:`tqdm.tqdm` arguments (e.g. ``initial`` for a resumed download).

    Use it as a context manager or call ``close()``: the last line (done, overall rate, elapsed)
    is logged on close.
    """
    disable = log is None or not log.isEnabledFor(logging.INFO)
    interval = PROGRESS_INTERVAL_S if interval is None else interval
    scaled = unit == "B"
    opts = dict(
        total=total, desc=desc, unit="MB" if scaled else unit, unit_scale=1e-6 if scaled else False,
        mininterval=interval, miniters=1, maxinterval=float("inf"), ascii=True, position=0,
        dynamic_ncols=False, bar_format=_bar_format(total, scaled), disable=disable,
    )
    opts.update(kwargs)
    return LogProgress(file=None if disable else LogStream(log), **opts)


@contextmanager
def heartbeat(log: logging.Logger | None, desc: str, interval: float | None = None) -> Iterator[None]:
    """Log ``desc: running, elapsed MM:SS`` every ``interval`` s while the ``with`` block runs.

    For a long call with no loop of ours to count (done/total is unknown there); a daemon thread
    logs, and stops when the block ends. None logs nothing.
    """
    if log is None:
        yield
        return
    interval = PROGRESS_INTERVAL_S if interval is None else interval
    stop = threading.Event()
    t0 = time.monotonic()

    def beat() -> None:
        while not stop.wait(interval):
            log.info("%s: running, elapsed %s", desc, tqdm.format_interval(time.monotonic() - t0))

    thread = threading.Thread(target=beat, name=f"heartbeat: {desc}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
