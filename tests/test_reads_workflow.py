"""End to end from aligned reads: the tiny simulated dataset turned into BAM files (replicates, one
task's reads paired-end), counted by rule bam_counts and run to metrics; the dataset equals the
one built from the simulated bigWigs."""

import numpy as np
import pandas as pd
import pyBigWig
import pysam
import pytest
import yaml
from conftest import snakemake, tiny_config
from test_igv import check_session

READ_LENGTH = 36


def bigwig_to_bams(bigwigs: dict, sizes: dict, paths: list, paired: bool = False, rename: dict | None = None) -> int:
    """Write reads whose 5' ends are the counts of ``bigwigs`` ({"pos": bw, "neg": bw}), dealt in
    turn to the files of ``paths`` (replicates). ``paired``: every read is read 1 of a pair whose
    read 2 (its mate, on the other strand) must not be counted. ``rename``: the contigs' names in
    the BAM header (an aligner's other naming)."""
    rename = rename or {}
    header = {"HD": {"VN": "1.6", "SO": "unsorted"},
              "SQ": [{"SN": rename.get(c, c), "LN": n} for c, n in sizes.items()]}
    outs = [pysam.AlignmentFile(str(p), "wb", header=header) for p in paths]
    names, n = list(sizes), 0

    def write(chrom, start, length, reverse, flag):
        nonlocal n
        out = outs[n % len(outs)]
        a = pysam.AlignedSegment(out.header)
        a.query_name, a.flag = f"r{n}", flag | (0x10 if reverse else 0)
        a.reference_id, a.reference_start, a.mapping_quality = names.index(chrom), start, 40
        a.cigarstring = f"{length}M"
        a.query_sequence = "A" * length
        out.write(a)

    for strand, path in bigwigs.items():
        with pyBigWig.open(str(path)) as bw:
            for chrom, size in sizes.items():
                for start, end, value in bw.intervals(chrom) or []:
                    for pos in range(start, end):
                        for _ in range(int(round(value))):
                            if strand == "pos":
                                write(chrom, pos, min(READ_LENGTH, size - pos), False, 0x41 if paired else 0)
                            else:
                                lo = max(0, pos - READ_LENGTH + 1)
                                write(chrom, lo, pos - lo + 1, True, 0x41 if paired else 0)
                            if paired:  # the mate: never counted with paired_end read1
                                write(chrom, min(pos + 100, size - 1), 1, strand == "pos", 0x81)
                            n += 1
    for out in outs:
        out.close()
    return n


@pytest.fixture(scope="module")
def bam_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("bam")
    reference = tiny_config(work / "tiny.yaml")
    result = snakemake(work, reference, "results/tiny/dataset.npz")
    assert result.returncode == 0, result.stderr[-4000:]
    cfg = yaml.safe_load(reference.read_text())
    sizes = dict(
        (c, int(n)) for c, n in (line.split() for line in (work / cfg["data"]["chrom_sizes"]).read_text().splitlines())
    )
    tasks = cfg["data"]["tasks"]
    reads = work / "reads"
    reads.mkdir()
    oct4 = [reads / "Oct4.rep1.bam", reads / "Oct4.rep2.bam"]
    n_oct4 = bigwig_to_bams({s: work / tasks["Oct4"][s] for s in ("pos", "neg")}, sizes, oct4)
    sox2 = [reads / "Sox2.paired.bam"]  # its contigs named 1, 2, ... (chr1, chr2, ... in the genome)
    numbered = {c: c.removeprefix("chr") for c in sizes}
    bigwig_to_bams({s: work / tasks["Sox2"][s] for s in ("pos", "neg")}, sizes, sox2, paired=True, rename=numbered)
    (work / "aliases.tsv").write_text("".join(f"{n}\t{c}\n" for c, n in numbered.items()))
    cfg["data"]["chrom_aliases"] = str(work / "aliases.tsv")
    cfg["experiment"] = "frombam"
    tasks["Oct4"] = {"bam": [str(p) for p in oct4], "peaks": tasks["Oct4"]["peaks"]}
    tasks["Sox2"] = {"bam": str(sox2[0]), "peaks": tasks["Sox2"]["peaks"]}
    frombam = work / "frombam.yaml"
    frombam.write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = snakemake(work, frombam, "results/frombam/evaluation/metrics.tsv", "results/frombam/igv/session.xml")
    assert result.returncode == 0, result.stderr[-4000:]
    return work, n_oct4


@pytest.mark.slow
def test_a_run_from_bam_files_reaches_metrics_with_the_same_dataset(bam_run):
    work, n_oct4 = bam_run
    ref = np.load(work / "results/tiny/dataset.npz")
    got = np.load(work / "results/frombam/dataset.npz")
    np.testing.assert_array_equal(got["sequence"], ref["sequence"])
    np.testing.assert_array_equal(got["counts"], ref["counts"])  # Oct4, Sox2 from reads; Nanog, Klf4 bigWigs
    metrics = pd.read_csv(work / "results/frombam/evaluation/metrics.tsv", sep="\t")
    assert set(metrics["task"]) == {"Oct4", "Sox2", "Nanog", "Klf4"}
    summary = pd.read_csv(work / "results/reads/task/Oct4/read_counts.tsv", sep="\t")
    assert summary["file"].str.endswith((".rep1.bam", ".rep2.bam")).all()
    assert summary["counted"].sum() == n_oct4 and summary["counted"].min() > 0
    sox2 = pd.read_csv(work / "results/reads/task/Sox2/read_counts.tsv", sep="\t").iloc[0]
    assert sox2["read2_skipped"] == sox2["counted"] > 0  # the mates were read and left out
    log = (work / "logs/reads/task/Oct4/bam_counts.log").read_text()
    assert "counted" in log and "finished" in log
    # the IGV session shows the counted reads of a BAM task, the data's bigWigs of the others
    session = check_session(work / "results/frombam/igv/session.xml", ["Oct4", "Sox2", "Nanog", "Klf4"])
    paths = {r.get("path") for r in session.iter("Resource")}
    assert {"../../reads/task/Oct4/counts.neg.bw", "../../simulated/chip-nexus/Nanog/counts.pos.bw"} <= paths


def test_the_chipseq_preset_plans_read_counting_for_tasks_and_input(tmp_path):
    """config/chipseq.yaml as shipped, with its files in place: bam_counts for the task and the input."""
    from conftest import REPO, jobs_planned

    cfg = yaml.safe_load((REPO / "config" / "chipseq.yaml").read_text())
    sizes = "".join(f"chr{i}\t100000\n" for i in range(1, 10))
    for key in ("genome_fasta", "chrom_sizes"):
        (tmp_path / cfg["data"][key]).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / cfg["data"]["chrom_sizes"]).write_text(sizes)
    (tmp_path / cfg["data"]["genome_fasta"]).write_text("")
    files = [*cfg["data"]["tasks"]["MyTF"]["bam"], cfg["data"]["tasks"]["MyTF"]["peaks"], *cfg["data"]["control"]["bam"]]
    for path in files:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    result = snakemake(tmp_path, REPO / "config" / "chipseq.yaml", "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    planned = jobs_planned(result)
    assert {"bam_counts", "peak_windows", "build_dataset", "train", "predict", "evaluate"} <= planned
    assert "results/reads/control/counts.pos.bw" in result.stdout
    assert "results/reads/task/MyTF/counts.neg.bw" in result.stdout
