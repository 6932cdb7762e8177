# The simulated OSKN ChIP-nexus dataset with known ground truth (the default dataset): a genome,
# per-TF 5'-end count bigWigs and peaks laid out like the paper's data, a PATCH-CAP-like control,
# and the truth (planted motif instances, noise-free expected-rate tracks for the oracle).
# Everything follows from config section `simulation` (seed and scale, defaults in the schema);
# config/config.yaml's `data:` points at these files, so the first rule to run is this one.
# The outputs are the package's layout (bpnet.simulate.files.output_paths; the script checks).
# Rule simulate_variants adds the truth VCF, asked for by path (bpnet.simulate.variants).

from bpnet.io.tracks import STRANDS
from bpnet.simulate.binding import TFS
from bpnet.simulate.tracks import CONTROL

SIMULATED = "results/simulated"


rule simulate_dataset:
    output:
        fasta=f"{SIMULATED}/genome.fa",
        fai=f"{SIMULATED}/genome.fa.fai",
        chrom_sizes=f"{SIMULATED}/genome.chrom.sizes",
        counts=expand(
            f"{SIMULATED}/chip-nexus/{{tf}}/counts.{{strand}}.bw", tf=[*TFS, CONTROL], strand=STRANDS
        ),
        peaks=expand(f"{SIMULATED}/chip-nexus/{{tf}}/idr-optimal-set.narrowPeak.gz", tf=TFS),
        instances=f"{SIMULATED}/truth/instances.tsv.gz",
        syntax=f"{SIMULATED}/truth/syntax.tsv.gz",
        expected=expand(f"{SIMULATED}/truth/{{tf}}/expected.{{strand}}.bw", tf=TFS, strand=STRANDS),
    log:
        "logs/simulate_dataset.log",
    benchmark:
        # like every rule's benchmark (results/<exp>/benchmarks/<rule>.tsv), in the data's folder
        f"{SIMULATED}/benchmarks/simulate_dataset.tsv"
    conda:
        "../../envs/bpnet.yaml"
    threads: 2  # bigWig writing runs in `threads` processes; the files do not depend on it
    resources:
        # true peaks (benchmarks/bench_simulate.py, genome 67.5 Mb x scale): 0.9 GB at scale 4,
        # 1.7 GB at 12, 4.7 GB at 40 (~0.5 GB + 105 MB x scale), plus up to ~25 MB x scale in
        # each forked bigWig writer: this asks for that with a margin
        mem_mb=scaled_mem(int(1000 + 150 * config["simulation"]["scale"])),
        runtime=int(10 + 3 * config["simulation"]["scale"]),
    params:
        # the section without `variants` (rule simulate_variants' keys): the same params as before
        # that section existed, so no dataset is remade for it
        simulation=dataset_simulation,
    script:
        "../../scripts/simulate_dataset.py"


# The truth VCF: variants whose planted effect on each TF's expected reads (over windows.width bp
# around the variant) follows from the simulator's rules (bpnet.simulate.variants). The default
# config's variants.truth scores it (rules score_variants, variant_truth_check).
rule simulate_variants:
    input:
        fasta=f"{SIMULATED}/genome.fa",
        fai=f"{SIMULATED}/genome.fa.fai",
        instances=f"{SIMULATED}/truth/instances.tsv.gz",
    output:
        vcf=f"{SIMULATED}/truth/variants.vcf.gz",
        tbi=f"{SIMULATED}/truth/variants.vcf.gz.tbi",
        effects=f"{SIMULATED}/truth/variant_effects.tsv.gz",
    log:
        "logs/simulate_variants.log",
    benchmark:
        f"{SIMULATED}/benchmarks/simulate_variants.tsv"
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        # the loci and their instances made again (~2 MB x scale) and a few hundred loci' frames;
        # 374 variants at scale 0.3 take 4 s
        mem_mb=scaled_mem(int(1000 + 20 * config["simulation"]["scale"])),
        runtime=int(5 + config["simulation"]["scale"]),
    params:
        simulation=lookup(dpath="simulation", within=config),
        width=lookup(dpath="windows/width", within=config),
    script:
        "../../scripts/simulate_variants.py"
