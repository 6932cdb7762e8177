"""Run a trained BPNet over many sequences: device choice, batching, postprocess.

All functions take sequences as ``uint8`` codes ``(N, L)`` (see :mod:`bpnet.io.sequence`) and one-hot
encode each batch on the device, so a large set never exists as a float one-hot array in memory.
"""

from __future__ import annotations

import logging
from typing import Iterator, Sequence

import numpy as np
import torch

from bpnet.data.dataset import load_dataset
from bpnet.errors import BPNetInputError
from bpnet.hardware import inference_batch_size, setup_inference
from bpnet.io.npz import save_predictions
from bpnet.model.network import BPNet, codes_to_one_hot, postprocess, strand_swap_permutation
from bpnet.model.weights import load_checkpoint
from bpnet.progress import progress_bar


def _checked_codes(model: BPNet, codes: np.ndarray, control: np.ndarray | None) -> np.ndarray:
    """``codes`` as an ``(n, length)`` array; a wrong shape or a missing control is a clear error."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise BPNetInputError(f"sequences: expected codes of shape (n, length), got {codes.shape}")
    if model.config.use_control and control is None:
        raise BPNetInputError("this model uses a control track, but no control was given for prediction")
    return codes


def model_outputs(
    model: BPNet,
    x: torch.Tensor,
    control: torch.Tensor | None = None,
    rc_average: bool = False,
    swap: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """float32 ``{"profile_logits" (b, L, C), "count_logits" (b, C)}`` of one-hot ``x`` ``(b, L, 4)``.

    With ``rc_average`` the reverse complement (and the control: positions flipped, strands
    swapped) is predicted too, its outputs flipped back with the strands of every task swapped
    back (``swap``: :func:`~bpnet.model.network.strand_swap_permutation`, made here when None),
    and the logits of both averaged. Gradients flow as the caller's mode allows.
    """
    out = model(x, control)
    prof, cnt = out["profile_logits"].float(), out["count_logits"].float()
    if rc_average:  # A,C,G,T reversed is the complement; strands swap
        if swap is None:
            swap = strand_swap_permutation(len(model.config.tasks), model.config.num_strands).to(x.device)
        back = model(x.flip(1, 2), None if control is None else control.flip(1, 2))
        prof = (prof + back["profile_logits"].float().flip(1)[..., swap]) / 2
        cnt = (cnt + back["count_logits"].float()[..., swap]) / 2
    return {"profile_logits": prof, "count_logits": cnt}


@torch.no_grad()
def _predicted_batches(
    model: BPNet,
    codes: np.ndarray,
    control: np.ndarray | None,
    batch_size: int,
    device: str | torch.device,
    bf16: bool,
    log: logging.Logger | None,
    rc_average: bool,
) -> Iterator[tuple[slice, dict[str, torch.Tensor]]]:
    """Raw float32 outputs of one batch after another: ``(rows, {"profile_logits" (b, L, C),
    "count_logits" (b, C)})``; the shared loop of :func:`predict_outputs` and :func:`predict_profile`
    (which check ``codes`` and ``control`` first, :func:`_checked_codes`)."""
    device = torch.device(device) if isinstance(device, str) else device
    model = model.to(device).eval()
    swap = strand_swap_permutation(len(model.config.tasks), model.config.num_strands).to(device)
    with progress_bar(log, len(codes), "predict", unit="window") as bar:
        for lo in range(0, len(codes), batch_size):
            x = codes_to_one_hot(torch.as_tensor(codes[lo:lo + batch_size], device=device))
            ctl = None
            if model.config.use_control:
                ctl = torch.as_tensor(control[lo:lo + batch_size], dtype=torch.float32, device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = model_outputs(model, x, ctl, rc_average, swap)
            yield slice(lo, lo + len(x)), out
            bar.update(len(x))


def predict_outputs(
    model: BPNet,
    codes: np.ndarray,
    control: np.ndarray | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    bf16: bool = False,
    log: logging.Logger | None = None,
    rc_average: bool = False,
) -> dict[str, np.ndarray]:
    """Raw outputs for codes ``(N, L)``: ``profile_logits`` ``(N, L, C)`` and ``count_logits`` ``(N, C)``.

    With ``log``, progress (windows done of N, windows/s, ETA) is logged batch by batch
    (:func:`bpnet.progress.progress_bar`). With ``rc_average`` every window is also predicted as
    its reverse complement (the control too: positions flipped, strands swapped), whose outputs,
    flipped back with the strands of every task swapped back, are averaged with the forward
    ones (logits; as bpnet-lite and the ENCODE BPNet do): twice the compute.
    """
    codes = _checked_codes(model, codes, control)
    n, length = codes.shape
    c = model.config.num_outputs
    profile = np.empty((n, length, c), dtype=np.float32)
    counts = np.empty((n, c), dtype=np.float32)
    for rows, out in _predicted_batches(model, codes, control, batch_size, device, bf16, log, rc_average):
        profile[rows] = out["profile_logits"].cpu().numpy()
        counts[rows] = out["count_logits"].cpu().numpy()
    return {"profile_logits": profile, "count_logits": counts}


def predict_profile(
    model: BPNet,
    codes: np.ndarray,
    control: np.ndarray | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    bf16: bool = False,
    log: logging.Logger | None = None,
    rc_average: bool = False,
) -> np.ndarray:
    """Predicted expected counts ``(N, L, C)`` float32 (postprocessed: softmax * expm1(count_logits)),
    batch by batch into the one result array (the paper's ~60k evaluation windows: 1.9 GB, where
    logits, probabilities and their product for all windows at once held three times that).

    ``log``, ``rc_average``: as in :func:`predict_outputs`.
    """
    codes = _checked_codes(model, codes, control)
    n, length = codes.shape
    track = np.empty((n, length, model.config.num_outputs), dtype=np.float32)
    for rows, out in _predicted_batches(model, codes, control, batch_size, device, bf16, log, rc_average):
        track[rows] = postprocess(out).cpu().numpy()
    return track


def predict_dataset(
    dataset_path: str,
    model_path: str,
    out_path: str,
    splits: Sequence[str],
    device: str = "auto",
    kernels: str = "auto",
    threads: int = 1,
    log: logging.Logger = logging.getLogger(__name__),
    rc_average: bool = False,
) -> None:
    """Rule ``predict``: the trained model's predictions on the windows of ``splits``
    (``rc_average``: averaged with the reverse complement, :func:`predict_outputs`).

    Writes ``out_path`` (:func:`bpnet.io.npz.save_predictions`): ``index`` (rows of dataset.npz),
    ``profile`` ``(M, W, C)`` postprocessed expected counts over the core window, ``tasks``.
    """
    dataset = load_dataset(dataset_path)
    model = load_checkpoint(model_path, tasks=list(dataset.tasks), tasks_of=str(dataset_path))
    device = setup_inference(model, device, kernels, threads, log)
    index = np.flatnonzero(np.isin(dataset.split, list(splits)))
    c, w = dataset.extra_context, dataset.width
    control = None if dataset.control is None or not model.config.use_control else dataset.control[index, c:c + w]
    log.info("predicting %d windows (%s) on %s%s", len(index), ", ".join(splits), device,
             ", averaged with the reverse complement" if rc_average else "")
    profile = predict_profile(model, dataset.sequence[index, c:c + w], control,
                              batch_size=inference_batch_size(device), device=device, log=log, rc_average=rc_average)
    save_predictions(out_path, index, profile, dataset.tasks)
