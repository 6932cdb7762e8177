"""The .npz files between rules: byte-reproducible writing, checked reading, memory-mapped members."""

from pathlib import Path

import numpy as np
import pytest

from bpnet.errors import BPNetInputError
from bpnet.io.npz import read_npz, release_pages, write_npz


def arrays():
    rng = np.random.default_rng(0)
    return {
        "counts": rng.integers(0, 9, (5, 7, 4)).astype(np.uint16),
        "fortran": np.asfortranarray(rng.random((6, 3)).astype(np.float32)),
        "names": np.array(["chr1", "chr10"]),
        "empty": np.zeros((0, 3), np.float32),
        "width": np.array(7),
    }


def test_same_arrays_give_the_same_bytes(tmp_path):
    write_npz(tmp_path / "a.npz", arrays())
    write_npz(tmp_path / "b.npz", arrays())
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as npz:  # a plain .npz
        np.testing.assert_array_equal(npz["counts"], arrays()["counts"])


def test_memory_mapped_members_equal_the_arrays(tmp_path):
    write_npz(tmp_path / "a.npz", arrays())
    mapped = read_npz(tmp_path / "a.npz", mmap=["counts", "fortran", "names", "empty", "width"])
    for key, value in arrays().items():
        np.testing.assert_array_equal(mapped[key], value)
        assert mapped[key].dtype == value.dtype and mapped[key].shape == value.shape
    assert isinstance(mapped["counts"], np.memmap) and isinstance(mapped["fortran"], np.memmap)
    assert mapped["fortran"].flags.f_contiguous
    assert not mapped["counts"].flags.writeable
    rows = mapped["counts"][[4, 1]]  # indexing reads just those rows, into memory
    np.testing.assert_array_equal(rows, arrays()["counts"][[4, 1]])


def test_compressed_members_are_read_instead(tmp_path):
    np.savez_compressed(tmp_path / "c.npz", **arrays())
    got = read_npz(tmp_path / "c.npz", ["counts"], mmap=["counts"])
    assert not isinstance(got["counts"], np.memmap)
    np.testing.assert_array_equal(got["counts"], arrays()["counts"])


def test_missing_file_or_key_names_the_rule(tmp_path):
    with pytest.raises(BPNetInputError, match="dataset file .* does not exist; run rule build_dataset"):
        read_npz(tmp_path / "none.npz", what="dataset", producer="build_dataset")
    write_npz(tmp_path / "a.npz", arrays())
    with pytest.raises(BPNetInputError, match=r"lacks the array\(s\) \['sequence'\]; rerun rule build_dataset"):
        read_npz(tmp_path / "a.npz", ["sequence"], what="dataset", producer="build_dataset", mmap=["sequence"])


def _mapped_mb():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("RssFile:")) / 1024


@pytest.mark.skipif(not hasattr(__import__("mmap"), "MADV_DONTNEED") or not Path("/proc/self/status").exists(),
                    reason="needs madvise and /proc (Linux)")
def test_released_pages_stop_counting_and_the_values_stay(tmp_path):
    values = np.arange(24_000_000, dtype=np.float64).reshape(2000, 12000)  # 192 MB
    write_npz(tmp_path / "a.npz", {"a": values})
    mapped = read_npz(tmp_path / "a.npz", ["a"], mmap=["a"])["a"]
    before = _mapped_mb()
    assert float(mapped.sum()) == float(values.sum())  # reads every page
    assert _mapped_mb() - before > 150
    view = np.asarray(mapped[100:200])  # a view of the map reaches it too
    release_pages(view, values)  # an in-memory array is left alone
    assert _mapped_mb() - before < 20
    np.testing.assert_array_equal(mapped[1500:1510], values[1500:1510])  # read again on access
