"""Downloads and archive extraction against a local HTTP server on 127.0.0.1 (no other traffic).

The server serves files from tmp_path under /<mode>/<name>, where the mode says how it behaves:
good (Range support), norange (ignores Range), truncated (Content-Length larger than the body,
then close), drop-once / reset-once / stall-once / fail-once (misbehave on the first request of
that URL, then serve properly), drop-norange (drop once, then ignore Range); anything else 404.
Every request is recorded (path, Range header, status, bytes sent) so resumes can be checked.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import re
import socket
import struct
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bpnet.data.download import (
    DownloadError,
    check_download_config,
    download,
    download_targets,
    extract_members,
    part_path,
)
from bpnet.errors import BPNetInputError

REPO = Path(__file__).resolve().parents[1]
LOG = logging.getLogger("test_download")
MODES = {"good", "norange", "truncated", "drop-once", "reset-once", "stall-once", "fail-once", "drop-norange"}
STALL_S = 1.0  # how long stall-once keeps a connection silent (the client timeout is shorter)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def _record(self, status: int, sent: int) -> None:
        with self.server.lock:
            self.server.requests.append(
                {"path": self.path, "range": self.headers.get("Range"), "status": status, "sent": sent})

    def do_GET(self):
        mode, _, name = self.path.lstrip("/").partition("/")
        file = self.server.root / name
        with self.server.lock:
            self.server.counts[self.path] = self.server.counts.get(self.path, 0) + 1
            first = self.server.counts[self.path] == 1
        # Each request is recorded before its response goes out, so the client never sees a
        # response whose record is still missing.
        if mode not in MODES or not name or not file.is_file():
            self._record(404, 0)
            return self.send_error(404)
        if mode == "fail-once" and first:
            self._record(503, 0)
            return self.send_error(503)
        data = file.read_bytes()
        honour_range = mode != "norange" and not (mode == "drop-norange" and not first)
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match.group(1)) if match and honour_range else 0
        if start >= len(data) > 0:
            self._record(416, 0)
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        body = data[start:]
        status = 206 if match and honour_range else 200
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "stall-once" and first:
            self._record(status, 0)
            self.wfile.flush()
            return time.sleep(STALL_S)
        if mode == "truncated" or (first and mode in ("drop-once", "reset-once", "drop-norange")):
            body = body[: len(body) // 2]
            self._record(status, len(body))
            self.wfile.write(body)
            self.wfile.flush()
            if mode == "reset-once":  # abort with a TCP reset instead of a clean close
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        self._record(status, len(body))
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    """A ThreadingHTTPServer on 127.0.0.1 (free port) serving tmp_path/www; stopped after the test."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.root, httpd.lock, httpd.requests, httpd.counts = root, threading.Lock(), [], {}
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = httpd.server_address
    httpd.url = lambda mode, name: f"http://{host}:{port}/{mode}/{name}"
    httpd.put = lambda name, data: (root / name).write_bytes(data)
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def payload() -> bytes:
    # Not a multiple of the chunk size used below, so chunk boundaries fall mid-file.
    return bytes(range(256)) * 1000 + b"tail"


def fetch(url, dest, **kw):
    kw.setdefault("retries", 3)
    kw.setdefault("timeout", 2.0)
    kw.setdefault("backoff", 0.0)
    kw.setdefault("chunk_bytes", 4096)
    kw.setdefault("log", LOG)
    return download(url, dest, **kw)


# ------------------------------------------------------------------------------------- download


def test_good_download_is_verified_and_renamed(server, payload, tmp_path, caplog):
    server.put("f.bin", payload)
    dest = tmp_path / "resources" / "sub" / "f.bin"
    with caplog.at_level(logging.INFO, logger="test_download"):
        assert fetch(server.url("good", "f.bin"), dest, sha256=sha(payload).upper()) == dest
    assert dest.read_bytes() == payload
    assert not part_path(dest).exists()
    assert [r["status"] for r in server.requests] == [200]
    assert "sha256 ok" in caplog.text and "MB/s" in caplog.text


