# Downloads into resources/: the paper's data archive, genome and published weights (config
# section `download`, empty for the simulated data).
#
#   rule download          resources/{path}: one configured file (download.files.<name>.dest),
#                          resumable, retried, sha256-checked when pinned; runs on the head node
#   rule extract_<name>    the members of archive <name> (download.files.<name>.members), one
#                          streamed pass through the tar.gz
#   rule download_all      target: every configured file (archive members, not the archives)
#
# A failed download leaves <dest>.part beside its output: Snakemake deletes only declared
# outputs, so the .part survives and the next run resumes it. It is the one undeclared file a
# job may leave behind, and it is gone once the download succeeds.


rule download:
    output:
        "resources/{path}",
    log:
        "logs/download/{path}.log",
    wildcard_constraints:
        # Only the configured destinations; "(?!)" matches nothing when there are none.
        path=_alternatives(sorted(DOWNLOAD_BY_PATH)),
    localrule: True  # cluster compute nodes often have no internet access
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(1000),
        runtime=600,
    params:
        # What is downloaded (a changed url or sha256 reruns it). download.retries, .timeout and
        # .backoff are read from the config by the script: they are not part of the result and
        # changing them must not trigger a re-download.
        name=download_name,
        entry=download_entry,
    script:
        "../../scripts/download.py"


for _name, _entry in DOWNLOADS.items():
    if not _entry.get("members"):
        continue

    rule:
        name:
            f"extract_{_name}"
        input:
            archive=_entry["dest"],
        output:
            list(_entry["members"].values()),
        log:
            f"logs/download/extract_{_name}.log",
        conda:
            "../../envs/bpnet.yaml"
        threads: 1
        resources:
            mem_mb=scaled_mem(1000),
            runtime=240,  # one pass through the 31 GB data.tar.gz at gunzip speed
        params:
            name=_name,
            members=dict(_entry["members"]),
        script:
            "../../scripts/extract_archive.py"


rule download_all:
    input:
        download_targets(config.get("download", {})),
