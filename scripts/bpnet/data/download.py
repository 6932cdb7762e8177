"""Download the paper's data into ``resources/``: resumable HTTP downloads and archive extraction.

Two steps, one rule each (``workflow/rules/download.smk``):

- :func:`download` fetches one URL to ``dest``. Bytes stream into ``<dest>.part``; a rerun finds
  the ``.part`` and resumes it with an HTTP ``Range`` request (a server that ignores ``Range`` and
  answers 200 makes it start over). Connection errors, timeouts, truncated bodies (fewer bytes
  than ``Content-Length``) and HTTP 408/429/5xx are retried with exponential backoff, each retry
  resuming where the last one stopped. Other HTTP errors (404, 403, ...) fail at once. When the
  body is complete its checksums are checked (the sha256 and/or md5 the config pins) and ``.part`` is renamed to
  ``dest`` atomically, so ``dest`` exists only when complete and verified. A bad checksum deletes
  the ``.part`` and raises, naming the url, both checksums and the config key.

  The ``.part`` is the one file a job leaves beside its output when it fails: Snakemake deletes
  only declared outputs, so the ``.part`` survives and the next run resumes it. It is gone after
  a success.

- :func:`extract_members` streams once through a (possibly huge) ``tar.gz`` and writes only the
  requested members, each to a temporary name first and then renamed. It stops reading as soon
  as every requested member is written. A member path matches an archive entry with the same
  path, or with one extra leading folder (``chip-nexus/Oct4/counts.pos.bw`` matches
  ``data/chip-nexus/Oct4/counts.pos.bw``): archives often wrap their content in one top folder.
  A member named ``*.gz`` whose destination does not end in ``.gz`` is decompressed on the way.

Network failures are not user mistakes, but they get the same one-line error
(:class:`DownloadError`, a :class:`~bpnet.errors.BPNetInputError`) instead of a traceback.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any, Mapping

from bpnet.errors import BPNetInputError
from bpnet.progress import progress_bar

CHUNK_BYTES = 1 << 20
# HTTP statuses worth retrying: the server is busy or failing, the URL itself is fine.
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = "bpnet-pipeline (https://github.com/kundajelab/bpnet reproduction)"

_log = logging.getLogger("bpnet")


class DownloadError(BPNetInputError):
    """A download or extraction that failed: the message names the url or file and config key."""


class _Retryable(Exception):
    """A transient failure of one attempt (connection lost, timeout, truncated body, HTTP 5xx)."""


def part_path(dest: str | Path) -> Path:
    """Where the bytes of ``dest`` accumulate until complete and verified: ``<dest>.part``."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def sha256sum(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks (constant memory for any size)."""
    return checksums(path, ("sha256",))["sha256"]


def checksums(path: str | Path, algorithms=("sha256", "md5")) -> dict[str, str]:
    """Hex digests of a file in one pass over it (a 31 GB archive is read once, not per digest)."""
    digests = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            for d in digests.values():
                d.update(chunk)
    return {name: d.hexdigest() for name, d in digests.items()}


