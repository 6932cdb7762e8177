"""The linters have nothing to say: `snakemake --lint` about the workflow (a few seconds per
config), `ruff check` about the Python, `snakefmt --check` about the rule files.

Snakemake's lint runs in a temporary working directory, so nothing is written into the
repository. The paper's config is linted too: its `download` section adds the generated
`extract_<name>` rules. ruff and snakefmt read their settings from pyproject.toml.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, snakemake


@pytest.mark.parametrize("config", ["config.yaml", "oskn.yaml"])
def test_lint_is_clean(tmp_path, config):
    result = snakemake(tmp_path, REPO / "config" / config, "--lint")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "Lints for" not in out, out[-4000:]
    # the config schema names a JSON Schema version the validator knows (else Snakemake warns)
    assert "No validator found" not in out, out[-4000:]
    assert not (tmp_path / "results").exists()


def _tool(name):
    """The linter installed beside this Python (the test extras), else on PATH."""
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else shutil.which(name)


@pytest.mark.parametrize("name, args", [("ruff", ["check", "."]), ("snakefmt", ["--check", "Snakefile", "workflow"])])
def test_code_is_lint_clean(name, args):
    tool = _tool(name)
    assert tool, f"{name} is not installed: pip install -e '.[test]'"
    result = subprocess.run([tool, *args], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
