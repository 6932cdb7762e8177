# The reproducible BPNet pipeline (Avsec et al. 2021).
#   snakemake --cores 8                                  # the bundled simulated dataset
#   snakemake --cores 8 --configfile config/oskn.yaml    # the paper's data
# Rules live in workflow/rules/, their scripts in scripts/, the shared logic in scripts/bpnet/.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/windows.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/export.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