# ----------------------------------------------------------------------------------- download


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """``bytes START-END/TOTAL`` (or ``bytes */TOTAL``) -> (START, TOTAL); None where absent."""
    m = re.match(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", header or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def _fetch_once(url: str, part: Path, *, key: str, timeout: float, chunk_bytes: int,
                log: logging.Logger, progress_interval: float | None) -> None:
    """One attempt: resume or (re)start ``part`` from ``url``; return when the body is complete.

    Raises :class:`_Retryable` for transient failures (the ``.part`` keeps what arrived) and
    :class:`DownloadError` for permanent ones (HTTP 404 and the like).
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:
            # Nothing left to send from this offset: the .part may already hold the whole file
            # (a previous run died between the last byte and the rename).
            _, total = _content_range(err.headers.get("Content-Range"))
            if total == offset:
                log.info("%s: %s already complete (%d bytes)", key, part, offset)
                return
            part.unlink(missing_ok=True)
            raise _Retryable(f"server refused to resume at byte {offset} (HTTP 416); starting over") from err
        if err.code in RETRYABLE_STATUS:
            raise _Retryable(f"HTTP {err.code} {err.reason}") from err
        raise DownloadError(
            f"download.files.{key}: {url} answered HTTP {err.code} {err.reason}; "
            f"check the url in download.files.{key}.url"
        ) from err
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise _Retryable(f"cannot connect: {getattr(err, 'reason', err)}") from err

    with resp:
        status = resp.status or 200  # file:// answers without a status
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start != offset:
                part.unlink(missing_ok=True)
                raise _Retryable(f"server resumed at byte {start} instead of {offset}; starting over")
            expected = total if total is not None else (offset + length if length is not None else None)
            mode = "ab"
        else:
            if offset:
                log.info("%s: the server ignored the Range request (HTTP %d): starting over", key, status)
            offset, expected, mode = 0, length, "wb"
        if offset:
            log.info("%s: resuming %s at %.1f MB", key, part, offset / 1e6)
        received = offset
        with open(part, mode) as out, progress_bar(log, expected, key, unit="B", interval=progress_interval,
                                                   initial=offset) as progress:
            while True:
                try:
                    chunk = resp.read(chunk_bytes)
                except (http.client.HTTPException, OSError) as err:  # reset, timeout, bad chunking
                    raise _Retryable(f"connection lost after {received} bytes: {err!r}") from err
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                progress.update(len(chunk))
    if expected is not None and received < expected:
        # http.client returns b"" when the server closes early: compare with Content-Length.
        raise _Retryable(f"connection closed after {received} of {expected} bytes")
    if expected is not None and received > expected:
        part.unlink(missing_ok=True)
        raise _Retryable(f"received {received} bytes, more than the announced {expected}; starting over")


def download(url: str, dest: str | Path, *, sha256: str | None = None, md5: str | None = None,
             key: str = "download",
             retries: int = 5, timeout: float = 60.0, backoff: float = 2.0,
             log: logging.Logger | None = None, chunk_bytes: int = CHUNK_BYTES,
             progress_interval: float | None = None) -> Path:
    """Download ``url`` to ``dest``: resumable, retried, checksum-checked, atomically renamed.

    ``retries`` transient failures are retried after ``backoff * 2**(i-1)`` seconds (capped at
    5 minutes); ``timeout`` is the socket timeout in seconds (connect and each read). ``key`` is
    the entry's name under ``download.files`` and appears in every error message. The file must
    have the ``sha256`` and the ``md5`` that are given (Zenodo publishes md5 sums); with neither,
    both are only logged, so that they can be pinned in the config.
    Progress (MB done of the total, MB/s, ETA) is logged every ``progress_interval`` seconds
    (None: :data:`bpnet.progress.PROGRESS_INTERVAL_S`). Returns ``dest``.
    """
    log = log or _log
    dest = Path(dest)
    part = part_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("%s: downloading %s -> %s", key, url, dest)
    failures = 0
    while True:
        try:
            _fetch_once(url, part, key=key, timeout=timeout, chunk_bytes=chunk_bytes, log=log,
                        progress_interval=progress_interval)
            break
        except _Retryable as err:
            failures += 1
            kept = part.stat().st_size if part.exists() else 0
            if failures > retries:
                raise DownloadError(
                    f"download.files.{key}: downloading {url} failed after {failures} attempts "
                    f"(last: {err}); {kept} bytes are kept in {part} and a rerun resumes from there "
                    f"(download.retries, download.timeout set the patience)"
                ) from err
            delay = min(backoff * 2 ** (failures - 1), 300.0)
            log.warning("%s: attempt %d failed (%s); retrying in %.1f s", key, failures, err, delay)
            time.sleep(delay)

    log.info("%s: computing checksums of %.1f MB", key, part.stat().st_size / 1e6)
    actual = checksums(part)
    pinned = {name: value.lower() for name, value in (("sha256", sha256), ("md5", md5)) if value}
    for name, expected in pinned.items():
        if actual[name] != expected:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"download.files.{key}: checksum mismatch for {url}: expected {name} {expected} "
                f"(download.files.{key}.{name}), got {actual[name]}; the download was deleted"
            )
    if pinned:
        log.info("%s: %s ok (sha256 %s)", key, " and ".join(pinned), actual["sha256"])
    else:
        log.info("%s: sha256 %s, md5 %s (not pinned: set download.files.%s.sha256 to verify future "
                 "downloads)", key, actual["sha256"], actual["md5"], key)
    os.replace(part, dest)
    log.info("%s: wrote %s", key, dest)
    return dest


# ---------------------------------------------------------------------------------- extraction


class _ProgressReader:
    """A read-only file wrapper that reports the bytes read to ``progress`` (progress through a
    compressed archive, also while a large member is being written)."""

    def __init__(self, raw, progress):
        self.raw, self.progress = raw, progress

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.progress.update(len(data))
        return data


def _normalise(name: str) -> str:
    """An archive or member path without a leading ``./`` or ``/``."""
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def _write_member(src, dest: Path, gunzip: bool) -> None:
    """Copy an archive member's stream to ``dest`` via ``<dest>.tmp`` + rename; gunzip if asked."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        with open(tmp, "wb") as out:
            shutil.copyfileobj(gzip.GzipFile(fileobj=src) if gunzip else src, out, CHUNK_BYTES)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def extract_members(archive: str | Path, members: Mapping[str, str | Path], *, key: str = "archive",
                    log: logging.Logger | None = None,
                    progress_interval: float | None = None) -> dict[str, str]:
    """Write the requested members of a ``tar.gz`` to their destinations in one streamed pass.

    ``members`` maps an archive member path to its destination file. A member matches an entry
    with the same path or with one extra leading folder, which must be the same folder for every
    member matched that way (the archive's top folder). The first matching entry wins. A member
    ``*.gz`` whose destination does not end in ``.gz`` is gunzipped. Returns {member: archive
    entry it came from}. A requested member that the archive lacks raises :class:`DownloadError`
    listing some entries that exist; then nothing that this call wrote is left behind.
    """
    log = log or _log
    archive = Path(archive)
    wanted = {_normalise(m): Path(d) for m, d in members.items()}
    found: dict[str, str] = {}
    top: str | None = None          # the leading folder that stripped matches share
    examples: list[str] = []        # some file entries, for the error message
    n_entries = 0
    size = archive.stat().st_size
    log.info("%s: extracting %d member(s) from %s (%.1f MB)", key, len(wanted), archive, size / 1e6)
    try:
        with open(archive, "rb") as raw, progress_bar(log, size, f"{key} (archive read)", unit="B",
                                                      interval=progress_interval) as progress:
            with tarfile.open(fileobj=_ProgressReader(raw, progress), mode="r|gz") as tar:
                for info in tar:
                    n_entries += 1
                    name = _normalise(info.name)
                    if info.isfile() and len(examples) < 10:
                        examples.append(name)
                    member = None
                    if name in wanted:
                        member = name
                    elif "/" in name:
                        folder, rest = name.split("/", 1)
                        if rest in wanted and top in (None, folder):
                            member = rest
                    if member is None:
                        continue
                    if member in found:
                        log.warning("%s: %s matches %s too; keeping the earlier entry %s",
                                    key, name, member, found[member])
                        continue
                    if not info.isfile():
                        raise DownloadError(f"{archive}: member {name} (download.files.{key}.members) "
                                            f"is not a regular file")
                    if member != name:
                        top = name.split("/", 1)[0]
                    dest = wanted[member]
                    gunzip = member.endswith(".gz") and not dest.name.endswith(".gz")
                    try:
                        _write_member(tar.extractfile(info), dest, gunzip)
                    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
                        raise DownloadError(f"{archive}: member {name} is not valid gzip ({err}); "
                                            f"cannot decompress it to {dest}") from err
                    found[member] = name
                    log.info("%s: %s -> %s%s", key, name, dest, " (gunzipped)" if gunzip else "")
                    if len(found) == len(wanted):
                        break  # the rest of the archive is not needed
        missing = [m for m in wanted if m not in found]
        if missing:
            raise DownloadError(
                f"{archive}: download.files.{key}.members lists {len(missing)} path(s) not in the "
                f"archive: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}. "
                f"The archive has {n_entries} entries, e.g. {', '.join(examples) or '(no files)'} "
                f"(a member may carry one extra leading folder, no more)"
            )
    except (tarfile.TarError, EOFError, zlib.error) as err:
        _remove(wanted[m] for m in found)
        raise DownloadError(f"{archive}: not a readable tar.gz ({err}); delete it to download it again "
                            f"(download.files.{key})") from err
    except BaseException:
        _remove(wanted[m] for m in found)
        raise
    log.info("%s: extracted %d member(s) after reading %d archive entries", key, len(found), n_entries)
    return found


def _remove(paths) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


# ------------------------------------------------------------------------------------- config


def check_download_config(section: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Checks of the ``download`` section that the schema cannot express; returns its files.

    Every destination (entry ``dest`` or member destination) must be unique, since two rules
    cannot produce one file, and a member destination must differ from its archive.
    """
    files = dict(section.get("files") or {})
    owners: dict[str, str] = {}
    for name, entry in files.items():
        paths = [(f"download.files.{name}.dest", entry["dest"])]
        paths += [(f"download.files.{name}.members[{m!r}]", d) for m, d in (entry.get("members") or {}).items()]
        for where, path in paths:
            norm = os.path.normpath(path)
            if norm in owners:
                raise BPNetInputError(f"{where}: destination {path} is already the destination of "
                                      f"{owners[norm]}; every destination must be unique")
            owners[norm] = where
    return files


def download_targets(section: Mapping[str, Any]) -> list[str]:
    """The files the ``download`` section makes: members of archives, otherwise the download."""
    out: list[str] = []
    for entry in check_download_config(section).values():
        members = entry.get("members") or {}
        out += list(members.values()) if members else [entry["dest"]]
    return out


# ------------------------------------------------------------------------------- rule mains
