"""The workflow on a real SLURM scheduler, through the project's profile `workflow/profiles/slurm`.

A single-node cluster (munged + slurmctld + slurmd, tests/slurm_cluster.py) is started in a
temporary folder with the profile's partitions, `main` and `gpu` (one GPU as far as the scheduler
knows). Two Snakemake runs go to it at once, while a local run of the same tiny config as
tests/test_workflow.py takes the CPU (the SLURM runs mostly wait between status checks):

- the tiny config, end to end: every Snakemake job must be one SLURM job, asking for the rule's
  threads, mem_mb, runtime, partition and GPU, and the outputs must equal the local run's;
- a rule made to fail (a malformed peak file): three SLURM jobs (retries: 2) asking for 1x, 2x, 3x
  the rule's memory, then a non-zero exit;
- afterwards, a copy of the profile pointing at a partition that does not exist must fail at once.

Only what a site sets besides the profile is given on the command line: no SLURM account, and
`squeue` for status checks (this cluster has no accounting database for `sacct`), checked from 2 s
after submission instead of the plugin's 40 s. About 2-3 minutes on 2 cores; run with
`pytest -m slurm`. Needs the Debian packages slurm-wlm and munge (`.ci/run` installs them) and
root (slurmd starts the jobs).
"""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import yaml
from conftest import REPO, snakemake, tiny_config
from safetensors.numpy import load_file
from slurm_cluster import SlurmCluster, die_with_parent, missing_programs

PROFILE = REPO / "workflow" / "profiles" / "slurm"
# What a site adds to the profile (see the module docstring).
SITE_ARGS = ("--slurm-no-account", "--slurm-status-command", "squeue",
             "--slurm-init-seconds-before-status-checks", "2")
RUN_LIMIT_S = 420  # a run takes 1-2 minutes; this bounds a hung one

_missing = missing_programs()
pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(bool(_missing), reason=f"SLURM is not installed ({', '.join(_missing)} not found; "
                                              "apt-get install slurm-wlm munge)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="slurmd must run as root to start jobs"),
]


