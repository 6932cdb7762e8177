"""`snakemake --lint` has nothing to say about the workflow (a few seconds per config).

Run in a temporary working directory, so nothing is written into the repository. The paper's
config is linted too: its `download` section adds the generated `extract_<name>` rules.
"""

import pytest

from test_workflow import REPO, snakemake


@pytest.mark.parametrize("config", ["config.yaml", "oskn.yaml"])
def test_lint_is_clean(tmp_path, config):
    result = snakemake(tmp_path, REPO / "config" / config, "--lint")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "Lints for" not in out, out[-4000:]
    # the config schema names a JSON Schema version the validator knows (else Snakemake warns)
    assert "No validator found" not in out, out[-4000:]
    assert not (tmp_path / "results").exists()
