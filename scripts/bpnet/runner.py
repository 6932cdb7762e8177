"""Run a rule's script: log to the rule's log file, turn user mistakes into clear errors.

This is the one place where the library meets Snakemake. Every ``scripts/*.py`` reads the
``snakemake`` object and hands plain values to a library function::

    from bpnet.data.windows import write_peak_windows
    from bpnet.runner import run_rule

    def main(smk, log):
        write_peak_windows(dict(zip(smk.params.tasks, smk.input.peaks)), ..., log=log)

    run_rule(snakemake, main)

``main(smk, log)`` receives the Snakemake object and a :class:`logging.Logger` that writes to the
rule's ``log:`` file (and to stderr); long steps log their progress through it
(:mod:`bpnet.progress`). A :class:`~bpnet.errors.BPNetInputError` becomes one line
``error: <message>`` in the log and on stderr and exit status 1; any other exception is a bug and
keeps its traceback. So do faults of the machine rather than the code: an :class:`OSError` for a
full disk (ENOSPC), a refused permission (EACCES, EPERM), a read-only file system (EROFS) or a
quota (EDQUOT) becomes one line naming the path and the rule with a hint, and a
:class:`MemoryError` one line naming the rule and how to give it more memory. Other OSErrors and
exceptions are bugs and keep their tracebacks. Snakemake deletes the outputs of a failed job, so
nothing half-written stays.
"""

from __future__ import annotations

import errno
import logging
import resource
import sys
import time
from typing import Any, Callable

from bpnet.errors import BPNetInputError
from bpnet.progress import console_line


def get_logger(log_path: str | None = None, name: str = "bpnet") -> logging.Logger:
    """A logger writing to ``log_path`` (when given) and to stderr, with timestamps; records
    logged with ``extra=FILE_ONLY`` go to the file only."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    if log_path:
        console.addFilter(console_line)
    handlers: list[logging.Handler] = [console]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    return logger


# errno -> (what went wrong, hint): faults of the machine, not bugs of the code.
_ENVIRONMENT_ERRNOS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("disk full", "free space on that file system, or point the workflow at another one"),
    errno.EACCES: ("permission denied", "check the permissions of that path and its directory"),
    errno.EPERM: ("permission denied", "check the permissions (and owner) of that path and its directory"),
    errno.EROFS: ("read-only file system", "run the workflow in a writable directory (--directory)"),
}
if hasattr(errno, "EDQUOT"):
    _ENVIRONMENT_ERRNOS[errno.EDQUOT] = ("disk quota exceeded", "free space within your quota or ask for more")


def environment_error_line(err: BaseException, rule: str) -> str | None:
    """One ``error: ...`` line for a fault of the machine (disk, permission, memory), else ``None``."""
    if isinstance(err, MemoryError):
        return (f"error: rule {rule} ran out of memory; give it more (e.g. snakemake "
                f"--set-resources {rule}:mem_mb=<MB>) or make the job smaller (fewer windows)")
    if isinstance(err, OSError) and err.errno in _ENVIRONMENT_ERRNOS:
        what, hint = _ENVIRONMENT_ERRNOS[err.errno]
        path = err.filename if err.filename is not None else "(unknown path)"
        if err.filename2 is not None:
            path = f"{path} -> {err.filename2}"
        strerror = err.strerror or what
        return f"error: {what} writing/reading {path} in rule {rule}: {strerror}; {hint}"
    return None


def peak_rss() -> str:
    """This process's peak resident memory, as the kernel counts it (not sampled): ``"812 MB"``.

    Rules log it when they finish, the figure to size a rule's ``mem_mb`` from.
    """
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":  # bytes there, kB on Linux
        kb //= 1024
    return f"{kb / 1024:.0f} MB"


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
    except (OSError, MemoryError) as err:
        line = environment_error_line(err, rule)
        if line is None:
            raise  # any other OSError is a bug: keep its traceback
        logger.error("%s", line)
        sys.exit(1)
    logger.info("rule %s finished in %.1f s, peak memory %s", rule, time.perf_counter() - t0, peak_rss())
