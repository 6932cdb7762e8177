"""bpnet.config_check: duplicate YAML keys are refused, schema errors become one line."""

import jsonschema
import pytest
from snakemake.exceptions import WorkflowError

from bpnet.config_check import check_config_files, check_duplicate_keys, one_line, schema_error_line
from bpnet.errors import BPNetInputError


def _write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_top_level_duplicate_key(tmp_path):
    path = _write(tmp_path, "seed: 1\ndevice: cpu\nseed: 2\n")
    with pytest.raises(BPNetInputError) as info:
        check_duplicate_keys(str(path))
    msg = str(info.value)
    assert str(path) in msg and "line 3" in msg and "'seed' appears twice" in msg and "line 1" in msg


def test_nested_duplicate_key(tmp_path):
    path = _write(tmp_path, "training:\n  lr: 0.001\n  epochs: 3\n  lr: 0.01\nmodel:\n  lr: 1\n")
    with pytest.raises(BPNetInputError) as info:
        check_config_files([path])
    msg = str(info.value)
    assert "line 4" in msg and "'lr' appears twice" in msg


def test_clean_file_passes(tmp_path):
    path = _write(tmp_path, "seed: 1\ntraining:\n  lr: 0.001\nmodel:\n  lr: 1\nlist:\n  - {a: 1}\n  - {a: 2}\n")
    check_duplicate_keys(str(path))


def test_repository_configs_pass():
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    check_config_files(sorted((repo / "config").glob("*.yaml")))


SCHEMA = {
    "type": "object",
    "properties": {
        "training": {"type": "object", "properties": {
            "bf16": {"anyOf": [{"type": "boolean"}, {"enum": ["auto"]}]},
            "shuffle": {"type": "boolean"},
        }},
        "tasks": {"type": "array", "items": {"type": "string"}},
    },
}


def _error(instance):
    return jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(SCHEMA).iter_errors(instance))


def test_one_line_names_dotted_key():
    line = one_line(_error({"training": {"bf16": "yes"}}))
    assert line == "error: config key training.bf16: 'yes' is not valid under any of the given schemas"
    line = one_line(_error({"training": {"shuffle": "true"}}))
    assert line == "error: config key training.shuffle: 'true' is not of type 'boolean'"
    assert one_line(_error({"tasks": ["a", 3]})).startswith("error: config key tasks[1]: 3 is not of type")
    assert "\n" not in one_line(_error({"training": {"bf16": "yes"}}))


def test_schema_error_line_from_snakemake_validate(tmp_path):
    """The line is recovered from the WorkflowError that snakemake.utils.validate raises."""
    import yaml
    from snakemake.utils import validate

    schema = tmp_path / "schema.yaml"
    schema.write_text(yaml.safe_dump({"$schema": "https://json-schema.org/draft/2020-12/schema", **SCHEMA}))
    with pytest.raises(WorkflowError) as info:
        validate({"training": {"shuffle": "true"}}, schema=str(schema))
    assert schema_error_line(info.value) == "error: config key training.shuffle: 'true' is not of type 'boolean'"
    assert schema_error_line(WorkflowError("something else")) is None


# ------------------------------------------------------------------ missing input files

from bpnet.config_check import missing_inputs, missing_inputs_lines  # noqa: E402


def _data_config(**data):
    base = {
        "genome_fasta": "/data/genome.fa",
        "chrom_sizes": "/data/genome.chrom.sizes",
        "tasks": {"Oct4": {"pos": "/data/Oct4.pos.bw", "neg": "/data/Oct4.neg.bw", "peaks": "/data/Oct4.bed"}},
        "control": None,
    }
    base.update(data)
    return {"data": base, "windows": {"blacklist": None}, "model": {"pretrained": None}}


_PRESENT = {"/data/genome.fa", "/data/genome.chrom.sizes", "/data/Oct4.neg.bw", "/data/Oct4.bed"}


def test_missing_task_bigwig_is_reported_with_dotted_key():
    cfg = _data_config()
    assert missing_inputs(cfg, set(), exists=_PRESENT.__contains__) == [("data.tasks.Oct4.pos", "/data/Oct4.pos.bw")]
    lines = missing_inputs_lines([cfg, cfg], set(), exists=_PRESENT.__contains__)
    assert lines == ["error: config key data.tasks.Oct4.pos: /data/Oct4.pos.bw does not exist"]


