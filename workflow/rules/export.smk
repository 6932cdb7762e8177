# Track export: predicted tracks (postprocessed expected counts) as one bigWig per task and strand,
# over the test windows (export.regions: test) or a tiling of the genome or of listed chromosomes.
# Logic: scripts/bpnet/steps/export.py.

# One rule per experiment (export_tracks_<experiment>): a job writes every task and strand at once,
# since a tiling predicts all channels together, and experiments may have different task sets.
for _exp in experiment_names():

    rule:
        name:
            export_rule_name(_exp)
        input:
            **export_inputs(_exp),
        output:
            expand(
                "results/{exp}/tracks/{task}.{strand}.bw",
                exp=_exp,
                task=task_names(_exp),
                strand=["pos", "neg"],
            ),
        log:
            f"logs/{_exp}/export_tracks.log",
        benchmark:
            f"results/{_exp}/benchmarks/export_tracks.tsv"
        conda:
            "../../envs/bpnet.yaml"
        threads: 4
        resources:
            mem_mb=scaled_mem(export_mem(_exp)),
            # a mammalian genome on CPU is ~5 M tiles of 0.26 GFLOP each: hours
            runtime=24 * 60 if export_is_tiling(_exp) else 30,
        params:
            export=export_settings(_exp),
            tasks=task_names(_exp),
            device=exp_config(_exp)["device"],
            kernels=exp_config(_exp)["kernels"],
        script:
            "../../scripts/export_tracks.py"