def test_unpinned_sha256_is_logged_for_pinning(server, payload, tmp_path, caplog):
    server.put("f.bin", payload)
    with caplog.at_level(logging.INFO, logger="test_download"):
        fetch(server.url("good", "f.bin"), tmp_path / "f.bin", sha256=None, key="thing")
    assert sha(payload) in caplog.text and "download.files.thing.sha256" in caplog.text
    assert hashlib.md5(payload).hexdigest() in caplog.text


def test_dropped_connection_is_resumed_with_a_range_request(server, payload, tmp_path):
    server.put("f.bin", payload)
    dest = tmp_path / "f.bin"
    fetch(server.url("drop-once", "f.bin"), dest, sha256=sha(payload))
    assert dest.read_bytes() == payload
    first, second = server.requests
    assert first["range"] is None and 0 < first["sent"] < len(payload)
    assert second["range"] == f"bytes={first['sent']}-" and second["status"] == 206
    assert first["sent"] + second["sent"] == len(payload)  # nothing fetched twice


def test_connection_reset_is_retried(server, payload, tmp_path):
    server.put("f.bin", payload)
    dest = tmp_path / "f.bin"
    fetch(server.url("reset-once", "f.bin"), dest, sha256=sha(payload))
    assert dest.read_bytes() == payload and len(server.requests) == 2


def test_rerun_resumes_the_part_left_by_a_failed_job(server, payload, tmp_path):
    server.put("f.bin", payload)
    dest = tmp_path / "f.bin"
    part_path(dest).write_bytes(payload[:1000])
    fetch(server.url("good", "f.bin"), dest, sha256=sha(payload))
    assert dest.read_bytes() == payload and not part_path(dest).exists()
    (req,) = server.requests
    assert req["range"] == "bytes=1000-" and req["status"] == 206 and req["sent"] == len(payload) - 1000


def test_server_ignoring_range_restarts_from_zero(server, payload, tmp_path):
    server.put("f.bin", payload)
    dest = tmp_path / "f.bin"
    part_path(dest).write_bytes(b"x" * 500)  # would corrupt the file if appended to
    fetch(server.url("norange", "f.bin"), dest, sha256=sha(payload))
    assert dest.read_bytes() == payload
    (req,) = server.requests
    assert req["range"] == "bytes=500-" and req["status"] == 200 and req["sent"] == len(payload)


def test_drop_then_server_ignoring_range(server, payload, tmp_path):
    server.put("f.bin", payload)
    dest = tmp_path / "f.bin"
    fetch(server.url("drop-norange", "f.bin"), dest, sha256=sha(payload))
    assert dest.read_bytes() == payload
    assert [r["status"] for r in server.requests] == [200, 200]


def test_complete_part_is_finished_without_downloading_again(server, payload, tmp_path):
    server.put("f.bin", payload)
    dest = tmp_path / "f.bin"
    part_path(dest).write_bytes(payload)  # a previous run died between last byte and rename
    fetch(server.url("good", "f.bin"), dest, sha256=sha(payload))
    assert dest.read_bytes() == payload
    assert [(r["status"], r["sent"]) for r in server.requests] == [(416, 0)]


def test_truncated_bodies_exhaust_retries_and_keep_the_part(server, payload, tmp_path):
    server.put("f.bin", payload)
    dest = tmp_path / "f.bin"
    url = server.url("truncated", "f.bin")
    with pytest.raises(DownloadError) as err:
        fetch(url, dest, sha256=sha(payload), key="archive", retries=2)
    msg = str(err.value)
    assert url in msg and "download.files.archive" in msg and "3 attempts" in msg and "resumes" in msg
    assert not dest.exists()
    sent = [r["sent"] for r in server.requests]
    assert len(sent) == 3 and all(s > 0 for s in sent)
    assert [r["range"] for r in server.requests] == [None, f"bytes={sent[0]}-", f"bytes={sent[0] + sent[1]}-"]
    assert part_path(dest).read_bytes() == payload[: sum(sent)]