class SlurmRun:
    """`snakemake --workflow-profile <profile>` started as a user types it on a login node.

    Unlike test_workflow.snakemake it does not wait (runs go side by side), passes no --cores (it
    would cap the threads asked of SLURM), passes the cluster's environment and writes its output
    to a file (a pipe nobody reads would block it). A run past the limit gets SIGINT, on which
    Snakemake cancels its SLURM jobs (on SIGTERM it keeps waiting).
    """

    def __init__(self, cluster: SlurmCluster, workdir: Path, config: Path, *args: str, profile: Path = PROFILE):
        self.log = workdir / "snakemake.out"
        cmd = ["timeout", "-s", "INT", "-k", "30", str(RUN_LIMIT_S), sys.executable, "-m", "snakemake",
               "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", str(config),
               "--workflow-profile", str(profile), *SITE_ARGS, *args]
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=cluster.environ(),
                                         preexec_fn=die_with_parent(signal.SIGINT))

    def wait(self) -> subprocess.CompletedProcess:
        """The finished run; its stdout holds stdout and stderr together."""
        rc = self.proc.wait(timeout=RUN_LIMIT_S + 60)
        return subprocess.CompletedProcess(self.proc.args, rc, self.log.read_text(), "")

    def interrupt(self) -> None:
        """Ctrl-C: Snakemake cancels its SLURM jobs and exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def windows_only_config(work: Path, peaks: str, experiment: str = "broken") -> tuple[Path, str]:
    """A config whose experiment reads the peak file ``peaks`` (text) for every task.

    Its windows (rule peak_windows alone, no simulation) are the returned target.
    """
    work.mkdir(parents=True, exist_ok=True)
    (work / "peaks.narrowPeak").write_text(peaks)
    # the split chromosomes of the config (chr1-4, 8, 9) must be in the genome (checked before any job)
    (work / "genome.chrom.sizes").write_text("".join(f"chr{i}\t100000\n" for i in range(1, 10)))
    for strand in ("pos", "neg"):  # must exist (the config check); rule peak_windows never reads them
        (work / f"unread.{strand}.bw").write_bytes(b"")
    tasks = {t: {"pos": "unread.pos.bw", "neg": "unread.neg.bw", "peaks": "peaks.narrowPeak"}
             for t in ("Oct4", "Sox2")}
    config = tiny_config(work / "config.yaml", experiment=experiment,
                         data={"chrom_sizes": "genome.chrom.sizes", "tasks": tasks, "truth": None, "control": None})
    return config, f"results/{experiment}/windows.tsv"


def submissions(result: subprocess.CompletedProcess) -> list[dict]:
    """One entry per SLURM submission, from Snakemake's log: the rule, the SLURM job id and the
    threads and resources Snakemake resolved for that job (printed in the job's block)."""
    blocks, subs, block = {}, [], None
    for line in (result.stdout + result.stderr).splitlines():
        head = re.match(r"^(local)?rule (\S+):$", line)
        if head:
            block = {"rule": head.group(2), "threads": 1, "resources": {}}
            continue
        field = re.match(r"^    (\w+): (.*)$", line)
        if block is not None and field:
            key, value = field.groups()
            if key == "jobid":
                blocks[value] = block
            elif key == "threads":
                block["threads"] = int(value)
            elif key == "resources":
                block["resources"] = dict(kv.split("=", 1) for kv in value.split(", "))
            continue
        block = None
        sub = re.match(r"^Job (\d+) has been submitted with SLURM jobid (\d+) ", line)
        if sub:
            subs.append({**blocks[sub.group(1)], "slurm_id": sub.group(2)})
    return subs


def minutes(timelimit: str) -> int:
    """SLURM's TimeLimit ([D-]HH:MM:SS) in minutes."""
    days, _, clock = timelimit.rpartition("-")
    h, m, s = (int(x) for x in clock.split(":"))
    return int(days or 0) * 1440 + h * 60 + m + (s > 0)


def jobs_of(cluster: SlurmCluster, workdir: Path) -> dict[str, dict]:
    """SLURM's records of the jobs submitted from ``workdir``, by job id."""
    return {j["JobId"]: j for j in cluster.jobs() if j.get("WorkDir") == str(workdir)}


def tail(result: subprocess.CompletedProcess, n: int = 6000) -> str:
    return (result.stdout + result.stderr)[-n:]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        yield c.start()
    finally:
        c.stop()
    assert not c.leftover_pids(), "processes of the SLURM cluster outlived stop()"


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The tiny config on SLURM and locally, and the failing rule on SLURM, run side by side."""
    slurm_dir, local_dir = tmp_path_factory.mktemp("on_slurm"), tmp_path_factory.mktemp("local")
    failing_dir = tmp_path_factory.mktemp("failing")
    # a narrowPeak line needs 10 columns: peak_windows stops with "error: ..., line 1"
    failing_config, failing_target = windows_only_config(failing_dir, "chr1\t1000\t1200\t.\t0\n")
    on_slurm = SlurmRun(cluster, slurm_dir, tiny_config(slurm_dir / "tiny.yaml"))
    failing = SlurmRun(cluster, failing_dir, failing_config, failing_target)
    try:
        local = snakemake(local_dir, tiny_config(local_dir / "tiny.yaml"))
        return {"slurm": (slurm_dir, on_slurm.wait()), "local": (local_dir, local),
                "failing": (failing_dir, failing.wait())}
    finally:
        on_slurm.interrupt()  # no-ops once finished; stops them when the test is interrupted
        failing.interrupt()


def test_every_job_is_one_slurm_job_with_the_rules_resources(runs, cluster):
    workdir, result = runs["slurm"]
    assert result.returncode == 0, tail(result) + cluster.log_tail()
    subs = submissions(result)
    jobs = jobs_of(cluster, workdir)
    # one SLURM job per Snakemake job, nothing else; only the target rule `all` runs locally
    local_rules = re.findall(r"^localrule (\S+):$", result.stdout, flags=re.M)
    assert local_rules == ["all"]
    steps = re.findall(r"^(\d+) of (\d+) steps \(100%\) done$", result.stdout, flags=re.M)
    assert steps and int(steps[-1][1]) == len(subs) + len(local_rules)
    assert sorted(s["slurm_id"] for s in subs) == sorted(jobs)
    rules = [s["rule"] for s in subs]
    assert len(rules) == len(set(rules)) and {"simulate_dataset", "train", "predict", "evaluate"} <= set(rules)
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    for sub in subs:
        job, res = jobs[sub["slurm_id"]], sub["resources"]
        where = f"rule {sub['rule']}, SLURM job {sub['slurm_id']}"
        assert job["JobState"] == "COMPLETED", where
        assert job["Comment"].startswith(f"rule_{sub['rule']}"), where
        assert int(job["CPUs/Task"]) == sub["threads"], where
        assert job["MinMemoryNode"] == f"{res['mem_mb']}M", where
        assert minutes(job["TimeLimit"]) == int(res["runtime"]), where
        # the partition and GPU the project's profile sets for the rule
        wanted = {**profile["default-resources"], **profile.get("set-resources", {}).get(sub["rule"], {})}
        assert job["Partition"] == wanted["slurm_partition"] == res["slurm_partition"], where
        gpus = wanted.get("gpu")
        assert job.get("TresPerJob") == (f"gres:gpu:{gpus}" if gpus else None), where
    # training goes to the GPU partition with a GPU, and threads are not capped on the way
    train = next(s for s in subs if s["rule"] == "train")
    assert jobs[train["slurm_id"]]["Partition"] == "gpu" and jobs[train["slurm_id"]]["TresPerJob"] == "gres:gpu:1"
    assert any(int(jobs[s["slurm_id"]]["CPUs/Task"]) > 1 for s in subs)


def test_outputs_equal_a_local_run(runs):
    (slurm_dir, on_slurm), (local_dir, local) = runs["slurm"], runs["local"]
    assert on_slurm.returncode == 0 and local.returncode == 0, tail(on_slurm) + tail(local)
    a, b = slurm_dir / "results" / "tiny", local_dir / "results" / "tiny"
    pd.testing.assert_frame_equal(pd.read_csv(a / "evaluation/metrics.tsv", sep="\t"),
                                  pd.read_csv(b / "evaluation/metrics.tsv", sep="\t"))
    assert json.loads((a / "evaluation/summary.json").read_text()) == json.loads((b / "evaluation/summary.json").read_text())
    for npz in ("dataset.npz", "predictions/model.npz", "predictions/oracle.npz"):
        with np.load(a / npz) as x, np.load(b / npz) as y:
            assert sorted(x.files) == sorted(y.files), npz
            for key in x.files:
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"{npz}: {key}")
    wa, wb = load_file(a / "model/model.safetensors"), load_file(b / "model/model.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)
    tracks = sorted(p.name for p in (b / "tracks").glob("*.bw"))
    assert tracks == sorted(p.name for p in (a / "tracks").glob("*.bw")) and len(tracks) == 8
    for name in tracks:
        x, y = pyBigWig.open(str(a / "tracks" / name)), pyBigWig.open(str(b / "tracks" / name))
        assert x.chroms() == y.chroms(), name
        for chrom in x.chroms():
            assert x.intervals(chrom) == y.intervals(chrom), f"{name} {chrom}"
        x.close()
        y.close()


def test_failing_rule_is_retried_then_reported(runs, cluster):
    workdir, result = runs["failing"]
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "Error in rule peak_windows" in out, tail(result)
    assert "5 column(s) are not narrowPeak's" in out  # the rule's log, shown on failure
    subs = submissions(result)
    jobs = jobs_of(cluster, workdir)
    # the profile's retries: 2 -> three attempts, each its own failed SLURM job
    assert [s["rule"] for s in subs] == ["peak_windows"] * 3, tail(result)
    assert sorted(s["slurm_id"] for s in subs) == sorted(jobs)
    for sub in subs:
        job = jobs[sub["slurm_id"]]
        assert job["JobState"] == "FAILED" and job["ExitCode"] != "0:0", job
        assert job["MinMemoryNode"] == f"{sub['resources']['mem_mb']}M"  # each attempt's own request
    # each retry asks SLURM for more memory: the rule's mem_mb times the attempt
    mem = [int(jobs[s["slurm_id"]]["MinMemoryNode"].removesuffix("M")) for s in subs]
    assert mem == [mem[0], 2 * mem[0], 3 * mem[0]], mem


def test_profile_with_a_missing_partition_fails_at_submission(cluster, tmp_path):
    """A profile naming a partition the cluster lacks fails the run at once, naming it."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = "nosuchpartition"
    broken = tmp_path / "profile"
    broken.mkdir()
    (broken / "config.yaml").write_text(yaml.safe_dump(profile))
    config, target = windows_only_config(tmp_path / "wf", "chr1\t1000\t1200\t.\t0\t.\t5\t-1\t-1\t100\n", "fine")
    result = SlurmRun(cluster, tmp_path / "wf", config, target, profile=broken).wait()
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Invalid partition name specified" in out and "-p nosuchpartition" in out, tail(result)
    assert not jobs_of(cluster, tmp_path / "wf")  # nothing reached the queue
