"""The device a name asks for, and its name."""

import pytest
import torch

from app.nets.device import device_name, pick_device


def test_auto_is_cuda_when_present_else_cpu():
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_runtime_error():
    with pytest.raises(RuntimeError, match="no CUDA GPU is available"):
        pick_device("cuda")


def test_the_cpu_has_a_name():
    assert device_name(torch.device("cpu"))
