"""Rule marginalize: in-silico marginalisation of motif pairs by distance (workflow/rules/interpret.smk)."""
from bpnet.interpret.syntax import marginalize_motif_pairs
from bpnet.runner import run_rule


def main(smk, log):
    marginalize_motif_pairs(
        smk.input.model,
        smk.input.dataset,
        smk.input.known,
        smk.output.table,
        smk.output.summary,
        smk.output.plots,
        list(smk.params.tasks),
        smk.params.interpretation,
        seed=smk.params.seed,
        device=smk.params.device,
        kernels=smk.params.kernels,
        threads=smk.threads,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
