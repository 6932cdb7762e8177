"""The ``.npz`` files that pass arrays between rules: reproducible writing, checked reading.

``np.savez`` stamps every member with the current time, so the same arrays give different bytes
on every run; :func:`write_npz` writes the same uncompressed layout with a fixed timestamp.
:func:`read_npz` reads only the named members (an ``.npz`` member is read on access, so a
dataset's sequence and counts are never loaded when only its window coordinates are needed) and
turns a missing file, a missing key or a corrupt file into a clear error naming the rule that
makes the file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .errors import BPNetInputError

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def write_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` (``np.load`` reads it), byte-for-byte reproducible."""
    with zipfile.ZipFile(path, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, val in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(val), allow_pickle=False)


def read_npz(
    path: str | Path, keys: Sequence[str] | None = None, what: str = "array", producer: str | None = None
) -> dict[str, np.ndarray]:
    """The arrays ``keys`` (all when None) of an ``.npz``.

    Args:
        what: what the file is, for messages ("dataset", "predictions").
        producer: the rule that writes it, for messages ("build_dataset").
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
            return {k: npz[k] for k in wanted}
    except BPNetInputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise BPNetInputError(f"cannot read {what} file {path} as .npz: {err}") from err
