"""End to end: the IGV session and the Snakemake report of a tiny run with interpretation and the
simulated truth variants (about 2.5 minutes on 2 cores); and a dry run showing that `igv.enabled`
puts the session in rule all or leaves it out.
"""

import zipfile

import pytest
from conftest import TINY, jobs_planned, snakemake, tiny_config
from test_igv import check_session, parse_locus

TASKS = ["Oct4", "Sox2", "Nanog", "Klf4"]
# interpretation cut down to what a tiny run needs to produce every output
INTERPRETATION = {"enabled": True, "max_windows": 120, "n_references": 3, "modisco": {"n_leiden_runs": 2},
                  "syntax": {"n_backgrounds": 4, "max_distance": 40}}
TRUTH = "results/simulated/truth"
VARIANTS = {"truth": {"vcf": f"{TRUTH}/variants.vcf.gz", "effects": f"{TRUTH}/variant_effects.tsv.gz"}}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("report")
    config = tiny_config(work / "tiny.yaml", interpretation=INTERPRETATION, variants=VARIANTS,
                         variant_scoring={"null_variants": 40, "plot_variants": 2})
    result = snakemake(work, config)
    assert result.returncode == 0, result.stderr[-4000:]
    return work, config


@pytest.mark.slow
def test_igv_session_of_a_run(full_run):
    work, _ = full_run
    igv = work / "results" / "tiny" / "igv"
    root = check_session(igv / "session.xml", TASKS, contributions=2, motifs=True)
    paths = {r.get("path") for r in root.iter("Resource")}
    assert root.get("genome") == "../../simulated/genome.fa"
    assert {f"../tracks/{t}.{s}.bw" for t in TASKS for s in ("pos", "neg")} <= paths
    assert "../../simulated/chip-nexus/Oct4/counts.neg.bw" in paths
    assert "../interpretation/tracks/Klf4.counts.contrib.bw" in paths
    assert len(list(root.iter("Region"))) == 20
    chrom, start, end = parse_locus(root.get("locus"))
    assert chrom in {"chr1", "chr8", "chr9"} and end - start == TINY["windows"]["width"]  # a test window
    assert (igv / "motif_instances.bed").read_text().startswith("track")
    log = (work / "logs" / "tiny" / "igv_session.log").read_text()
    assert "most observed reads" in log and "finished" in log


@pytest.mark.slow
def test_report_lists_every_category_and_headline_output(full_run):
    work, config = full_run
    report = work / "report.zip"
    result = snakemake(work, config, "--report", str(report))
    assert result.returncode == 0, result.stderr[-4000:]
    with zipfile.ZipFile(report) as zf:
        names = zf.namelist()
        html = zf.read(next(n for n in names if n.endswith("report.html"))).decode(errors="replace")
    files = {n.rsplit("/", 1)[-1] for n in names if "/data/raw/" in n}
    expected = {"windows_summary.tsv", "training_curve.png", "metrics.tsv", "metrics.png", "top_peaks.png",
                "motifs.tsv", "syntax_summary.tsv", "Nanog__Nanog.png", "truth_check.tsv", "top_variants.png",
                "session.xml", "top_windows.bed"}
    assert expected <= files, expected - files
    # both truth checks: interpretation and variants
    assert sum(n.endswith("/truth_check.tsv") for n in names if "/data/raw/" in n) == 2
    # the report's index: {"category": {"subcategory": [files]}}
    for category in ("Data", "Training", "Evaluation", "Interpretation", "Variant effects", "Genome browser"):
        assert f'"{category}": {{' in html, category
    assert '"Genome browser": {"tiny": ["results/tiny/igv/session.xml", "results/tiny/igv/top_windows.bed"]' in html
    for caption in ("IGV desktop session", "In-silico marginalisation", "Predicted against planted variant",
                    "What windowing did", "What good looks like"):
        assert caption in html, caption


def test_igv_session_is_in_rule_all_unless_disabled(tmp_path):
    on = snakemake(tmp_path, tiny_config(tmp_path / "on.yaml"), "-n")
    assert on.returncode == 0, on.stderr[-3000:]
    assert "igv_session" in jobs_planned(on) and "igv_motif_instances" not in jobs_planned(on)
    off = snakemake(tmp_path, tiny_config(tmp_path / "off.yaml", igv={"enabled": False}), "-n")
    assert off.returncode == 0, off.stderr[-3000:]
    assert not jobs_planned(off) & {"igv_session", "igv_motif_instances"}
    assert not (tmp_path / "results").exists()

