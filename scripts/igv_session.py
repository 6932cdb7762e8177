"""Rule igv_session: an IGV session of the experiment's tracks and windows (workflow/rules/igv.smk)."""
from bpnet.runner import run_rule
from bpnet.steps.igv import write_igv_session


def main(smk, log):
    write_igv_session(
        smk.output.session,
        smk.input.windows,
        smk.input.dataset,
        list(smk.params.tasks),
        list(smk.input.observed),
        list(smk.input.predicted),
        smk.output.windows,
        smk.output.top,
        genome_fasta=smk.params.genome_fasta,
        genome_id=smk.params.igv["genome_id"],
        contributions=list(smk.params.contributions),
        contribution_heads=list(smk.params.heads),
        control=list(smk.input.control),
        motif_bed=smk.input.get("motifs"),
        n_top=smk.params.igv["top_windows"],
        minus_strand_negative=bool(smk.params.minus_strand_negative),
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
