"""Rule interpretation_check: motifs, instances and syntax vs. the simulator's planted truth (workflow/rules/interpret.smk)."""
from bpnet.interpret.truth import check_against_truth
from bpnet.runner import run_rule


def main(smk, log):
    # truth and truth_syntax are optional inputs: a path, or an empty list when the config key is null
    check_against_truth(
        smk.input.truth or None,
        smk.input.contrib,
        dict(zip(smk.params.tasks, smk.input.h5)),
        smk.input.instances,
        smk.input.syntax,
        smk.input.syntax_summary,
        smk.input.known,
        smk.output.check,
        interpretation=smk.params.interpretation,
        planted_syntax_path=smk.input.truth_syntax or None,
        log=log,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
