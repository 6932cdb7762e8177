"""Resume an interrupted run with the same command: stale Snakemake locks and incomplete outputs.

A Snakemake killed hard (SIGKILL, a closed terminal, a crashed machine) leaves its lock in
``.snakemake/locks``; the next run then refuses to start until ``snakemake --unlock``. Its
running jobs leave outputs marked incomplete, refused until ``--rerun-incomplete``. Both are
right while that Snakemake, or a job it started, still runs, and only a nuisance after.

:func:`stale_lock_check` tells the two apart. Every main Snakemake process of this workflow
registers itself in ``.snakemake/bpnet-runs/<host>.<pid>`` (removed when it exits). A lock is
stale when no registered run on this host is alive, no run is registered from another host (a
shared file system: that run cannot be checked from here, so its lock is kept), and, where
``/proc`` exists, no process working in this directory has ``snakemake`` on its command line
(Snakemake itself, or a job's script in ``.snakemake/scripts``).
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

RUNS_DIR = Path(".snakemake") / "bpnet-runs"
LOCKS_DIR = Path(".snakemake") / "locks"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _ancestors(pid: int) -> set[int]:
    """``pid`` and its parents, read from ``/proc`` (just ``pid`` and our parent without it)."""
    out = {pid, os.getppid()}
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4, after the command in parentheses
        out.add(pid)
    return out


def snakemake_processes(directory: str | Path, proc: str | Path = "/proc") -> list[int] | None:
    """PIDs of processes (not this one or its parents) working in ``directory`` with
    ``snakemake`` on their command line; ``None`` where ``proc`` does not exist (not Linux)."""
    proc = Path(proc)
    if not proc.is_dir():
        return None
    directory = os.path.realpath(directory)
    own = _ancestors(os.getpid())
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in own:
            continue
        try:
            if os.path.realpath(entry / "cwd") != directory:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:  # gone, or another user's
            continue
        if b"snakemake" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


@dataclass
class LockState:
    """What :func:`stale_lock_check` found in a working directory."""

    locked: bool  # .snakemake/locks holds lock files
    live: list[str] = field(default_factory=list)  # runs or processes that may hold the lock
    stale: bool = False  # locked, and nothing holds the lock: safe to remove


def stale_lock_check(directory: str | Path = ".", host: str | None = None, proc: str | Path = "/proc") -> LockState:
    """Is the Snakemake lock of ``directory`` held by a live run, or left by a dead one? Also lists
    the live runs and Snakemake jobs of ``directory`` when it is not locked."""
    directory = Path(directory)
    host = host or socket.gethostname()
    locks = directory / LOCKS_DIR
    locked = locks.is_dir() and any(locks.glob("*.lock"))
    state = LockState(locked=locked)
    runs = directory / RUNS_DIR
    for entry in sorted(runs.iterdir()) if runs.is_dir() else []:
        run_host, _, pid = entry.name.rpartition(".")
        if run_host != host:
            state.live.append(f"a run on host {run_host} (pid {pid}), which cannot be checked from here")
        elif pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
            state.live.append(f"pid {pid}")
    processes = snakemake_processes(directory, proc)
    if processes is None:  # no /proc: without a registered run to go by, keep a lock
        if locked and not (runs.is_dir() and any(runs.iterdir())):
            state.live.append("an unknown process (this system has no /proc to check)")
    else:
        state.live += [f"pid {p}" for p in processes if f"pid {p}" not in state.live]
    state.stale = locked and not state.live
    return state


def clear_stale_lock(directory: str | Path = ".") -> None:
    """Remove the lock files and the registered runs left by dead runs."""
    directory = Path(directory)
    shutil.rmtree(directory / LOCKS_DIR, ignore_errors=True)
    runs = directory / RUNS_DIR
    if runs.is_dir():
        for entry in runs.iterdir():
            entry.unlink(missing_ok=True)


def register_run(directory: str | Path = ".", host: str | None = None) -> Path:
    """Record this process as a run of the workflow in ``directory``; returns the file to remove
    when it ends."""
    path = Path(directory).resolve() / RUNS_DIR / f"{host or socket.gethostname()}.{os.getpid()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path
