"""Device choice: a GPU the job was given but torch cannot use is reported loudly, with the fix."""

from __future__ import annotations

import logging

import pytest
import torch

from bpnet import hardware
from bpnet.errors import BPNetInputError
from bpnet.hardware import gpu_hints, resolve_device

GPU_VARIABLES = ("CUDA_VISIBLE_DEVICES", *hardware._GPU_VARIABLES)
FIX = "pip install torch --index-url https://download.pytorch.org/whl/cu"


@pytest.fixture
def no_gpu_env(monkeypatch):
    """Nothing says a GPU was given, and torch sees none; tests add what they need."""
    for key in GPU_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(hardware, "_path_exists", lambda path: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    return monkeypatch


@pytest.fixture
def bpnet_log(monkeypatch):
    """The ``bpnet`` logger with propagation on, so that caplog sees it even after a rule logger
    (runner.get_logger turns propagation off) was made in this process."""
    logger = logging.getLogger("bpnet")
    monkeypatch.setattr(logger, "propagate", True)
    return logger


def warnings_of(caplog):
    return [r for r in caplog.records if r.levelno == logging.WARNING]


def test_auto_warns_when_the_job_was_given_a_gpu_torch_cannot_use(no_gpu_env, bpnet_log, caplog):
    no_gpu_env.setenv("CUDA_VISIBLE_DEVICES", "0")
    no_gpu_env.setenv("SLURM_JOB_GPUS", "1")
    no_gpu_env.setattr(hardware, "_path_exists", lambda path: path == "/dev/nvidia0")
    with caplog.at_level(logging.WARNING, logger="bpnet"):
        device = resolve_device("auto")
    assert device == torch.device("cpu")
    (record,) = warnings_of(caplog)
    assert record.name == "bpnet"
    msg = record.getMessage()
    for seen in ("CUDA_VISIBLE_DEVICES=0", "SLURM_JOB_GPUS=1", "/dev/nvidia0"):
        assert seen in msg
    assert f"torch {torch.__version__}" in msg and FIX in msg and "CPU" in msg


def test_auto_warning_goes_to_the_given_logger(no_gpu_env, caplog):
    no_gpu_env.setenv("SLURM_GPUS_ON_NODE", "2")
    log = logging.getLogger("test_hardware.rule")
    with caplog.at_level(logging.WARNING, logger="test_hardware.rule"):
        assert resolve_device("auto", log=log) == torch.device("cpu")
    (record,) = warnings_of(caplog)
    assert record.name == "test_hardware.rule" and "SLURM_GPUS_ON_NODE=2" in record.getMessage()


def test_auto_is_quiet_when_nothing_says_a_gpu_was_given(no_gpu_env, bpnet_log, caplog):
    no_gpu_env.setenv("CUDA_VISIBLE_DEVICES", "-1")
    no_gpu_env.setenv("SLURM_GPUS", "")
    with caplog.at_level(logging.DEBUG, logger="bpnet"):
        assert resolve_device("auto") == torch.device("cpu")
    assert not warnings_of(caplog)


@pytest.mark.parametrize("visible", ["", "-1", "NoDevFiles"])
def test_cuda_visible_devices_that_hide_every_gpu_are_no_hint(visible):
    assert gpu_hints({"CUDA_VISIBLE_DEVICES": visible}, lambda path: False) == []


def test_gpu_hints_names_each_sign():
    env = {"CUDA_VISIBLE_DEVICES": "GPU-1234", "SLURM_STEP_GPUS": "0,1", "GPU_DEVICE_ORDINAL": "3",
           "SLURM_GPUS_PER_TASK": " ", "HOME": "/root"}
    assert gpu_hints(env, lambda path: True) == [
        "CUDA_VISIBLE_DEVICES=GPU-1234", "SLURM_STEP_GPUS=0,1", "GPU_DEVICE_ORDINAL=3", "/dev/nvidia0 exists",
    ]


@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_raises_naming_the_build_and_fix(no_gpu_env, name):
    with pytest.raises(BPNetInputError, match="config key device") as err:
        resolve_device(name)
    assert f"torch {torch.__version__}" in str(err.value) and FIX in str(err.value)


def test_auto_picks_cuda_when_available(no_gpu_env, bpnet_log, caplog):
    no_gpu_env.setattr(torch.cuda, "is_available", lambda: True)
    no_gpu_env.setenv("CUDA_VISIBLE_DEVICES", "0")
    with caplog.at_level(logging.DEBUG, logger="bpnet"):
        assert resolve_device("auto") == torch.device("cuda")
    assert not warnings_of(caplog)


def test_torch_build_says_cpu_only_when_torch_has_no_cuda(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    assert "CPU-only build" in hardware.torch_build()
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    assert hardware.torch_build().endswith("(CUDA 12.4)")
