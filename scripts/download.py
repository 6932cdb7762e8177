"""Rule download: one configured file, resumable, retried, checksum-checked (workflow/rules/download.smk)."""
from bpnet.data.download import download
from bpnet.runner import run_rule


def main(smk, log):
    # download.retries, .timeout and .backoff come from the config rather than params: they do not
    # change the result, so changing them must not make Snakemake download again.
    settings = smk.config["download"]  # validated: defaults filled from the schema
    entry = smk.params.entry
    download(entry["url"], smk.output[0], sha256=entry["sha256"], md5=entry.get("md5"),
             key=smk.params.name,
             retries=settings["retries"], timeout=settings["timeout"], backoff=settings["backoff"], log=log)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
