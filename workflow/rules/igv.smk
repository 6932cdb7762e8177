# A genome-browser session per experiment (config section `igv`): IGV desktop opens
# results/{exp}/igv/session.xml (File > Open Session) with the genome, the observed, predicted and
# contribution tracks, the test windows and the motif instances, at the test window with the most
# reads, the top windows listed as regions of interest. Cheap: no model runs.
# Logic: scripts/bpnet/steps/igv.py.


rule igv_motif_instances:
    # the CWM-scanned motif instances (rule motif_instances) as a BED: name task/pattern/motif
    input:
        instances="results/{exp}/interpretation/instances.tsv",
    output:
        bed="results/{exp}/igv/motif_instances.bed",
    log:
        "logs/{exp}/igv_motif_instances.log",
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        mem_mb=scaled_mem(input_mem(10, floor=1000)),
        runtime=10,
    params:
        tasks=tasks_of,
    script:
        "../../scripts/igv_motif_instances.py"


rule igv_session:
    input:
        unpack(igv_session_inputs),
    output:
        session=report(
            "results/{exp}/igv/session.xml",
            category="Genome browser",
            subcategory="{exp}",
            caption="../report/igv_session.rst",
        ),
        windows="results/{exp}/igv/test_windows.bed",
        top=report(
            "results/{exp}/igv/top_windows.bed",
            category="Genome browser",
            subcategory="{exp}",
            caption="../report/igv_top_windows.rst",
        ),
    log:
        "logs/{exp}/igv_session.log",
    wildcard_constraints:
        exp=_alternatives(EXPERIMENTS),
    conda:
        "../../envs/bpnet.yaml"
    threads: 1
    resources:
        # the test windows' counts, a chunk of windows at a time
        mem_mb=scaled_mem(2000),
        runtime=10,
    params:
        tasks=tasks_of,
        igv=exp_value("igv"),
        genome_fasta=exp_value("data", "genome_fasta"),
        contributions=igv_contribution_tracks,
        heads=igv_contribution_heads,
        minus_strand_negative=exp_value("data", "minus_strand_negative"),
    script:
        "../../scripts/igv_session.py"