def test_produced_paths_are_not_reported():
    cfg = _data_config(
        genome_fasta="results/simulated/genome.fa",
        chrom_sizes="resources/genome.chrom.sizes",
        tasks={"Oct4": {"pos": "results/simulated/Oct4.pos.bw", "neg": "./results/simulated/Oct4.neg.bw",
                        "peaks": "resources/Oct4.bed"}},
    )
    cfg["model"]["pretrained"] = "resources/bpnet.model.h5"
    produced = {"results/", "resources/genome.chrom.sizes", "resources/Oct4.bed", "resources/bpnet.model.h5"}
    assert missing_inputs(cfg, produced, exists=lambda p: False) == []
    # a file beside a download target, or a folder merely named like results, is still reported
    cfg["windows"]["blacklist"] = "resources/blacklist.bed"
    cfg["data"]["genome_fasta"] = "results_old/genome.fa"
    assert missing_inputs(cfg, produced, exists=lambda p: False) == [
        ("data.genome_fasta", "results_old/genome.fa"), ("windows.blacklist", "resources/blacklist.bed")]


def test_existing_files_are_not_reported(tmp_path):
    files = {}
    for name in ("genome.fa", "sizes", "pos.bw", "neg.bw", "peaks.bed", "cpos.bw", "cneg.bw"):
        (tmp_path / name).write_text("x")
        files[name] = str(tmp_path / name)
    cfg = _data_config(
        genome_fasta=files["genome.fa"], chrom_sizes=files["sizes"],
        tasks={"Oct4": {"pos": files["pos.bw"], "neg": files["neg.bw"], "peaks": files["peaks.bed"]}},
        control={"pos": files["cpos.bw"], "neg": files["cneg.bw"]},
    )
    assert missing_inputs(cfg, set()) == []
    (tmp_path / "cneg.bw").unlink()
    assert missing_inputs(cfg, set()) == [("data.control.neg", files["cneg.bw"])]


def test_control_null_is_no_error():
    cfg = _data_config(control=None)
    cfg["data"]["truth"] = None
    assert missing_inputs(cfg, set(), exists=lambda p: True) == []
    assert [k for k, _ in missing_inputs(cfg, set(), exists=lambda p: False)] == [
        "data.genome_fasta", "data.chrom_sizes", "data.tasks.Oct4.pos", "data.tasks.Oct4.neg", "data.tasks.Oct4.peaks"]


def test_the_config_walkthroughs_example_is_a_valid_config():
    """config/README.md's example config (its yaml block) passes the schema as written."""
    import re
    import textwrap
    from pathlib import Path

    import yaml
    from snakemake.utils import validate

    repo = Path(__file__).resolve().parents[1]
    (block,) = re.findall(r"```yaml\n(.*?)```", (repo / "config" / "README.md").read_text(), flags=re.S)
    cfg = yaml.safe_load(textwrap.dedent(block))
    validate(cfg, schema=str(repo / "workflow" / "schemas" / "config.schema.yaml"))
    assert cfg["training"]["reverse_complement"] is True and list(cfg["data"]["tasks"]) == ["CTCF"]


# ------------------------------------------------------------------ tasks from aligned reads

from bpnet.config_check import SCHEMA_PATH, read_sources  # noqa: E402


def _project_error(cfg):
    import yaml

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return jsonschema.exceptions.best_match(validator.iter_errors(cfg))


def _with_data(tasks, control=None, use_control=False):
    return {"data": {"genome_fasta": "g.fa", "chrom_sizes": "g.sizes", "tasks": tasks, "control": control},
            "model": {"use_control": use_control}}


@pytest.mark.parametrize("entry, found", [
    ({"pos": "a.bw", "neg": "b.bw", "bam": "r.bam", "peaks": "p.bed"}, "bam, neg, peaks, pos"),
    ({"pos": "a.bw", "peaks": "p.bed"}, "peaks, pos"),
    ({"neg": "b.bw", "bam": ["r.bam"], "peaks": "p.bed"}, "bam, neg, peaks"),
])
def test_a_task_names_bigwigs_or_reads_not_both(entry, found):
    line = one_line(_project_error(_with_data({"Oct4": entry})))
    assert line == f"error: config key data.tasks.Oct4: give pos + neg or bw or bam (exactly one of these), found {found}"


