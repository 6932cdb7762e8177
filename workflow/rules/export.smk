# Track export: predicted tracks (postprocessed expected counts) as one bigWig per task and strand,
# over the test windows (export.regions: test) or a tiling of the genome or of listed chromosomes.
# A tiling runs as export.parts jobs of equal cost (rule export_part: parallel, and a killed run
# redoes only the parts it did not finish), merged by export_tracks_<exp>.
# Logic: scripts/bpnet/steps/export.py.


rule export_part:
    input:
        unpack(export_part_inputs),
    output:
        directory("results/{exp}/tracks/parts/{part}-of-{parts}"),
    log:
        "logs/{exp}/export_part/{part}-of-{parts}.log",
    benchmark:
        "results/{exp}/benchmarks/export_part/{part}-of-{parts}.tsv"
    wildcard_constraints:
        part=r"\d+",
        parts=r"\d+",
    conda:
        "../../envs/bpnet.yaml"
    threads: 4
    resources:
        # one chunk of 512 tiles in memory whatever the genome size
        mem_mb=scaled_mem(2000),
        # the paper's mm10 in 8 parts on 2 CPU cores: ~3 h each (README: At the paper's size)
        runtime=6 * 60,
    params:
        export=export_part_settings,
        tasks=tasks_of,
        device=exp_value("device"),
        kernels=exp_value("kernels"),
    script:
        "../../scripts/export_part.py"


# One rule per experiment (export_tracks_<experiment>): a job writes every task and strand at once,
# since a tiling predicts all channels together, and experiments may have different task sets.
for _exp in experiment_names():

    rule:
        name:
            export_rule_name(_exp)
        input:
            **export_inputs(_exp),
        output:
            exported_tracks(_exp),
        log:
            f"logs/{_exp}/export_tracks.log",
        benchmark:
            f"results/{_exp}/benchmarks/export_tracks.tsv"
        conda:
            "../../envs/bpnet.yaml"
        threads: 1
        resources:
            mem_mb=scaled_mem(export_mem(_exp)),
            # merging a mammalian genome's parts reads and rewrites every base
            runtime=4 * 60 if export_is_tiling(_exp) else 30,
        params:
            export=export_settings(_exp),
            tasks=task_names(_exp),
        script:
            "../../scripts/export_tracks.py"
