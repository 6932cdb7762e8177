"""Rule simulate_dataset: the bundled simulated OSKN ChIP-nexus dataset (workflow/rules/simulate.smk)."""
from pathlib import Path

from bpnet.runner import run_rule
from bpnet.simulate.files import check_outputs
from bpnet.simulate.generate import simulate_dataset


def main(smk, log):
    out_dir = Path(smk.output.fasta).parent
    simulate_dataset(out_dir=out_dir, config=smk.params.simulation, log=log, threads=smk.threads)
    check_outputs(out_dir, smk.output)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
