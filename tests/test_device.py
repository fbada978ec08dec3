"""facet_lib.device: one resolver, fail-fast on a requested but unusable GPU (run on CPU, CUDA faked where needed)."""

from __future__ import annotations

import pytest
import torch

from facet_lib import device as D
from facet_lib.errors import ConfigError


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(D.REQUIRE_GPU_ENV, raising=False)


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: f"Fake GPU {i}")
    monkeypatch.setattr(D, "driver_version", lambda: "driver 999.1, supports CUDA 99.0")
    monkeypatch.delenv(D.REQUIRE_GPU_ENV, raising=False)


def test_auto_without_cuda_is_cpu_and_printed_without_logging_setup(no_cuda, monkeypatch, capsys):
    monkeypatch.setattr(D._log, "hasHandlers", lambda: False)  # a plain step process: no logging configured
    assert D.resolve_device("auto") == torch.device("cpu")
    err = capsys.readouterr().err
    assert "facet: device: cpu (CUDA not available" in err and torch.__version__ in err


def test_explicit_cpu(no_cuda):
    assert D.resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_requested_gpu_without_cuda_fails_fast_with_versions(no_cuda, monkeypatch, name):
    monkeypatch.setattr(D, "driver_version", lambda: "no driver")
    with pytest.raises(D.DeviceUnavailableError) as e:
        D.resolve_device(name, what="train.device")
    msg = str(e.value)
    assert "\n" not in msg
    assert f"train.device={name!r}" in msg
    assert f"torch {torch.__version__}" in msg and "no driver" in msg
    cuda = torch.version.cuda
    assert (f"CUDA {cuda}" if cuda else "CPU-only build") in msg


def test_require_gpu_env_makes_auto_fail_but_explicit_cpu_wins_and_says_so(no_cuda, monkeypatch, caplog):
    monkeypatch.setenv(D.REQUIRE_GPU_ENV, "1")
    with pytest.raises(D.DeviceUnavailableError, match="FACET_REQUIRE_GPU is set"):
        D.resolve_device("auto")
    with caplog.at_level("INFO", logger="facet_lib.device"):
        assert D.resolve_device("cpu") == torch.device("cpu")
    assert "cpu (requested, overriding FACET_REQUIRE_GPU" in caplog.text


def test_require_gpu_argument_overrides_env(no_cuda, monkeypatch):
    monkeypatch.setenv(D.REQUIRE_GPU_ENV, "1")
    assert D.resolve_device("auto", require_gpu=False) == torch.device("cpu")
    monkeypatch.setenv(D.REQUIRE_GPU_ENV, "0")
    with pytest.raises(D.DeviceUnavailableError):
        D.resolve_device("auto", require_gpu=True)


@pytest.mark.parametrize("raw", ["maybe", "2"])
def test_bad_require_gpu_value(monkeypatch, raw):
    monkeypatch.setenv(D.REQUIRE_GPU_ENV, raw)
    with pytest.raises(ConfigError, match="FACET_REQUIRE_GPU"):
        D.gpu_required()


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "mps", "", None, 0])
def test_bad_names(no_cuda, bad):
    with pytest.raises(ConfigError, match=r"expected 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        D.resolve_device(bad, what="serve.device")


def test_with_cuda(fake_cuda, caplog):
    with caplog.at_level("INFO", logger="facet_lib.device"):
        assert D.resolve_device("auto") == torch.device("cuda", 0)
        assert D.resolve_device("cuda:1") == torch.device("cuda", 1)
    err = caplog.text
    assert "facet: device: cuda:1 (Fake GPU 1;" in err and "driver 999.1" in err
    with pytest.raises(D.DeviceUnavailableError, match="only 2 CUDA device"):
        D.resolve_device("cuda:2")


def test_printed_when_logging_would_drop_info(no_cuda, monkeypatch, capsys):
    monkeypatch.setattr(D._log, "isEnabledFor", lambda level: False)  # e.g. a root logger at WARNING (kfp's executor)
    D.resolve_device("cpu")
    assert "facet: device: cpu (requested" in capsys.readouterr().err


def test_logger_used_when_configured(no_cuda, caplog, capsys):
    with caplog.at_level("INFO", logger="facet_lib.device"):
        D.resolve_device("cpu")
    assert any("facet: device: cpu" in r.getMessage() for r in caplog.records)


def test_driver_version_is_one_phrase():
    v = D.driver_version()  # this machine: no NVIDIA driver → "no driver"; a GPU node: "driver 5xx..., supports CUDA"
    assert v == "no driver" or v.startswith("driver ")
    assert "\n" not in v
