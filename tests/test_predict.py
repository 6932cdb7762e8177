"""Prediction: reverse-complement averaging is the mean of the forward pass and the reverse
complement pass turned back (positions flipped, the strands of every task swapped)."""

import numpy as np
import pytest
import torch

from bpnet.io.sequence import reverse_complement_codes
from bpnet.model.network import BPNet, BPNetConfig, init_weights, postprocess
from bpnet.steps.predict import predict_outputs, predict_profile

TASKS = ("a", "b")


def tiny_model(use_control=False):
    model = BPNet(BPNetConfig(hidden_size=4, stem_kernel=5, num_dilated_layers=2, dilated_kernel=3,
                              profile_kernel=5, tasks=TASKS, use_control=use_control))
    init_weights(model, 5)
    return model.eval()


@pytest.mark.parametrize("use_control", [False, True])
def test_rc_average_is_the_mean_of_both_strands(use_control):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, (5, 40)).astype(np.uint8)  # N included
    control = rng.poisson(1.0, (5, 40, 2)).astype(np.float32) if use_control else None
    model = tiny_model(use_control)
    fwd = predict_outputs(model, codes, control, batch_size=2)
    rc_control = None if control is None else control[:, ::-1, ::-1].copy()  # flipped, strands swapped
    rev = predict_outputs(model, reverse_complement_codes(codes).copy(), rc_control, batch_size=3)
    swap = [1, 0, 3, 2]  # a+ <-> a-, b+ <-> b-
    expected_profile = (fwd["profile_logits"] + rev["profile_logits"][:, ::-1][..., swap]) / 2
    expected_counts = (fwd["count_logits"] + rev["count_logits"][:, swap]) / 2
    avg = predict_outputs(model, codes, control, batch_size=4, rc_average=True)
    np.testing.assert_allclose(avg["profile_logits"], expected_profile, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(avg["count_logits"], expected_counts, rtol=1e-5, atol=1e-6)
    assert not np.allclose(avg["profile_logits"], fwd["profile_logits"])  # the model is not symmetric
    # predict_profile postprocesses the averaged logits
    track = predict_profile(model, codes, control, batch_size=4, rc_average=True)
    ref = postprocess({k: torch.from_numpy(v) for k, v in avg.items()}).numpy()
    np.testing.assert_allclose(track, ref, rtol=1e-5, atol=1e-7)


def test_rc_average_of_a_palindrome_is_strand_symmetric():
    """A reverse-complement palindrome averaged over both orientations: the + strand at position
    i equals the - strand at the mirrored position."""
    half = np.random.default_rng(1).integers(0, 4, 20).astype(np.uint8)
    codes = np.concatenate([half, reverse_complement_codes(half)])[None]
    track = predict_profile(tiny_model(), codes, rc_average=True)[0]  # (40, 4)
    np.testing.assert_allclose(track[:, 0], track[::-1, 1], rtol=1e-5)
    np.testing.assert_allclose(track[:, 2], track[::-1, 3], rtol=1e-5)


@pytest.mark.parametrize("rc_average", [False, True])
def test_profile_postprocessed_batch_by_batch_equals_postprocessing_all_logits(rc_average):
    """predict_profile fills its result batch by batch (bounded memory at the paper's size); the
    values are those of postprocessing all raw outputs at once, to the bit. (The raw outputs
    themselves may differ by ~1e-9 between batch sizes: oneDNN picks kernels by shape.)"""
    model = tiny_model()
    codes = np.random.default_rng(3).integers(0, 4, (23, 60)).astype(np.uint8)
    for batch_size in (1, 5, 64):
        raw = predict_outputs(model, codes, batch_size=batch_size, rc_average=rc_average)
        whole = postprocess({k: torch.from_numpy(v) for k, v in raw.items()}).numpy()
        got = predict_profile(model, codes, batch_size=batch_size, rc_average=rc_average)
        assert got.dtype == np.float32 and got.shape == whole.shape
        np.testing.assert_array_equal(got, whole)


def test_bad_codes_or_a_missing_control_are_clear_errors():
    from bpnet.errors import BPNetInputError

    for predict in (predict_outputs, predict_profile):
        with pytest.raises(BPNetInputError, match=r"expected codes of shape \(n, length\)"):
            predict(tiny_model(), np.zeros(60, np.uint8))
        with pytest.raises(BPNetInputError, match="uses a control track"):
            predict(tiny_model(use_control=True), np.zeros((2, 60), np.uint8))
