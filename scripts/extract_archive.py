"""Rules extract_<name>: the configured members of one archive, in one pass (workflow/rules/download.smk)."""
from bpnet.data.download import extract_members
from bpnet.runner import run_rule


def main(smk, log):
    extract_members(smk.input.archive, smk.params.members, key=smk.params.name, log=log)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