def test_wrong_checksum_deletes_everything_and_names_url_key_and_checksums(server, payload, tmp_path):
    server.put("f.bin", payload)
    dest = tmp_path / "f.bin"
    url = server.url("good", "f.bin")
    wrong = "0" * 64
    with pytest.raises(BPNetInputError) as err:
        fetch(url, dest, sha256=wrong, key="genome")
    msg = str(err.value)
    assert url in msg and wrong in msg and sha(payload) in msg and "download.files.genome.sha256" in msg
    assert not dest.exists() and not part_path(dest).exists()


def test_md5_as_zenodo_lists_it_is_checked_too(server, payload, tmp_path, caplog):
    server.put("f.bin", payload)
    md5 = hashlib.md5(payload).hexdigest()
    with caplog.at_level(logging.INFO, logger="test_download"):
        fetch(server.url("good", "f.bin"), tmp_path / "ok.bin", md5=md5.upper())
    assert "md5 ok" in caplog.text and (tmp_path / "ok.bin").read_bytes() == payload
    with pytest.raises(BPNetInputError) as err:  # the sha256 is right, the md5 is not
        fetch(server.url("good", "f.bin"), tmp_path / "bad.bin", sha256=sha(payload), md5="f" * 32, key="data")
    msg = str(err.value)
    assert "expected md5 " + "f" * 32 in msg and md5 in msg and "download.files.data.md5" in msg
    assert not (tmp_path / "bad.bin").exists() and not part_path(tmp_path / "bad.bin").exists()


def test_404_fails_at_once_naming_url_and_key(server, tmp_path):
    url = server.url("good", "missing.bin")
    with pytest.raises(DownloadError) as err:
        fetch(url, tmp_path / "m.bin", key="model", retries=5)
    assert url in str(err.value) and "404" in str(err.value) and "download.files.model.url" in str(err.value)
    assert len(server.requests) == 1
    assert not (tmp_path / "m.bin").exists() and not part_path(tmp_path / "m.bin").exists()


def test_http_503_is_retried(server, payload, tmp_path):
    server.put("f.bin", payload)
    dest = tmp_path / "f.bin"
    fetch(server.url("fail-once", "f.bin"), dest, sha256=sha(payload))
    assert dest.read_bytes() == payload
    assert [r["status"] for r in server.requests] == [503, 200]


def test_stalled_server_times_out_and_is_retried(server, payload, tmp_path):
    server.put("f.bin", payload)
    dest = tmp_path / "f.bin"
    t0 = time.monotonic()
    fetch(server.url("stall-once", "f.bin"), dest, sha256=sha(payload), timeout=0.3)
    assert dest.read_bytes() == payload and len(server.requests) == 2
    assert time.monotonic() - t0 < STALL_S + 1.0


def test_refused_connection_fails_after_retries(tmp_path):
    with socket.socket() as s:  # a free port on 127.0.0.1 with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/f.bin"
    with pytest.raises(DownloadError, match="failed after 2 attempts") as err:
        fetch(url, tmp_path / "f.bin", retries=1, key="k")
    assert url in str(err.value)
    assert not (tmp_path / "f.bin").exists()


def test_file_url_for_a_local_mirror(payload, tmp_path):
    src = tmp_path / "mirror.bin"
    src.write_bytes(payload)
    dest = tmp_path / "out" / "f.bin"
    fetch(src.as_uri(), dest, sha256=sha(payload))
    assert dest.read_bytes() == payload


# ----------------------------------------------------------------------------------- extraction


def make_tar_gz(path: Path, entries: dict[str, bytes], folders=()) -> Path:
    """A tar.gz with the given directory entries and files (in that order)."""
    with tarfile.open(path, "w:gz") as tar:
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


GENOME = b">chr1\nACGTACGTNN\n>chr2\nGGGCCC\n"


