"""An interrupted run resumes with the same command (bpnet/workdir.py, workflow/rules/common.smk).

A Snakemake killed hard leaves its lock and, for the jobs it ran, outputs marked incomplete. The
unit tests check when a lock counts as stale against a made-up ``/proc``; the end-to-end test
kills a real run of the README's command (with the default workflow profile; Snakemake and its
job, SIGKILL) while a job has written part of its outputs and reruns the same command, which must
finish without --unlock. The plain command (no profile) clears the lock too, and names
--rerun-incomplete for the half-written outputs, which only a profile or the command line can set.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, tiny_config

from bpnet.workdir import LOCKS_DIR, RUNS_DIR, clear_stale_lock, register_run, stale_lock_check

HOST = socket.gethostname()


def _lock(work: Path) -> None:
    """The lock files a Snakemake writes while it runs."""
    (work / LOCKS_DIR).mkdir(parents=True, exist_ok=True)
    (work / LOCKS_DIR / "0.input.lock").write_text("results/x\n")
    (work / LOCKS_DIR / "0.output.lock").write_text("results/y\n")


def _fake_proc(root: Path, pid: int, cwd: Path, cmdline: str) -> None:
    """A /proc/<pid> entry with the two things stale_lock_check reads."""
    entry = root / str(pid)
    entry.mkdir(parents=True)
    (entry / "cwd").symlink_to(cwd)
    (entry / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode())


@pytest.fixture
def dead_pid():
    """The pid of a process that has exited."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_lock_nothing_holds_is_stale_and_is_cleared(tmp_path, dead_pid):
    proc = tmp_path / "proc"
    proc.mkdir()
    work = tmp_path / "work"
    _lock(work)
    (work / RUNS_DIR).mkdir(parents=True)
    (work / RUNS_DIR / f"{HOST}.{dead_pid}").touch()  # the killed run registered itself
    _fake_proc(proc, 4242, tmp_path, "python -m snakemake")  # a Snakemake in another directory
    _fake_proc(proc, 4243, work, "bash")  # a shell in this one
    state = stale_lock_check(work, proc=proc)
    assert state.locked and state.stale and state.live == []
    clear_stale_lock(work)
    assert not (work / LOCKS_DIR).exists() and list((work / RUNS_DIR).iterdir()) == []
    assert not stale_lock_check(work, proc=proc).locked


def test_a_lock_held_by_a_live_snakemake_or_its_job_is_kept(tmp_path):
    proc = tmp_path / "proc"
    work = tmp_path / "work"
    _lock(work)
    _fake_proc(proc, 4242, work, "/usr/bin/python3 -m snakemake --cores 2")
    state = stale_lock_check(work, proc=proc)
    assert state.locked and not state.stale and state.live == ["pid 4242"]
    # a job outliving its Snakemake: the script Snakemake wrote runs in the working directory
    proc2 = tmp_path / "proc2"
    _fake_proc(proc2, 77, work, "python work/.snakemake/scripts/tmpab12.train.py")
    assert stale_lock_check(work, proc=proc2).live == ["pid 77"]


def test_a_live_registered_run_or_one_on_another_host_keeps_the_lock(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    work = tmp_path / "work"
    _lock(work)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (work / RUNS_DIR).mkdir(parents=True)
        (work / RUNS_DIR / f"{HOST}.{sleeper.pid}").touch()
        state = stale_lock_check(work, proc=proc)
        assert not state.stale and state.live == [f"pid {sleeper.pid}"]
    finally:
        sleeper.kill()
        sleeper.wait()
    (work / RUNS_DIR / f"{HOST}.{sleeper.pid}").unlink()
    (work / RUNS_DIR / "login2.cluster.org.123").touch()  # a shared file system: cannot be checked
    state = stale_lock_check(work, proc=proc)
    assert not state.stale and "host login2.cluster.org" in state.live[0]


def test_without_proc_an_unregistered_lock_is_kept(tmp_path):
    work = tmp_path / "work"
    _lock(work)
    state = stale_lock_check(work, proc=tmp_path / "no-proc")
    assert not state.stale and "no /proc" in state.live[0]
    path = register_run(work)
    assert path.name == f"{HOST}.{os.getpid()}"


@pytest.mark.slow
def test_a_killed_run_resumes_with_the_same_command(tmp_path):
    """SIGKILL to Snakemake and its job while the simulation has written part of its outputs;
    the same command then finishes. Without the fix it stops at the lock ("Directory cannot be
    locked")."""
    config = tiny_config(tmp_path / "tiny.yaml")
    partial = tmp_path / "results/simulated/genome.fa"
    last = tmp_path / "results/simulated/truth/Klf4/expected.neg.bw"
    plain = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
             "--cores", "2", "results/tiny/windows.tsv", "--configfile", str(config)]
    cmd = plain[:3] + ["--workflow-profile", str(REPO / "workflow/profiles/default")] + plain[3:]
    for _ in range(3):  # the kill must land while the job runs and after its first outputs exist
        run = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        while run.poll() is None and not partial.exists():
            time.sleep(0.01)
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        if partial.exists() and not last.exists():
            break
        subprocess.run(["rm", "-rf", str(tmp_path / "results"), str(tmp_path / ".snakemake")], check=True)
    else:
        pytest.fail("could not interrupt the simulation between its first and last output")
    assert any((tmp_path / LOCKS_DIR).glob("*.lock")), "the killed Snakemake left no lock"
    assert any((tmp_path / ".snakemake/incomplete").iterdir()), "the killed job left no incomplete marker"

    killed_locks = {p.name: p.read_text() for p in (tmp_path / LOCKS_DIR).glob("*.lock")}
    assert "results/simulated/genome.fa" in "".join(killed_locks.values())

    # without a profile: the lock goes, and the half-written outputs are named with the option
    result = subprocess.run(plain, capture_output=True, text=True, timeout=900)
    assert result.returncode != 0 and "removed the lock left by an interrupted run" in result.stderr
    assert "--rerun-incomplete" in result.stderr
    for name, text in killed_locks.items():  # the killed run's lock again
        (tmp_path / LOCKS_DIR).mkdir(parents=True, exist_ok=True)
        (tmp_path / LOCKS_DIR / name).write_text(text)

    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "removed the lock left by an interrupted run" in result.stderr
    assert (tmp_path / "results/tiny/windows.tsv").exists() and last.exists()
    assert not any((tmp_path / LOCKS_DIR).glob("*.lock"))
    assert list((tmp_path / RUNS_DIR).iterdir()) == []  # the run unregistered itself on exit
