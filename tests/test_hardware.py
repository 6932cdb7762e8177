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


# --------------------------------------------------------------- precision, kernels and threads

from bpnet.hardware import (  # noqa: E402
    CpuInfo,
    bf16_capability,
    choose_kernels,
    cpu_flags,
    decide_bf16,
    usable_threads,
)

AVX2 = CpuInfo("AVX2", onednn_bf16=False, flags=frozenset({"avx2", "fma"}))
AVX512 = CpuInfo("AVX512", onednn_bf16=True, flags=frozenset({"avx2", "avx512f", "avx512bw"}))
AVX512_BF16 = CpuInfo("AVX512", onednn_bf16=True, flags=frozenset({"avx512f", "avx512_bf16"}))
AMX = CpuInfo("AVX512", onednn_bf16=True, flags=frozenset({"avx512f", "amx_bf16", "amx_tile"}))
ARM = CpuInfo("DEFAULT", onednn_bf16=True, flags=frozenset({"asimd", "bf16"}))


def test_bf16_capability_by_cpu_and_gpu():
    capable, why = bf16_capability("cpu", AVX2)
    assert capable is False and "emulated" in why and "AVX2" in why
    assert bf16_capability("cpu", AVX512_BF16)[0] is True
    assert bf16_capability("cpu", AMX)[0] is True
    assert bf16_capability("cpu", AVX512)[0] is None  # AVX-512 without bf16 instructions: time it
    assert bf16_capability("cpu", ARM)[0] is None
    assert bf16_capability("cuda", cuda_capability=(8, 0))[0] is True  # A100
    assert bf16_capability("cuda", cuda_capability=(9, 0))[0] is True  # H100
    capable, why = bf16_capability("cuda", cuda_capability=(7, 5))  # T4
    assert capable is False and "7.5" in why


def test_auto_precision_follows_capability_and_times_only_when_undecided():
    calls = []

    def timer(result):
        def time_steps():
            calls.append(result)
            return result
        return time_steps

    assert decide_bf16("auto", False, "emulated", timer((1.0, 0.1)))[0] is False
    assert decide_bf16("auto", True, "native", timer((0.1, 1.0)))[0] is True
    assert calls == []  # capability settled it: nothing timed
    use, why = decide_bf16("auto", None, "undecided", timer((1.0, 0.5)))
    assert use is True and "float32 1.000 s, bf16 0.500 s" in why
    use, why = decide_bf16("auto", None, "undecided", timer((1.0, 0.95)))  # within the margin
    assert use is False and "not 1.2x faster" in why
    assert len(calls) == 2


def test_forced_precision_is_kept_and_warned_about():
    assert decide_bf16(False, True, "native") == (False, "training.bf16 is false in the config")
    use, why = decide_bf16(True, False, "bf16 would be emulated")
    assert use is True and "warning: bf16 would be emulated" in why
    with pytest.raises(BPNetInputError, match="training.bf16: expected true, false or auto"):
        decide_bf16("yes", True, "native")


def test_kernels_by_hardware():
    assert choose_kernels("auto", "cpu", AVX2)[0] == "channels_last"
    assert choose_kernels("auto", "cpu", AVX512_BF16)[0] == "channels_last"
    assert choose_kernels("auto", "cpu", ARM)[0] == "plain"  # unmeasured: torch's own kernels
    assert choose_kernels("auto", "cuda")[0] == "channels_last"
    assert choose_kernels("plain", "cpu", AVX512) == ("plain", "kernels is plain in the config")
    with pytest.raises(BPNetInputError, match="config key kernels"):
        choose_kernels("fast", "cpu", AVX2)


def test_cpu_flags_from_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16 amx_bf16\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert cpu_flags(str(x86)) == {"fpu", "avx2", "avx512_bf16", "amx_bf16"}  # the first CPU's
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")
    assert cpu_flags(str(arm)) == {"fp", "asimd", "bf16"}
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()
    assert AVX2.describe() == "AVX2 (no native bf16)"
    assert AMX.describe() == "AVX512 (amx_bf16)"


def test_threads_never_exceed_the_cores(monkeypatch, caplog):
    monkeypatch.setattr(hardware, "available_cores", lambda: 2)
    log = logging.getLogger("test-threads")
    with caplog.at_level(logging.INFO, logger="test-threads"):
        assert usable_threads(8, log) == 2
        assert usable_threads(1, log) == 1
    assert "8 given, but this process may run on 2 cores" in caplog.text


def test_openmp_waits_passively_only_when_cores_are_oversubscribed(monkeypatch):
    from bpnet.hardware import oversubscribed_openmp

    monkeypatch.setattr(hardware, "available_cores", lambda: 2)
    env = {}
    assert not oversubscribed_openmp(2, env) and env == {}  # --cores all on 2 cores: spinning stays
    assert oversubscribed_openmp(8, env) and env == {"OMP_WAIT_POLICY": "PASSIVE"}  # --cores 8
    user = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert not oversubscribed_openmp(8, user) and user == {"OMP_WAIT_POLICY": "ACTIVE"}  # the user's choice
