"""bpnet.runner.run_rule: user mistakes and machine faults end in one error line, bugs keep tracebacks."""

import errno
import logging
import os
from types import SimpleNamespace

import pytest

from bpnet.errors import BPNetInputError
from bpnet.runner import run_rule


def _smk(tmp_path):
    return SimpleNamespace(log=[str(tmp_path / "x.log")], rule="x")


def _error_lines(tmp_path):
    logging.getLogger("bpnet").handlers.clear()  # close the file handler
    text = (tmp_path / "x.log").read_text()
    return [line for line in text.splitlines() if " ERROR " in line], text


def _raiser(exc):
    def main(smk, log):
        raise exc
    return main


TARGET = "/data/results/x/out.h5"


@pytest.mark.parametrize("code, what", [
    (errno.ENOSPC, "disk full"),
    (errno.EACCES, "permission denied"),
    (errno.EPERM, "permission denied"),
    (errno.EROFS, "read-only file system"),
    (getattr(errno, "EDQUOT", errno.ENOSPC), None),
])
def test_environment_oserror_is_one_line(tmp_path, capsys, code, what):
    exc = OSError(code, os.strerror(code), TARGET)
    with pytest.raises(SystemExit) as info:
        run_rule(_smk(tmp_path), _raiser(exc))
    assert info.value.code == 1
    errors, text = _error_lines(tmp_path)
    assert len(errors) == 1, text
    line = errors[0]
    assert "error: " in line and TARGET in line and "rule x" in line and os.strerror(code) in line
    if what:
        assert what in line
    assert "Traceback" not in text
    assert TARGET in capsys.readouterr().err


def test_memory_error_is_one_line(tmp_path):
    with pytest.raises(SystemExit) as info:
        run_rule(_smk(tmp_path), _raiser(MemoryError()))
    assert info.value.code == 1
    errors, text = _error_lines(tmp_path)
    assert len(errors) == 1, text
    assert "rule x" in errors[0] and "--set-resources x:mem_mb=" in errors[0]


def test_input_error_is_one_line(tmp_path):
    with pytest.raises(SystemExit) as info:
        run_rule(_smk(tmp_path), _raiser(BPNetInputError(f"{TARGET}: bad")))
    assert info.value.code == 1
    errors, _ = _error_lines(tmp_path)
    assert len(errors) == 1 and TARGET in errors[0]


@pytest.mark.parametrize("exc", [
    RuntimeError("a bug"),
    FileNotFoundError(errno.ENOENT, "No such file or directory", TARGET),
    OSError(errno.EIO, "Input/output error", TARGET),
])
def test_other_exceptions_propagate(tmp_path, exc):
    with pytest.raises(type(exc)):
        run_rule(_smk(tmp_path), _raiser(exc))


def test_a_finished_rule_logs_its_time_and_peak_memory(tmp_path):
    """The peak is the kernel's high-water mark: 200 MB touched once shows in it afterwards."""
    import numpy as np

    def main(smk, log):
        block = np.ones(200 * 2**20, dtype=np.uint8)  # touched: resident
        del block

    run_rule(_smk(tmp_path), main)
    logging.getLogger("bpnet").handlers.clear()
    line = [x for x in (tmp_path / "x.log").read_text().splitlines() if "rule x finished in" in x][0]
    peak_mb = int(line.rsplit("peak memory ", 1)[1].split()[0])
    assert peak_mb >= 200


def test_file_only_lines_reach_the_log_file_but_not_the_console(tmp_path, capfd):
    from bpnet.progress import FILE_ONLY
    from bpnet.runner import get_logger

    log = get_logger(str(tmp_path / "rule.log"), "test-file-only")
    log.info("headline table")
    log.info("per-task line", extra=FILE_ONLY)
    for h in log.handlers:
        h.flush()
    err = capfd.readouterr().err
    text = (tmp_path / "rule.log").read_text()
    assert "headline table" in err and "per-task line" not in err
    assert "headline table" in text and "per-task line" in text