def test_the_control_names_bigwigs_or_reads_not_both():
    line = one_line(_project_error(_with_data({"Oct4": {"bam": "r.bam", "peaks": "p"}},
                                              control={"pos": "a.bw", "bam": "c.bam"})))
    assert line == "error: config key data.control: give pos + neg or bw or bam (exactly one of these), found bam, pos"
    assert _project_error(_with_data({"Oct4": {"bam": ["r1.bam", "r2.cram"], "peaks": "p"}},
                                     control={"bam": "c.bam"})) is None


def test_reads_are_counted_once_per_task_and_input_paths_name_them():
    a = _with_data({"Oct4": {"bam": ["r1.bam", "r2.bam"], "peaks": "p"}, "Sox2": {"pos": "a", "neg": "b", "peaks": "q"}},
                   control={"bam": "c.bam"}, use_control=True)
    a["data"]["reads"] = {"min_mapq": 10}
    sources = read_sources({"a": a, "b": a})
    assert sorted(sources) == ["control", "task/Oct4"]
    assert sources["task/Oct4"]["bam"] == ["r1.bam", "r2.bam"] and sources["control"]["bam"] == ["c.bam"]
    lines = missing_inputs_lines([a], set(), exists=lambda p: False)
    assert "error: config key data.tasks.Oct4.bam: r2.bam does not exist" in lines
    assert "error: config key data.control.bam: c.bam does not exist" in lines
    b = _with_data({"Oct4": {"bam": "other.bam", "peaks": "p"}})
    with pytest.raises(BPNetInputError, match=r"data.tasks.Oct4.bam: experiments a and b count the reads"):
        read_sources({"a": a, "b": b})


from bpnet.config_check import task_strands  # noqa: E402


def test_unstranded_tasks_take_an_unstranded_control_and_no_truth():
    tasks = {"A": {"bw": "a.bw", "peaks": "p"}, "B": {"bw": "b.bw", "peaks": "q"}}
    assert task_strands(_with_data(tasks)) == 1
    assert task_strands(_with_data(tasks, control={"bw": "i.bw"}, use_control=True)) == 1
    assert task_strands(_with_data({"A": {"bam": "a.bam", "peaks": "p"}})) == 2
    with pytest.raises(BPNetInputError, match=r"data.control: the control must be one unstranded bw"):
        task_strands(_with_data(tasks, control={"pos": "i+.bw", "neg": "i-.bw"}, use_control=True))
    with pytest.raises(BPNetInputError, match=r"data.control: the control must be stranded"):
        task_strands(_with_data({"A": {"pos": "a", "neg": "b", "peaks": "p"}}, control={"bw": "i"}, use_control=True))
    cfg = _with_data(tasks)
    cfg["data"]["truth"] = {"A": {"pos": "t+", "neg": "t-"}}
    with pytest.raises(BPNetInputError, match=r"data.truth: truth tracks are stranded"):
        task_strands(cfg)
    cfg = _with_data(tasks)
    cfg["data"]["minus_strand_negative"] = True
    with pytest.raises(BPNetInputError, match=r"data.minus_strand_negative: the tasks are unstranded"):
        task_strands(cfg)


def test_a_missing_vcf_is_named_by_its_config_key():
    cfg = _data_config()
    cfg["variants"] = {"mine": {"vcf": "/data/mine.vcf.gz", "effects": None}}
    lines = missing_inputs_lines([cfg], set(), exists=_PRESENT.__contains__)
    assert "error: config key variants.mine.vcf: /data/mine.vcf.gz does not exist" in lines
    # the simulated truth's VCF is made by a rule (under results/): not reported
    cfg["variants"] = {"truth": {"vcf": "results/simulated/truth/variants.vcf.gz"}}
    assert not [ln for ln in missing_inputs_lines([cfg], {"results/"}, exists=_PRESENT.__contains__) if "variants" in ln]
