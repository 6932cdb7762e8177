"""The .npz files between rules: byte-reproducible writing, checked reading, memory-mapped members."""

import numpy as np
import pytest

from bpnet.errors import BPNetInputError
from bpnet.io.npz import read_npz, write_npz


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
