"""Chromosome name aliases: one genome, named differently by different files (``1`` / ``chr1``,
``chr01`` / ``chrI``, ``MT`` / ``chrM``).

An alias table (``data.chrom_aliases``) is a text file of ``alias<TAB>genome name`` lines (more
columns are ignored, ``#`` lines skipped); the genome's names are those of ``data.genome_fasta``
and ``data.chrom_sizes``. Peak files, bigWigs and BAM/CRAM headers may then use either name:
each reader maps a name it finds through :func:`genome_name`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from bpnet.errors import BPNetInputError


def read_chrom_aliases(path: str | Path, genome: Iterable[str] | None = None) -> dict[str, str]:
    """``{alias: genome name}`` from an alias table; with ``genome`` (its chromosome names), a
    target outside it is an error naming the line. An alias given two targets is an error."""
    names = set(genome) if genome is not None else None
    aliases: dict[str, str] = {}
    where: dict[str, int] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError as err:
        raise BPNetInputError(f"chromosome alias table {path} (data.chrom_aliases) does not exist") from err
    for i, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
            raise BPNetInputError(f"{path}, line {i}: expected 'alias<TAB>genome name', got {line!r}")
        alias, target = fields[0].strip(), fields[1].strip()
        if names is not None and target not in names:
            raise BPNetInputError(
                f"{path}, line {i}: {target!r} is not a chromosome of the genome (data.chrom_sizes); the "
                "second column names the genome's chromosome, the first the name other files use"
            )
        if alias in aliases and aliases[alias] != target:
            raise BPNetInputError(
                f"{path}, line {i}: alias {alias!r} names {target!r}, but line {where[alias]} names "
                f"{aliases[alias]!r}"
            )
        aliases[alias] = target
        where.setdefault(alias, i)
    if not aliases:
        raise BPNetInputError(f"chromosome alias table {path} (data.chrom_aliases) holds no alias")
    return aliases


def genome_name(name: str, aliases: Mapping[str, str] | None) -> str:
    """The genome's name for ``name`` (itself when it is not an alias)."""
    return aliases.get(name, name) if aliases else name


class AliasedBigWig:
    """A pyBigWig file read with the genome's chromosome names: ``chroms()`` lists them, and
    ``values`` / ``intervals`` / ``stats`` take them, translating to the file's own names."""

    def __init__(self, bw, aliases: Mapping[str, str]):
        self._bw = bw
        self._file_name: dict[str, str] = {}
        for name in bw.chroms():
            self._file_name.setdefault(genome_name(name, aliases), name)

    def chroms(self, *args):
        if args:
            return self._bw.chroms(self._file_name.get(args[0], args[0]))
        sizes = self._bw.chroms()
        return {g: sizes[f] for g, f in self._file_name.items()}

    def values(self, chrom, *args, **kwargs):
        return self._bw.values(self._file_name.get(chrom, chrom), *args, **kwargs)

    def intervals(self, chrom, *args, **kwargs):
        return self._bw.intervals(self._file_name.get(chrom, chrom), *args, **kwargs)

    def stats(self, chrom, *args, **kwargs):
        return self._bw.stats(self._file_name.get(chrom, chrom), *args, **kwargs)

    def __getattr__(self, attr):  # header(), close(), isBigWig(), ...
        return getattr(self._bw, attr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._bw.close()
