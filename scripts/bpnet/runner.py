"""Run a rule's script: log to the rule's log file, turn user mistakes into clear errors.

Every ``scripts/*.py`` is three lines::

    from bpnet.runner import run_rule
    from bpnet.windows import main
    run_rule(snakemake, main)

``main(smk, log)`` receives the Snakemake object and a :class:`logging.Logger` that writes to the
rule's ``log:`` file (and to stderr); long steps log their progress through it
(:mod:`bpnet.progress`). A :class:`~bpnet.errors.BPNetInputError` becomes one line
``error: <message>`` in the log and on stderr and exit status 1; any other exception is a bug and
keeps its traceback. Snakemake deletes the outputs of a failed job, so nothing half-written stays.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable

from .errors import BPNetInputError


def get_logger(log_path: str | None = None, name: str = "bpnet") -> logging.Logger:
    """A logger writing to ``log_path`` (when given) and to stderr, with timestamps."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    return logger


def run_rule(smk: Any, main: Callable[[Any, logging.Logger], None]) -> None:
    """Run ``main(smk, logger)`` for a Snakemake ``script:`` rule; exit 1 on a user mistake."""
    log_path = str(smk.log[0]) if len(smk.log) else None
    logger = get_logger(log_path)
    rule = getattr(smk, "rule", "?")
    logger.info("rule %s started", rule)
    t0 = time.perf_counter()
    try:
        main(smk, logger)
    except BPNetInputError as err:
        logger.error("error: %s", err)
        sys.exit(1)
    logger.info("rule %s finished in %.1f s", rule, time.perf_counter() - t0)
