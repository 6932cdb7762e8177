"""The ``.npz`` files that pass arrays between rules: reproducible writing, checked reading.

``np.savez`` stamps every member with the current time, so the same arrays give different bytes
on every run; :func:`write_npz` writes the same uncompressed layout with a fixed timestamp.
:func:`read_npz` reads only the named members (an ``.npz`` member is read on access, so a
dataset's sequence and counts are never loaded when only its window coordinates are needed) and
turns a missing file, a missing key or a corrupt file into a clear error naming the rule that
makes the file.
"""

from __future__ import annotations

import mmap
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from bpnet.errors import BPNetInputError

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def write_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` (``np.load`` reads it), byte-for-byte reproducible."""
    with zipfile.ZipFile(path, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, val in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(val), allow_pickle=False)


def _member_memmap(path: Path, zf: zipfile.ZipFile, name: str) -> np.ndarray:
    """A read-only memory map of one uncompressed ``.npy`` member (what :func:`write_npz` writes):
    its bytes stay on disk and are read when indexed."""
    info = zf.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"member {name} is compressed")
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)  # the local file header: its name and extra field lengths at 26..30
        if local[:4] != b"PK\x03\x04":
            raise ValueError(f"member {name}: bad local header")
        start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
        fh.seek(start)
        version = np.lib.format.read_magic(fh)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f"member {name}: .npy format {version}")
        shape, fortran, dtype = readers[version](fh)
        offset = fh.tell()
    if dtype.hasobject:
        raise ValueError(f"member {name} holds Python objects")
    if not shape or 0 in shape:  # nothing to map: read it
        with zf.open(name) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def release_pages(*arrays: Any) -> None:
    """Unmap the pages of memory-mapped arrays (from :func:`read_npz` with ``mmap``) that reading
    has brought in, so that they stop counting as the process's memory. The data stay in the
    page cache and are read again on access; the result of any indexing is unchanged.

    Pages of a read-only file mapping are clean: the kernel drops them under memory pressure
    anyway, but they count in the resident set (and so in the peak memory a rule logs and
    ``mem_mb`` is sized from) until then. A step that streams through GBs of a dataset calls
    this between chunks. Arrays that are not memory maps, and systems without ``madvise``, are
    left alone.
    """
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if advice is None:
        return
    for array in arrays:
        # a memory map holds its mmap in _mmap; a view of one reaches it through .base
        while isinstance(array, np.ndarray) and not isinstance(getattr(array, "_mmap", None), mmap.mmap):
            array = array.base
        mapping = getattr(array, "_mmap", None)
        if isinstance(mapping, mmap.mmap) and not mapping.closed:
            mapping.madvise(advice)


# Rows read at a time by row_chunks (4096 windows of 1,000 bp x 8 uint16 channels: 66 MB).
CHUNK_ROWS = 4096


def row_chunks(array: np.ndarray, rows: np.ndarray | None = None, chunk: int | None = None):
    """Yield ``(lo, array[rows[lo:lo + chunk]])`` (all rows when ``rows`` is None) as in-memory
    arrays, releasing a memory map's pages after each (:func:`release_pages`): a pass over a
    dataset of GBs holds one chunk, not the whole file's pages."""
    chunk = chunk or CHUNK_ROWS
    n = len(array) if rows is None else len(rows)
    for lo in range(0, n, chunk):
        sel = slice(lo, lo + chunk) if rows is None else rows[lo:lo + chunk]
        yield lo, np.asarray(array[sel])
        release_pages(array)


def read_npz(
    path: str | Path,
    keys: Sequence[str] | None = None,
    what: str = "array",
    producer: str | None = None,
    mmap: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """The arrays ``keys`` (all when None) of an ``.npz``.

    Args:
        what: what the file is, for messages ("dataset", "predictions").
        producer: the rule that writes it, for messages ("build_dataset").
        mmap: keys returned as read-only memory maps instead of arrays in memory (for the large
            arrays of a dataset: a step then holds only the rows it indexes). A member that
            cannot be mapped (compressed, e.g. written by ``np.savez_compressed``) is read.
    """
    path = Path(path)
    hint = f"; run rule {producer}" if producer else ""
    if not path.exists():
        raise BPNetInputError(f"{what} file {path} does not exist{hint}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            wanted = list(npz.files) if keys is None else list(keys)
            missing = [k for k in wanted if k not in npz.files]
            if missing:
                raise BPNetInputError(f"{what} file {path} lacks the array(s) {missing}{hint.replace('run', 'rerun')}")
            out = {}
            for k in wanted:
                if k in mmap:
                    try:
                        out[k] = _member_memmap(path, npz.zip, f"{k}.npy")
                        continue
                    except ValueError:
                        pass  # not mappable: read it below
                out[k] = npz[k]
            return out
    except BPNetInputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise BPNetInputError(f"cannot read {what} file {path} as .npz: {err}") from err


# The predictions store (rules predict, oracle_predictions, ensemble) -------------------------

# Profile rows checked at a time (1024 windows x 1000 bp x 8 channels: 33 MB).
CHECK_ROWS = 1024


def load_predictions(
    path: str | Path,
    dataset: Any,
    dataset_path: str | Path,
    splits: Sequence[str] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Read and check a predictions file against the dataset it predicts.

    Args:
        path: ``predictions/{name}.npz`` with ``index`` ``(M,)``, ``profile`` ``(M, W, 2T)``,
            ``tasks`` ``(T,)``.
        dataset: the loaded dataset.
        dataset_path: its file, named in error messages.
        splits: every window of these splits must have a prediction.

    Returns:
        ``(index int64 (M,), profile float32 (M, W, 2T))``; the profile is a read-only memory
        map (the paper's ~58k evaluation windows are 1.9 GB per file), read by the rows indexed.

    Tasks, width, channels, index range or missing windows that disagree with the dataset are a
    :class:`BPNetInputError` naming both files.
    """
    both = f"predictions {path} and dataset {dataset_path}"
    arrays = read_npz(path, ["index", "profile", "tasks"], "predictions", mmap=["profile"])
    index = np.asarray(arrays["index"])
    profile = arrays["profile"]
    if profile.dtype != np.float32:  # written by another tool: converted into memory
        profile = np.asarray(profile, dtype=np.float32)
    tasks = [str(t) for t in np.asarray(arrays["tasks"]).ravel()]

    ds_tasks = [str(t) for t in np.asarray(dataset.tasks).ravel()]
    width = int(dataset.width)
    n = len(dataset.split)
    if tasks != ds_tasks:
        raise BPNetInputError(f"{both} disagree on the tasks: {tasks} vs {ds_tasks}")
    channels = np.asarray(dataset.counts).shape[-1]  # S per task: 2, or 1 for unstranded tasks
    if profile.ndim != 3 or profile.shape[1] != width or profile.shape[2] != channels:
        raise BPNetInputError(
            f"{both} disagree: profile has shape {profile.shape}, expected "
            f"(M, {width}, {channels}) for width {width} and {len(ds_tasks)} tasks"
        )
    if index.ndim != 1 or len(index) != len(profile) or not np.issubdtype(index.dtype, np.integer):
        raise BPNetInputError(
            f"predictions {path}: index must be integers of shape ({len(profile)},) (one per "
            f"profile row), got {index.dtype} {index.shape}"
        )
    if len(index) and (index.min() < 0 or index.max() >= n):
        raise BPNetInputError(f"{both} disagree: index values must be rows 0..{n - 1}")
    if len(np.unique(index)) != len(index):
        raise BPNetInputError(f"predictions {path}: index repeats dataset rows")
    for _, part in row_chunks(profile, chunk=CHECK_ROWS):  # the profile stays on disk
        if not np.isfinite(part).all() or (part < 0).any():
            raise BPNetInputError(
                f"predictions {path}: profile must be finite expected counts >= 0"
            )
    wanted = np.flatnonzero(np.isin(np.asarray(dataset.split).astype(str), list(splits)))
    lacking = np.setdiff1d(wanted, index)
    if lacking.size:
        raise BPNetInputError(
            f"{both} disagree: {lacking.size} windows of split(s) {list(splits)} have no "
            f"prediction (first: dataset row {lacking[0]}); predict evaluation.splits"
        )
    return index.astype(np.int64), profile


def save_predictions(path: str | Path, index: np.ndarray, profile: np.ndarray, tasks) -> None:
    """Write a predictions file: ``index`` int64 ``(M,)``, ``profile`` float32 ``(M, W, 2T)``,
    ``tasks`` ``(T,)`` str.

    The layout of ``np.savez`` (uncompressed zip of .npy members), but with a fixed member
    timestamp so that the same arrays give the same bytes (np.savez stamps the current time).
    """
    write_npz(
        path,
        {
            "index": np.asarray(index, dtype=np.int64),
            "profile": np.asarray(profile, dtype=np.float32),
            "tasks": np.asarray(list(tasks), dtype=str),
        },
    )
