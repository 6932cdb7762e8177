# Track export: predicted tracks (postprocessed expected counts) as one bigWig per task and strand,
# over the test windows (export.regions: test) or a tiling of the genome or of listed chromosomes.
# Logic: scripts/bpnet/export.py.

import os


def export_inputs(wildcards):
    """Inputs by mode: the model's test predictions, or the checkpoint, FASTA and control."""
    exp = wildcards.exp
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


def export_is_tiling(wildcards):
    return exp_config(wildcards.exp)["export"]["regions"] != "test"


def export_mem_mb(wildcards, input):
    """A tiling holds one chunk of 512 tiles whatever the genome size; test mode loads the
    predictions file whole, plus its stitched copy and a per-track transpose of each segment."""
    if export_is_tiling(wildcards):
        return 4000
    if not os.path.exists(input.predictions):  # sized again once rule predict has run
        return 4000
    return max(2000, int(3 * os.path.getsize(input.predictions) / 2**20))


rule export_tracks:
    input:
        unpack(export_inputs),
    output:
        # One job writes every task and strand: a tiling predicts all channels at once.
        expand(
            "results/{{exp}}/tracks/{task}.{strand}.bw",
            task=task_names(config["experiment"]),
            strand=["pos", "neg"],
        ),
    params:
        export=lambda w: exp_config(w.exp)["export"],
        tasks=lambda w: task_names(w.exp),
        device=lambda w: exp_config(w.exp)["device"],
    log:
        "logs/{exp}/export_tracks.log",
    benchmark:
        "results/{exp}/benchmarks/export_tracks.tsv"
    threads: 4
    resources:
        mem_mb=export_mem_mb,
        # a mammalian genome on CPU is ~5 M tiles of 0.26 GFLOP each: hours
        runtime=lambda w: 24 * 60 if export_is_tiling(w) else 30,
    script:
        "../../scripts/export_tracks.py"
