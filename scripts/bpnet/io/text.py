"""Plain or gzipped text files (peaks, BED regions, FASTA records, VCF headers), told apart by content."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO

from bpnet.errors import BPNetInputError


def is_gzipped(path: str | Path) -> bool:
    """Whether ``path`` starts with the gzip magic bytes (gzip and bgzip alike)."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_text(path: str | Path) -> IO[str]:
    """A text handle on a plain or gzipped file."""
    return gzip.open(path, "rt") if is_gzipped(path) else open(path)


def read_text_lines(path: str | Path, what: str) -> list[str]:
    """Lines of a plain or gzipped text file; a missing or unreadable file is a clear error naming
    ``what`` (e.g. "peak file") and the path."""
    path = Path(path)
    if not path.is_file():
        raise BPNetInputError(f"{what} {path} does not exist")
    try:
        with open_text(path) as fh:
            return fh.read().splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise BPNetInputError(f"cannot read {what} {path} as (gzipped) text: {err}") from err