def archive_entries(prefix: str = "data/") -> dict[str, bytes]:
    return {
        f"{prefix}README": b"readme",
        f"{prefix}chip-nexus/Oct4/counts.pos.bw": b"oct4 pos",
        f"{prefix}chip-nexus/Oct4/counts.neg.bw": b"oct4 neg",
        f"{prefix}chip-nexus/Oct4/idr-optimal-set.narrowPeak.gz": gzip.compress(b"chr1\t1\t9\n"),
        f"{prefix}chip-seq/Oct4/counts.pos.bw": b"chip-seq, not wanted",
        f"{prefix}mm10.fa.gz": gzip.compress(GENOME),
        f"{prefix}mm10.chrom.sizes": b"chr1\t10\nchr2\t6\n",
    }


def test_extracts_only_the_requested_members_under_one_leading_folder(tmp_path):
    archive = make_tar_gz(tmp_path / "a.tar.gz", archive_entries(), folders=["data", "data/chip-nexus"])
    out = tmp_path / "resources"
    members = {
        "chip-nexus/Oct4/counts.pos.bw": out / "o/pos.bw",
        "chip-nexus/Oct4/idr-optimal-set.narrowPeak.gz": out / "o/peaks.narrowPeak.gz",
        "mm10.fa.gz": out / "g/mm10.fa",  # gunzipped on the way: the destination has no .gz
        "./mm10.chrom.sizes": out / "g/mm10.chrom.sizes",
    }
    found = extract_members(archive, members, key="data", log=LOG)
    assert found == {
        "chip-nexus/Oct4/counts.pos.bw": "data/chip-nexus/Oct4/counts.pos.bw",
        "chip-nexus/Oct4/idr-optimal-set.narrowPeak.gz": "data/chip-nexus/Oct4/idr-optimal-set.narrowPeak.gz",
        "mm10.fa.gz": "data/mm10.fa.gz",
        "mm10.chrom.sizes": "data/mm10.chrom.sizes",
    }
    assert (out / "o/pos.bw").read_bytes() == b"oct4 pos"
    assert gzip.decompress((out / "o/peaks.narrowPeak.gz").read_bytes()) == b"chr1\t1\t9\n"  # kept as is
    assert (out / "g/mm10.fa").read_bytes() == GENOME
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "g/mm10.chrom.sizes", "g/mm10.fa", "o/peaks.narrowPeak.gz", "o/pos.bw"]


def test_exact_member_paths_and_explicit_prefix(tmp_path):
    archive = make_tar_gz(tmp_path / "a.tar.gz", archive_entries(prefix=""))
    extract_members(archive, {"chip-nexus/Oct4/counts.neg.bw": tmp_path / "neg.bw"}, log=LOG)
    assert (tmp_path / "neg.bw").read_bytes() == b"oct4 neg"
    archive = make_tar_gz(tmp_path / "b.tar.gz", archive_entries())
    extract_members(archive, {"data/README": tmp_path / "README"}, log=LOG)
    assert (tmp_path / "README").read_bytes() == b"readme"


def test_stripped_matches_must_share_the_top_folder(tmp_path):
    archive = make_tar_gz(tmp_path / "a.tar.gz", {"a/x.txt": b"x", "b/y.txt": b"y"})
    with pytest.raises(DownloadError, match="y.txt"):
        extract_members(archive, {"x.txt": tmp_path / "x.txt", "y.txt": tmp_path / "y.txt"}, log=LOG)
    assert not (tmp_path / "x.txt").exists()


def test_missing_member_lists_existing_entries_and_leaves_nothing(tmp_path):
    archive = make_tar_gz(tmp_path / "a.tar.gz", archive_entries())
    members = {"chip-nexus/Oct4/counts.pos.bw": tmp_path / "pos.bw",
               "chip-nexus/Klf4/counts.pos.bw": tmp_path / "klf4.bw"}
    with pytest.raises(DownloadError) as err:
        extract_members(archive, members, key="oskn_data", log=LOG)
    msg = str(err.value)
    assert "chip-nexus/Klf4/counts.pos.bw" in msg and "download.files.oskn_data.members" in msg
    assert "data/chip-nexus/Oct4/counts.pos.bw" in msg and "data/mm10.chrom.sizes" in msg
    assert not (tmp_path / "pos.bw").exists()
    assert not list(tmp_path.glob("*.tmp"))


