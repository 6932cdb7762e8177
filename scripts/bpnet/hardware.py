"""What the machine offers: the torch device, and the precision and batch sizes that suit it.

Decisions are made here, from the hardware the job actually runs on, so that a default never pays
on one machine only; every other module asks these functions instead of testing the hardware.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Mapping

import torch

from .errors import BPNetInputError

# what tells a job it was given a GPU, besides CUDA_VISIBLE_DEVICES (Slurm's --gres / --gpus, SGE)
_GPU_VARIABLES = ("SLURM_GPUS", "SLURM_GPUS_ON_NODE", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_PER_NODE",
                  "SLURM_GPUS_PER_TASK", "GPU_DEVICE_ORDINAL")
_NO_GPU_VALUES = ("", "-1", "NoDevFiles")  # CUDA_VISIBLE_DEVICES values that hide every GPU
_NVIDIA_DEVICE = "/dev/nvidia0"
_path_exists = os.path.exists  # looked up at each call: tests replace it
CUDA_FIX = ("install a CUDA build of torch matching the NVIDIA driver (nvidia-smi shows the CUDA version it "
            "supports), e.g. pip install torch --index-url https://download.pytorch.org/whl/cu124")


def inference_batch_size(device: torch.device) -> int:
    """Windows per forward pass without gradients: 64 on CPU, where larger batches push the
    activations out of cache (backbone forward on 2 cores, 1000 bp: 384 windows/s at 64, 262 at
    256 in float32; 1,104 and 739 in bf16), 256 on a GPU."""
    return 64 if device.type == "cpu" else 256


def gpu_hints(environ: Mapping[str, str], path_exists: Callable[[str], bool]) -> list[str]:
    """What says this job was given a GPU, as readable phrases (empty: nothing does).

    Pure, so that tests can pass a fake environment and file check: ``CUDA_VISIBLE_DEVICES``
    naming a device (not empty, ``-1`` or ``NoDevFiles``, which mean "none"), a non-empty Slurm GPU
    variable or ``GPU_DEVICE_ORDINAL``, or the device file ``/dev/nvidia0``.
    """
    hints = []
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() not in _NO_GPU_VALUES:
        hints.append(f"CUDA_VISIBLE_DEVICES={visible}")
    for key in _GPU_VARIABLES:
        value = environ.get(key, "")
        if value.strip():
            hints.append(f"{key}={value}")
    if path_exists(_NVIDIA_DEVICE):
        hints.append(f"{_NVIDIA_DEVICE} exists")
    return hints


def torch_build() -> str:
    """``torch 2.13.0+cpu (a CPU-only build)`` or ``torch 2.5.1+cu124 (CUDA 12.4)``."""
    cuda = torch.version.cuda
    return f"torch {torch.__version__} ({'a CPU-only build' if cuda is None else f'CUDA {cuda}'})"


def resolve_device(name: str = "auto", log: logging.Logger | None = None) -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` as given.

    ``auto`` on a job that was given a GPU (see :func:`gpu_hints`) which torch cannot use logs a
    WARNING to ``log`` (default: the ``bpnet`` logger) and falls back to the CPU; ``cuda`` without
    a usable GPU is an error. Both name the torch build and the fix.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        hints = gpu_hints(os.environ, _path_exists)
        if hints:
            (log or logging.getLogger("bpnet")).warning(
                "GPU NOT USED: this job was given a GPU (%s), but %s cannot use it (torch.cuda.is_available() "
                "is False); running on the CPU instead, which is many times slower. Fix: %s",
                ", ".join(hints), torch_build(), CUDA_FIX,
            )
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BPNetInputError(
            f"config key device: {name!r} asked for, but no CUDA GPU is available to {torch_build()} "
            f"(use auto or cpu; to use the GPU: {CUDA_FIX})"
        )
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise BPNetInputError(f"config key device: expected auto, cpu, cuda or cuda:N, got {name!r}") from err
