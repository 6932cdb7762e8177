"""DNA sequence: integer codes, one-hot encoding, reverse complement, reading windows from FASTA.

Sequences are stored compactly as ``uint8`` codes ``A=0, C=1, G=2, T=3, N=4`` (any other IUPAC
letter is also 4). One-hot arrays are ``(..., length, 4)`` in channel order A, C, G, T, with an N
as all zeros (the paper's convention). Reverse complement of codes is ``3 - code`` for ACGT with
the position axis flipped, and N stays N.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pyfaidx
from numpy.lib.stride_tricks import sliding_window_view

from bpnet.errors import BPNetInputError

ALPHABET = "ACGT"
N_CODE = 4
# Windows of one chromosome are read from the FASTA in blocks spanning at most this many bases.
_BLOCK_BP = 8_000_000

# Byte -> code lookup; IUPAC ambiguity letters map to N, anything else is invalid (255).
_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _LUT[_b] = _i
    _LUT[ord(chr(_b).lower())] = _i
for _b in b"NRYKMSWBDHVnrykmswbdhv":
    _LUT[_b] = N_CODE
_COMPLEMENT = np.array([3, 2, 1, 0, N_CODE], dtype=np.uint8)


def encode(seq: str | bytes, where: str = "sequence") -> np.ndarray:
    """Encode a DNA string to ``uint8`` codes ``(length,)``; non-DNA letters are an error."""
    raw = np.frombuffer(seq.encode() if isinstance(seq, str) else bytes(seq), dtype=np.uint8)
    codes = _LUT[raw]
    bad = np.flatnonzero(codes == 255)
    if bad.size:
        letter = chr(raw[bad[0]])
        raise BPNetInputError(
            f"{where}: letter {letter!r} at position {bad[0]} is not DNA "
            "(expected A, C, G, T, N or an IUPAC ambiguity code)"
        )
    return codes


def one_hot(codes: np.ndarray, dtype=np.float32) -> np.ndarray:
    """One-hot encode codes ``(..., length)`` to ``(..., length, 4)``; N (4) becomes all zeros."""
    codes = np.asarray(codes)
    eye = np.concatenate([np.eye(4, dtype=dtype), np.zeros((1, 4), dtype=dtype)])
    if codes.size and codes.max() > N_CODE:
        raise BPNetInputError(f"sequence codes must be 0..4 (A, C, G, T, N), got {codes.max()}")
    return eye[codes]


def one_hot_strings(seqs: list[str]) -> np.ndarray:
    """One-hot encode equal-length strings to ``(n, length, 4)`` float32."""
    lengths = {len(s) for s in seqs}
    if len(lengths) > 1:
        raise BPNetInputError(f"sequences must have equal length, got lengths {sorted(lengths)}")
    return one_hot(np.stack([encode(s, f"sequence {i}") for i, s in enumerate(seqs)]))


def decode(codes: np.ndarray) -> str:
    """Codes ``(length,)`` back to a string (N for code 4)."""
    return np.frombuffer(b"ACGTN", dtype=np.uint8)[np.asarray(codes)].tobytes().decode()


def reverse_complement_codes(codes: np.ndarray) -> np.ndarray:
    """Reverse complement codes ``(..., length)``: flip positions, A<->T, C<->G, N stays N."""
    return _COMPLEMENT[np.asarray(codes)][..., ::-1]


def read_fasta_windows(fasta, chroms, starts, length: int) -> np.ndarray:
    """Read windows ``[start, start + length)`` from an indexed FASTA as codes ``(n, length)``.

    ``fasta`` is a path or an open :class:`pyfaidx.Fasta`. Windows are read one chromosome at a
    time in one slice covering all its windows, so nearby windows cost one read. Positions beyond
    a chromosome end are an error (windowing drops such windows first). A chromosome missing from
    the FASTA is an error naming the FASTA.
    """

    fa = fasta if isinstance(fasta, pyfaidx.Fasta) else open_fasta(fasta)
    chroms = np.asarray(chroms)
    starts = np.asarray(starts, dtype=np.int64)
    out = np.empty((len(starts), length), dtype=np.uint8)
    for chrom in map(str, np.unique(chroms)):  # str: plain names in messages
        idx = np.flatnonzero(chroms == chrom)
        if chrom not in fa:
            raise BPNetInputError(
                f"chromosome {chrom!r} is not in the FASTA {fa.filename} "
                f"(it has {', '.join(list(fa.keys())[:5])}...)"
            )
        chrom_len = len(fa[chrom])
        lo, hi = starts[idx].min(), starts[idx].max() + length
        if lo < 0 or hi > chrom_len:
            raise BPNetInputError(
                f"window {chrom}:{lo}-{hi} leaves the chromosome (length {chrom_len}) "
                f"in the FASTA {fa.filename}"
            )
        # One read per block of nearby windows (span <= _BLOCK_BP), so memory stays bounded for
        # sparse windows on huge chromosomes; block bounds come from searchsorted, not a loop.
        order = idx[np.argsort(starts[idx], kind="stable")]
        s = starts[order]
        first = 0
        while first < len(order):
            last = max(int(np.searchsorted(s, s[first] + max(_BLOCK_BP - length, 0), side="right")), first + 1)
            b_lo, b_hi = int(s[first]), int(s[last - 1]) + length
            block = encode(str(fa[chrom][b_lo:b_hi]), f"{fa.filename} {chrom}:{b_lo}-{b_hi}")
            # Rows of a sliding-window view: one contiguous copy per window.
            out[order[first:last]] = sliding_window_view(block, length)[s[first:last] - b_lo]
            first = last
    return out


# A .fai with at most this many contigs is checked in full against its FASTA; a larger one at its
# first and last _FAI_CHECK_ENDS contigs and an even sample between (all of them when the .fai is
# older than the FASTA). Each contig costs three small reads.
_FAI_CHECK_ALL = 2000
_FAI_CHECK_ENDS = 500


def _fai_mismatch(fh, size: int, name: str, length: int, offset: int, bases: int, width: int):
    """Why the .fai line ``name length offset bases width`` does not fit the FASTA, or None."""
    if length == 0:
        return None
    if offset <= 0 or offset > size or bases <= 0 or width <= bases or width > bases + 2:
        return f"contig {name!r}: offset {offset} / line length {bases} does not fit the FASTA"
    # The header line just before the sequence must be '>name'.
    lo = max(0, offset - 4096)
    fh.seek(lo)
    before = fh.read(offset - lo)
    if not before.endswith(b"\n"):
        return f"contig {name!r}: no header line ends at byte {offset}"
    start = before.rfind(b"\n", 0, len(before) - 1) + 1
    if start > 0 or lo == 0:
        header = before[start:].split()
        if not header or header[0] != b">" + name.encode():
            return (
                f"contig {name!r}: the line before byte {offset} is "
                f"{before[start:].strip()[:60].decode(errors='replace')!r}, not '>{name}'"
            )
    # A full line must be `bases` letters and then a line break of `width - bases` bytes.
    eol = b"\n" if width == bases + 1 else b"\r\n"
    if length > bases:
        fh.seek(offset + bases - 1)
        got = fh.read(1 + len(eol))
        if got[:1] in (b"\n", b"\r", b">") or got[1:] != eol:
            return f"contig {name!r}: its lines are not {bases} bases long"
    # The last base must lie inside the file and be followed by a line break or the end.
    last = offset + (length - 1) // bases * width + (length - 1) % bases
    if last >= size:
        return f"contig {name!r} of {length} bases would end beyond the end of the file"
    fh.seek(last)
    got = fh.read(2)
    if got[:1] in (b"\n", b"\r", b">") or got[1:2] not in (b"", b"\n", b"\r"):
        return f"contig {name!r} does not end after {length} bases"
    return None


def check_fasta_index(path) -> None:
    """Check that a FASTA's existing ``.fai`` still describes it, with a few reads per contig.

    A FASTA re-wrapped or edited after its ``.fai`` was made would be read through the stale
    offsets (every window wrong, pyfaidx only warns). Raises :class:`BPNetInputError` naming both
    files; the user's ``.fai`` is never rewritten. No ``.fai`` (pyfaidx builds one) or a
    bgzip-compressed FASTA (offsets are into the uncompressed text) is not checked here.
    """

    fasta = Path(path)
    fai = Path(str(fasta) + ".fai")
    if not fasta.is_file() or not fai.is_file():
        return
    with open(fasta, "rb") as fh:
        if fh.read(2) == b"\x1f\x8b":
            return
    fix = (
        f"delete the stale {fai} (it is rebuilt on the next run) or run `samtools faidx {fasta}`"
    )
    rows = []
    for i, line in enumerate(fai.read_text().splitlines(), start=1):
        fields = line.split("\t")
        if not line.strip():
            continue
        try:
            rows.append((fields[0], *map(int, fields[1:5])))
        except (ValueError, IndexError):
            raise BPNetInputError(
                f"FASTA index {fai}, line {i}: expected 'name<TAB>length<TAB>offset<TAB>"
                f"linebases<TAB>linewidth', got {line[:80]!r}; {fix}"
            ) from None
    stale = os.path.getmtime(fai) < os.path.getmtime(fasta)
    if stale or len(rows) <= _FAI_CHECK_ALL:
        check = rows
    else:
        middle = rows[_FAI_CHECK_ENDS:-_FAI_CHECK_ENDS]
        step = max(1, len(middle) // _FAI_CHECK_ENDS)
        check = rows[:_FAI_CHECK_ENDS] + middle[::step] + rows[-_FAI_CHECK_ENDS:]
    size = fasta.stat().st_size
    with open(fasta, "rb") as fh:
        for row in check:
            why = _fai_mismatch(fh, size, *row)
            if why:
                older = " (and the index is older than the FASTA)" if stale else ""
                raise BPNetInputError(
                    f"the FASTA index {fai} does not match the FASTA {fasta}{older}: {why}; the "
                    f"FASTA was re-wrapped or edited after it was indexed: {fix}"
                )


def open_fasta(path):
    """Open an indexed FASTA (pyfaidx, raw upper-case strings); a missing or bad file, or a
    ``.fai`` that no longer matches the FASTA (:func:`check_fasta_index`), is a clear error."""

    check_fasta_index(path)
    try:
        with warnings.catch_warnings():
            # An older .fai that check_fasta_index found to match is fine; pyfaidx warns anyway.
            warnings.filterwarnings("ignore", "Index file .* is older than FASTA", RuntimeWarning)
            return pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=True, rebuild=False)
    except FileNotFoundError as err:
        raise BPNetInputError(f"FASTA file {path} does not exist") from err
    except Exception as err:  # pyfaidx raises several kinds for malformed files
        raise BPNetInputError(f"cannot read FASTA {path}: {err}") from err
