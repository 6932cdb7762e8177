"""Rule ism: in-silico mutagenesis of chosen windows (workflow/rules/interpret.smk)."""
from bpnet.interpret.ism import run_ism
from bpnet.runner import run_rule


def main(smk, log):
    run_ism(
        smk.input.dataset,
        smk.input.model,
        smk.output.npz,
        smk.output.windows,
        list(smk.params.tasks),
        smk.params.settings,
        rc_average=smk.params.rc_average,
        genome=smk.input.get("genome"),
        control=list(smk.input.get("control", [])),
        contrib_path=smk.params.contrib,
        device=smk.params.device,
        kernels=smk.params.kernels,
        threads=smk.threads,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
