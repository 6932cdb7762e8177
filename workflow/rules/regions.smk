# Predictions for your own regions (config key predict_regions): BED regions of the genome or FASTA
# sequences, of any length, predicted by the model of every experiment (trained or imported).
#   region_predictions  counts.tsv (reads per region, task, strand), predictions.npz (profiles)
#   region_tracks       BED entries: tracks/{task}.{pos,neg}.bw at the regions' genome coordinates
# Outputs under results/{exp}/regions/{name}/. Logic: scripts/bpnet/steps/regions.py. Helpers
# (region_outputs, region_inputs, region_mem) in common.smk.


rule predict_regions:
    # `snakemake --cores all predict_regions`: every predict_regions entry for every experiment
    # (they are part of rule all too once the config has the key).
    input:
        all_region_outputs(),


rule region_predictions:
    input:
        unpack(region_inputs),
    output:
        counts="results/{exp}/regions/{name}/counts.tsv",
        predictions="results/{exp}/regions/{name}/predictions.npz",
    log:
        "logs/{exp}/region_predictions/{name}.log",
    benchmark:
        "results/{exp}/benchmarks/region_predictions/{name}.tsv"
    wildcard_constraints:
        # ensembles have no model of their own
        exp=_alternatives(EXPERIMENTS),
        name=_alternatives(REGION_SETS),
    conda:
        "../../envs/bpnet.yaml"
    threads: 4  # capped by --cores / --set-threads and by the cores the job may use
    resources:
        mem_mb=scaled_mem(region_mem),
        # ~300 windows of 1 kb per second on 2 CPU cores: 1 M windows in an hour
        runtime=120,
    params:
        tasks=tasks_of,
        tile_overlap=region_value("tile_overlap"),
        rc_average=exp_value("predict", "reverse_complement_average"),
        device=exp_value("device"),
        kernels=exp_value("kernels"),
    script:
        "../../scripts/predict_regions.py"


rule region_tracks:
    input:
        predictions=rules.region_predictions.output.predictions,
        chrom_sizes=exp_value("data", "chrom_sizes"),
    output:
        # a folder: experiments may differ in tasks
        tracks=directory("results/{exp}/regions/{name}/tracks"),
    log:
        "logs/{exp}/region_tracks/{name}.log",
    benchmark:
        "results/{exp}/benchmarks/region_tracks/{name}.tsv"
    wildcard_constraints:
        exp=_alternatives(EXPERIMENTS),
        name=_alternatives(BED_REGIONS),
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        # the profile and the bases' int64 positions and order
        mem_mb=scaled_mem(input_mem(4)),
        runtime=30,
    params:
        tasks=tasks_of,
    script:
        "../../scripts/region_tracks.py"
