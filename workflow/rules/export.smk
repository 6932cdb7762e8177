# Track export: predicted tracks (postprocessed expected counts) as one bigWig per task and strand,
# over the test windows (export.regions: test) or a tiling of the genome or of listed chromosomes.
# Logic: scripts/bpnet/export.py.

import os


def export_inputs(exp):
    """Inputs by mode: the model's test predictions, or the checkpoint, FASTA and control."""
    cfg = exp_config(exp)
    inputs = {
        "chrom_sizes": cfg["data"]["chrom_sizes"],
        # test mode: the windows; tiling: the training width W of the tiles
        "dataset": f"results/{exp}/dataset.npz",
    }
    if cfg["export"]["regions"] == "test":
        inputs["predictions"] = f"results/{exp}/predictions/model.npz"
    else:
        inputs["model"] = f"results/{exp}/model/model.safetensors"
        inputs["fasta"] = cfg["data"]["genome_fasta"]
        inputs["control"] = control_files(exp)
    return inputs


def export_is_tiling(exp):
    return exp_config(exp)["export"]["regions"] != "test"


def export_mem_mb(exp, input):
    """A tiling holds one chunk of 512 tiles whatever the genome size; test mode loads the
    predictions file whole, plus its stitched copy and a per-track transpose of each segment."""
    if export_is_tiling(exp):
        return 4000
    if not os.path.exists(input.predictions):  # sized again once rule predict has run
        return 4000
    return max(2000, int(3 * os.path.getsize(input.predictions) / 2**20))


# One rule per experiment (export_tracks_<experiment>): a job writes every task and strand at once,
# since a tiling predicts all channels together, and experiments may have different task sets.
for _exp in experiment_names():

    rule:
        name:
            "export_tracks_" + re.sub(r"\W", "_", _exp)
        input:
            **export_inputs(_exp),
        output:
            expand("results/{exp}/tracks/{task}.{strand}.bw", exp=_exp, task=task_names(_exp), strand=["pos", "neg"]),
        params:
            export=exp_config(_exp)["export"],
            tasks=task_names(_exp),
            device=exp_config(_exp)["device"],
        log:
            f"logs/{_exp}/export_tracks.log",
        benchmark:
            f"results/{_exp}/benchmarks/export_tracks.tsv"
        threads: 4
        resources:
            mem_mb=lambda w, input, exp=_exp: export_mem_mb(exp, input),
            # a mammalian genome on CPU is ~5 M tiles of 0.26 GFLOP each: hours
            runtime=24 * 60 if export_is_tiling(_exp) else 30,
        script:
            "../../scripts/export_tracks.py"
