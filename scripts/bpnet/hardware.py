"""What the machine offers: the torch device, and the precision and batch sizes that suit it.

Decisions are made here, from the hardware the job actually runs on, so that a default never pays
on one machine only; every other module asks these functions instead of testing the hardware.
"""

from __future__ import annotations

import torch

from .errors import BPNetInputError


def inference_batch_size(device: torch.device) -> int:
    """Windows per forward pass without gradients: 64 on CPU, where larger batches push the
    activations out of cache (backbone forward on 2 cores, 1000 bp: 384 windows/s at 64, 262 at
    256 in float32; 1,104 and 739 in bf16), 256 on a GPU."""
    return 64 if device.type == "cpu" else 256


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BPNetInputError(f"config key device: {name!r} asked for, but no CUDA GPU is available (use auto or cpu)")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise BPNetInputError(f"config key device: expected auto, cpu, cuda or cuda:N, got {name!r}") from err
