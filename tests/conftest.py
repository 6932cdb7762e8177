"""Shared by the tests: the repository, the tiny workflow config, and running Snakemake on it.

The end-to-end tests (test_workflow, test_experiments_workflow, test_resume, test_lint,
test_slurm) import these helpers from here: ``from conftest import REPO, snakemake, tiny_config``.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "experiment": "tiny",
    "seed": 3,
    "device": "cpu",
    "simulation": {"seed": 3, "scale": 0.3, "num_chroms": 10, "genome_length": 12_000_000},
    "windows": {"width": 200},
    "model": {"hidden_size": 8, "num_dilated_layers": 3, "stem_kernel": 9, "profile_kernel": 9},
    "training": {"max_epochs": 2, "patience": 2, "batch_size": 64},
    "evaluation": {"binsizes": [1, 5]},
    "interpretation": {"enabled": False},
}


def tiny_config(path: Path, **override) -> Path:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for key, value in {**TINY, **override}.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    if "variants" not in override:  # the truth variants have their own test (test_variants_workflow)
        cfg.pop("variants", None)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", *args, "--configfile", str(config)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def jobs_planned(result: subprocess.CompletedProcess) -> set[str]:
    """Rule names in the 'Job stats' table of a dry run."""
    rules, in_table = set(), False
    for line in result.stdout.splitlines():
        if line.startswith("job ") and "count" in line:
            in_table = True
            continue
        if in_table:
            parts = line.split()
            if not parts or parts[0] == "total":
                break
            if not parts[0].startswith("-"):
                rules.add(parts[0])
    return rules


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root (Snakefile, config/, workflow/)."""
    return REPO
