"""Variants (VCF) -> reference and alternative sequence windows centred on each variant.

:func:`read_vcf` reads a VCF or BCF (plain or gzipped) with pysam: one row per alternative allele
(multi-allelic lines are split), each checked against the genome: a REF that disagrees with the
FASTA, or a chromosome the genome lacks, is an error naming the file and line. Symbolic alleles
(``<DEL>``, ``*``, breakends) and alleles with letters other than ACGTN are skipped and counted.

:func:`variant_windows` builds, for every variant, the reference window of ``width`` bp and the
alternative window of the same width (indels keep the width, as the peers do):

- the window starts at ``start = pos0 - width // 2`` (``pos0`` the 0-based position of REF's
  first base), so the variant's first base sits at index ``width // 2`` in both windows;
- reference: the genome over ``[start, start + width)``;
- alternative: the genome over ``[start, pos0)``, then ALT, then the genome from ``pos0 + len(REF)``
  on, cut to ``width``: a deletion pulls more of the right flank in, an insertion pushes it out;
- past a chromosome end the bases are N (code 4), as the dataset pads its context.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from bpnet.data.dataset import read_padded
from bpnet.errors import BPNetInputError
from bpnet.io.sequence import N_CODE, encode, read_fasta_windows
from bpnet.io.text import open_text

_BASES = re.compile(r"^[ACGTN]+$")
VARIANT_COLUMNS = ["chrom", "pos", "id", "ref", "alt", "line"]


def read_vcf(path: str | Path, chrom_sizes: dict[str, int], fasta=None,
             log: logging.Logger | None = None) -> pd.DataFrame:
    """Variants of a VCF/BCF, one row per ALT allele, in file order.

    Args:
        path: ``.vcf``, ``.vcf.gz`` or ``.bcf``.
        chrom_sizes: the genome's chromosomes; a variant elsewhere, or past a chromosome end, is
            an error naming the line.
        fasta: an open pyfaidx FASTA (:func:`bpnet.io.sequence.open_fasta`); when given, every REF
            is compared with the genome (case-insensitive) and a mismatch is an error naming the line.

    Returns:
        columns ``chrom``, ``pos`` (1-based, as in the VCF), ``id`` (the VCF's ID, or
        ``chrom:pos:ref:alt`` where it is ``.``), ``ref``, ``alt`` (upper case), ``line`` (the line
        of the record in the text file; the record number in a BCF).
    """
    import pysam

    path = Path(path)
    if not path.is_file():
        raise BPNetInputError(f"VCF {path} does not exist")
    try:
        vcf = pysam.VariantFile(str(path))
    except (ValueError, OSError) as err:
        raise BPNetInputError(f"{path}: not a readable VCF/BCF file ({err})") from None
    binary = str(path).endswith(".bcf")
    first_line = 0 if binary else _header_lines(path)
    rows, skipped = [], {"symbolic or non-ACGTN allele": 0, "no ALT allele": 0}
    where = "record" if binary else "line"
    try:
        for i, rec in enumerate(vcf, start=1):
            line = i if binary else first_line + i
            chrom = rec.chrom
            if chrom not in chrom_sizes:
                raise BPNetInputError(
                    f"{path}, {where} {line}: chromosome {chrom!r} is not in the genome (its chromosomes: "
                    f"{', '.join(list(chrom_sizes)[:5])}, ...)"
                )
            ref = (rec.ref or "").upper()
            if not _BASES.match(ref):
                skipped["symbolic or non-ACGTN allele"] += len(rec.alts or ()) or 1
                continue
            if rec.pos < 1 or rec.pos - 1 + len(ref) > chrom_sizes[chrom]:
                raise BPNetInputError(f"{path}, {where} {line}: {chrom}:{rec.pos} {ref} runs past the end of "
                                      f"{chrom} ({chrom_sizes[chrom]:,} bp)")
            if fasta is not None:
                genome = str(fasta[chrom][rec.pos - 1:rec.pos - 1 + len(ref)]).upper()
                if genome != ref:
                    raise BPNetInputError(
                        f"{path}, {where} {line}: REF {ref} at {chrom}:{rec.pos} but the genome has {genome} "
                        "there: the VCF was called against another assembly or its positions are shifted"
                    )
            if not rec.alts:
                skipped["no ALT allele"] += 1
                continue
            for alt in rec.alts:
                alt = alt.upper()
                if not _BASES.match(alt):
                    skipped["symbolic or non-ACGTN allele"] += 1
                    continue
                ident = rec.id if rec.id and rec.id != "." else f"{chrom}:{rec.pos}:{ref}:{alt}"
                rows.append((chrom, rec.pos, ident, ref, alt, line))
    except BPNetInputError:
        raise
    except (ValueError, OSError) as err:  # a malformed record: pysam names no line
        raise BPNetInputError(f"{path}: cannot read past {where} {first_line + len(rows) + 1}: {err}") from None
    finally:
        vcf.close()
    if log:
        dropped = ", ".join(f"{v} {k}" for k, v in skipped.items() if v)
        log.info("%s: %d variant alleles%s", path, len(rows), f" (skipped: {dropped})" if dropped else "")
    if not rows:
        raise BPNetInputError(f"{path}: no variant with ACGTN alleles to score")
    return pd.DataFrame(rows, columns=VARIANT_COLUMNS)


def _header_lines(path: Path) -> int:
    """Lines of the text VCF's header (``#`` lines before the first record), gzipped or not."""
    n = 0
    with open_text(path) as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            n += 1
    return n


def variant_windows(
    fasta, chrom_sizes: dict[str, int], variants: pd.DataFrame, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference and alternative codes ``(n, width)`` uint8 and the window starts ``(n,)`` int64.

    See the module docstring for the layout; ``variants`` as :func:`read_vcf` returns them.
    """
    n = len(variants)
    chroms = variants["chrom"].to_numpy().astype(str)
    pos0 = variants["pos"].to_numpy(np.int64) - 1
    start = pos0 - width // 2
    ref_len = variants["ref"].str.len().to_numpy(np.int64)
    alt_len = variants["alt"].str.len().to_numpy(np.int64)
    # the right flank of the alt window: width - (left flank) - len(ALT) bases after REF; read
    # enough of the genome for the longest deletion at once
    extra = int(max(0, (ref_len - alt_len).max(initial=0)))
    chrom_len = np.array([chrom_sizes[c] for c in chroms], dtype=np.int64)
    span = read_padded(lambda c, s, n: read_fasta_windows(fasta, c, s, n), chroms, start, width + extra,
                       chrom_len, N_CODE)
    ref_codes = span[:, :width].copy()
    alt_codes = np.full((n, width), N_CODE, dtype=np.uint8)
    centre = width // 2
    for i in range(n):
        alt = encode(variants["alt"].iat[i], f"ALT of {variants['id'].iat[i]}")
        alt_codes[i, :centre] = span[i, :centre]
        k = min(len(alt), width - centre)
        alt_codes[i, centre:centre + k] = alt[:k]
        rest = width - centre - k
        if rest > 0:
            right = centre + ref_len[i]
            alt_codes[i, centre + k:] = span[i, right:right + rest]
    return ref_codes, alt_codes, start
