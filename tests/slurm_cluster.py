"""A throwaway single-node SLURM cluster (munged + slurmctld + slurmd) in a folder, for tests.

Everything lives under one folder: config, state, spool, logs and the munge key and socket, on
ports picked free at start, so nothing under /etc or /run is touched and two clusters never
collide. The daemons run in the foreground as children of the test (``-D`` / ``-F``), so they are
stopped by the PIDs we started them with; ``stop()`` also cancels leftover jobs and ends any
process that still carries this cluster's ``SLURM_CONF`` (a job step or slurmstepd), by PID.

Accounting is off (``accounting_storage/none``): slurmdbd would need a MariaDB server, which
takes a second package set and several seconds to start, and the job records we check live in
slurmctld anyway. ``MinJobAge`` keeps finished jobs in slurmctld for an hour, which is what
``scontrol show job`` reads here and what the Snakemake plugin's ``squeue`` status check needs
(with ``sacct`` as its status command it would wait forever without accounting).

The node declares more CPUs and memory than a CI machine has (``SlurmdParameters=config_overrides``
keeps slurmd from draining it) and one count-only GPU, so the workflow's real requests (8 GB,
4 threads, ``--gpus=1`` on partition ``gpu``) are scheduled as they would be on a site.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "scontrol", "scancel", "sinfo")


def missing_programs() -> list[str]:
    """The SLURM / munge programs not found on PATH or in /usr/sbin (empty when all are there)."""
    return [p for p in (*DAEMONS, *CLIENTS) if _which(p) is None]


def _which(program: str) -> str | None:
    # the daemons live in /usr/sbin, which a non-login PATH may lack
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    """One node ``localhost`` in partitions ``partitions`` (the first is the default)."""

    def __init__(self, root: Path, partitions=("main", "gpu"), cpus=8, mem_mb=32000, gpus=1):
        self.root = Path(root)
        self.partitions = partitions
        self.cpus, self.mem_mb, self.gpus = cpus, mem_mb, gpus
        self.conf = self.root / "etc" / "slurm.conf"
        self.bin = self.root / "bin"
        self.logs = self.root / "log"
        self.procs: dict[str, subprocess.Popen] = {}

    # -- environment ---------------------------------------------------------------------------

    def environ(self) -> dict[str, str]:
        """This process's environment, without SLURM settings of its own, pointed at this cluster
        (SLURM_CONF, and the srun wrapper first on PATH, for the commands and the jobs they start)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
        env.update(SLURM_CONF=str(self.conf), PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}")
        return env

    def command(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a SLURM client command (scontrol, squeue, ...) against this cluster."""
        return subprocess.run([_which(args[0]) or args[0], *args[1:]], env=self.environ(), capture_output=True,
                              text=True, check=check, timeout=timeout)

    # -- start / stop --------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> "SlurmCluster":
        missing = missing_programs()
        if missing:
            raise FileNotFoundError(f"SLURM programs not found: {', '.join(missing)}")
        for sub in ("etc", "state", "spool", "log", "run", "munge", "bin"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        try:
            self._start_munge()
            self._write_config()
            self._spawn("slurmctld", "-D", "-f", str(self.conf))
            self._spawn("slurmd", "-D", "-N", "localhost", "-f", str(self.conf))
            self._wait_idle(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_munge(self) -> None:
        munge = self.root / "munge"
        munge.chmod(0o755)  # munged refuses a socket directory others can write to
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.munge_socket = munge / "munge.socket"
        self._spawn("munged", "-F", "--force", f"--socket={self.munge_socket}", f"--key-file={key}",
                    f"--log-file={self.logs / 'munged.log'}", f"--pid-file={munge / 'munged.pid'}",
                    f"--seed-file={munge / 'munged.seed'}")
        self._wait(lambda: self.munge_socket.is_socket(), 15, "munged to open its socket")

    def _write_config(self) -> None:
        r = self.root
        nodes = "localhost"
        partitions = "\n".join(
            f"PartitionName={p} Nodes={nodes} MaxTime=INFINITE State=UP{' Default=YES' if i == 0 else ''}"
            for i, p in enumerate(self.partitions)
        )
        self.conf.write_text(f"""\
ClusterName=bpnettest
SlurmctldHost=localhost
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}
SlurmdPidFile={r / 'run' / 'slurmd.pid'}
SlurmctldLogFile={self.logs / 'slurmctld.log'}
SlurmdLogFile={self.logs / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
GresTypes=gpu
NodeName={nodes} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.mem_mb} Gres=gpu:{self.gpus} State=UNKNOWN
{partitions}
""")
        # a count-only GPU: the scheduler hands it out, no device file behind it
        (self.conf.parent / "gres.conf").write_text(f"NodeName={nodes} Name=gpu File=/dev/null Count={self.gpus}\n")
        # The jobstep plugin strips SLURM_* (SLURM_CONF included) before its `srun`; put it back.
        srun = self.bin / "srun"
        srun.write_text(f'#!/bin/sh\nexport SLURM_CONF="{self.conf}"\nexec {_which("srun")} "$@"\n')
        srun.chmod(0o755)

    def _spawn(self, name: str, *args: str) -> None:
        out = open(self.logs / f"{name}.out", "w")
        self.procs[name] = subprocess.Popen([_which(name), *args], env=self.environ(), stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True, preexec_fn=die_with_parent())
        out.close()

    def _wait(self, ready, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.log_tail()}")

    def _wait_idle(self, timeout: float) -> None:
        def idle():
            res = self.command("sinfo", "-h", "-N", "-o", "%T", check=False, timeout=10)
            states = set(res.stdout.split()) if res.returncode == 0 else set()
            if any(s.startswith(("drain", "inval")) for s in states):  # a config error: it stays so
                node = self.command("scontrol", "show", "node", check=False).stdout
                raise RuntimeError(f"node localhost is {states}:\n{node}\n{self.log_tail()}")
            return states == {"idle"}
        self._wait(idle, timeout, "node localhost to be idle")

    def log_tail(self, chars: int = 3000) -> str:
        parts = []
        for log in sorted(self.logs.glob("*")):
            text = log.read_text(errors="replace")
            if text.strip():
                parts.append(f"--- {log.name}\n{text[-chars:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel every job, stop the daemons by PID and end this cluster's leftover processes."""
        ctld = self.procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None:
            self.command("scancel", "--full", "--user", str(os.getuid()), check=False, timeout=10)
            try:
                self._wait(lambda: not self.command("squeue", "-h", check=False, timeout=10).stdout.strip(),
                           20, "cancelled jobs to end")
            except (TimeoutError, RuntimeError):
                pass  # whatever is left is ended below
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is not None:
                _end(proc.pid, proc)
        for pid in self.leftover_pids():
            _end(pid)

    def leftover_pids(self) -> list[int]:
        """Processes (job steps, slurmstepd) whose environment names this cluster's config."""
        marker = f"SLURM_CONF={self.conf}".encode()
        me = {os.getpid(), os.getppid()}
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in me:
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                pids.append(int(entry.name))
        return pids

    # -- job records ---------------------------------------------------------------------------

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld knows (finished ones for MinJobAge), as ``scontrol show job`` fields."""
        out = self.command("scontrol", "show", "job", "--oneliner").stdout
        jobs = []
        for line in out.splitlines():
            if not line.startswith("JobId="):
                continue
            fields = {}
            for token in line.split():
                key, sep, value = token.partition("=")
                if sep:
                    fields[key] = value
            jobs.append(fields)
        return jobs


def die_with_parent(sig: int = signal.SIGTERM):
    """A ``preexec_fn``: the child gets ``sig`` when the test process dies, even by SIGKILL (Linux)."""
    def preexec() -> None:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    return preexec


def _end(pid: int, proc: subprocess.Popen | None = None, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; reaps ``proc`` when it is our child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + grace
    while time.monotonic() < end:
        if proc is not None:
            if proc.poll() is not None:
                return
        elif not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if proc is not None:
        proc.wait(timeout=10)