def test_stops_reading_once_every_member_is_written(tmp_path):
    """The requested members come first; the archive is cut inside a later member, so reading to
    the end would fail: extraction must stop after the last requested member."""
    big = bytes(range(256)) * 4000
    entries = {"data/want.txt": b"wanted", "data/big1.bin": big, "data/big2.bin": big[::-1]}
    raw = make_tar_gz(tmp_path / "full.tar.gz", entries).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    extract_members(cut, {"want.txt": tmp_path / "want.txt"}, log=LOG)
    assert (tmp_path / "want.txt").read_bytes() == b"wanted"
    with pytest.raises(DownloadError, match="not a readable tar.gz"):
        extract_members(cut, {"big2.bin": tmp_path / "big2.bin"}, key="k", log=LOG)
    assert not (tmp_path / "big2.bin").exists() and not (tmp_path / "big2.bin.tmp").exists()


def test_not_a_tar_gz_is_a_clear_error(tmp_path):
    bad = tmp_path / "data.tar.gz"
    bad.write_bytes(b"<html>not found</html>")
    with pytest.raises(DownloadError, match=r"data.tar.gz: not a readable tar.gz .*download.files.oskn"):
        extract_members(bad, {"x": tmp_path / "x"}, key="oskn", log=LOG)


def test_directory_member_is_refused(tmp_path):
    archive = make_tar_gz(tmp_path / "a.tar.gz", {"data/f": b"f"}, folders=["data", "data/sub"])
    with pytest.raises(DownloadError, match="not a regular file"):
        extract_members(archive, {"sub": tmp_path / "sub"}, log=LOG)


# ---------------------------------------------------------------------------------------- config


def test_config_destinations_must_be_unique():
    section = {"files": {
        "a": {"url": "https://x/a", "sha256": None, "dest": "resources/a.tar.gz",
              "members": {"m": "resources/m", "n": "resources/x/../m"}},
    }}
    with pytest.raises(BPNetInputError, match=r"download.files.a.members\['n'\].*destination of download.files.a.members\['m'\]"):
        check_download_config(section)
    section["files"]["a"]["members"] = {"m": "resources/m"}
    section["files"]["b"] = {"url": "https://x/b", "sha256": None, "dest": "resources/b"}
    assert download_targets(section) == ["resources/m", "resources/b"]
    assert download_targets({}) == []


# ---------------------------------------------------------------------------- through Snakemake


def run_snakemake(workdir: Path, snakefile: Path, config: Path, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        # Targets before --configfile, which takes several values.
        [sys.executable, "-m", "snakemake", *targets, "--cores", "1", "-s", str(snakefile),
         "--directory", str(workdir), "--configfile", str(config)],
        capture_output=True, text=True, timeout=180,
    )


