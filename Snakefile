# The reproducible BPNet pipeline (Avsec et al. 2021).
#   snakemake --cores all                                 # the bundled simulated dataset
#   snakemake --cores all --configfile config/oskn.yaml   # the paper's data
# Rules live in workflow/rules/ (their helpers in workflow/rules/common.smk), their scripts in
# scripts/, the shared logic in scripts/bpnet/. Every rule names envs/bpnet.yaml (`conda:`), the
# environment its job runs in under `--sdm conda`; plain runs use the active Python.

from snakemake.utils import min_version

min_version("9.0")


# The default config is read only when no --configfile is given: Snakemake would otherwise
# deep-merge a user's config into it, and a dataset with other task names would inherit the
# simulated tasks. Give a complete config with --configfile (config/oskn.yaml is one).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/reads.smk"
include: "workflow/rules/windows.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/interpret.smk"
include: "workflow/rules/variants.smk"
include: "workflow/rules/regions.smk"
include: "workflow/rules/igv.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
