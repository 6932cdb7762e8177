"""Rule peak_windows: summit-centred windows of every task's peaks (workflow/rules/windows.smk)."""
from bpnet.data.windows import write_peak_windows
from bpnet.errors import BPNetInputError
from bpnet.runner import run_rule


def main(smk, log):
    tasks, peaks = list(smk.params.tasks), list(smk.input.peaks)
    settings = dict(smk.params.windows)
    seed = settings.pop("seed", None)  # present with background only
    if len(peaks) != len(tasks):
        raise BPNetInputError(f"expected one peak file per task ({len(tasks)}), got {len(peaks)}")
    write_peak_windows(
        dict(zip(tasks, peaks)),
        smk.input.chrom_sizes,
        smk.output.windows,
        smk.output.summary,
        settings,
        blacklist=smk.input.blacklist[0] if smk.input.blacklist else None,
        fasta=smk.input.fasta[0] if smk.input.fasta else None,
        seed=seed,
        log=log,
        chrom_aliases=smk.input.aliases[0] if smk.input.aliases else None,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