def test_download_and_extraction_rules_in_snakemake(server, tmp_path):
    archive = make_tar_gz(server.root / "data.tar.gz", archive_entries())
    model = b"HDF5 model weights" * 100
    server.put("bpnet.model.h5", model)
    work = tmp_path / "work"
    work.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(f"""
experiment: e
download:
  retries: 2
  timeout: 5
  backoff: 0
  files:
    data:
      url: {server.url("good", "data.tar.gz")}
      sha256: {sha(archive.read_bytes())}
      dest: resources/e/data.tar.gz
      members:
        chip-nexus/Oct4/counts.pos.bw: resources/e/Oct4/counts.pos.bw
        chip-nexus/Oct4/counts.neg.bw: resources/e/Oct4/counts.neg.bw
        chip-nexus/Oct4/idr-optimal-set.narrowPeak.gz: resources/e/Oct4/peaks.narrowPeak.gz
        mm10.fa.gz: resources/g/mm10.fa
        mm10.chrom.sizes: resources/g/mm10.chrom.sizes
    model:
      url: {server.url("drop-once", "bpnet.model.h5")}
      sha256: {sha(model)}
      dest: resources/e/bpnet.model.h5
    bad:
      url: {server.url("good", "bpnet.model.h5")}
      sha256: {"f" * 64}
      dest: resources/e/bad.h5
data:
  genome_fasta: resources/g/mm10.fa
  chrom_sizes: resources/g/mm10.chrom.sizes
  tasks:
    Oct4: {{pos: resources/e/Oct4/counts.pos.bw, neg: resources/e/Oct4/counts.neg.bw, peaks: resources/e/Oct4/peaks.narrowPeak.gz}}
windows:  # chromosomes of the downloaded genome (checked once its chrom sizes exist)
  valid_chroms: [chr2]
  test_chroms: [chr1]
""")
    # The rule files only (the full Snakefile also needs every other rule file).
    snakefile = tmp_path / "Snakefile"
    rules = REPO / "workflow" / "rules"
    snakefile.write_text("".join(f'include: "{rules / n}"\n' for n in ("common.smk", "download.smk")))

    wanted = ["resources/e/Oct4/counts.pos.bw", "resources/e/Oct4/counts.neg.bw",
              "resources/e/Oct4/peaks.narrowPeak.gz", "resources/g/mm10.fa", "resources/g/mm10.chrom.sizes",
              "resources/e/bpnet.model.h5"]
    # --keep-going: the bad checksum fails its own job only.
    proc = run_snakemake(work, snakefile, config, *wanted, "resources/e/bad.h5", "--keep-going")
    assert proc.returncode != 0
    assert (work / "resources/e/Oct4/counts.pos.bw").read_bytes() == b"oct4 pos"
    assert (work / "resources/g/mm10.fa").read_bytes() == GENOME
    assert (work / "resources/e/bpnet.model.h5").read_bytes() == model
    assert not list(work.rglob("*.part")) and not list(work.rglob("*.tmp"))
    assert "extracted 5 member(s)" in (work / "logs/download/extract_data.log").read_text()
    model_log = (work / "logs/download/e/bpnet.model.h5.log").read_text()
    assert "attempt 1 failed" in model_log and "resuming" in model_log
    assert [r["range"] is not None for r in server.requests if r["path"].startswith("/drop-once/")] == [False, True]

    # The bad checksum: a clear message, neither the file nor its .part is left.
    log = (work / "logs/download/e/bad.h5.log").read_text()
    assert "checksum mismatch" in log and "download.files.bad.sha256" in log and "Traceback" not in log
    assert not (work / "resources/e/bad.h5").exists()

    # The rest is up to date: download_all plans only bad.h5, and the dry run contacts nobody.
    n_requests = len(server.requests)
    proc = run_snakemake(work, snakefile, config, "-n", "download_all")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "extract_data" not in proc.stdout and "resources/e/bad.h5" in proc.stdout
    assert "output: resources/e/bpnet.model.h5" not in proc.stdout
    assert len(server.requests) == n_requests


def test_oskn_config_is_valid_and_its_data_comes_from_the_downloads():
    """config/oskn.yaml: schema-valid, and every data file is made by the download section."""
    import yaml
    from snakemake.utils import validate

    cfg = yaml.safe_load((REPO / "config" / "oskn.yaml").read_text())
    validate(cfg, schema=str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    data = cfg["data"]
    needed = [data["genome_fasta"], data["chrom_sizes"], data["control"]["pos"], data["control"]["neg"]]
    needed += [t[k] for t in data["tasks"].values() for k in ("pos", "neg", "peaks")]
    made = set(download_targets(cfg["download"]))
    assert list(data["tasks"]) == ["Oct4", "Sox2", "Nanog", "Klf4"]
    assert [p for p in needed if p not in made] == []
    assert all(p.startswith("resources/") for p in made)
