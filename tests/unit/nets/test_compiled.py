"""CompiledBuckets: eager until a shape is warm, then the compiled graph on the batch padded to its bucket."""

import pytest
import torch
from torch import nn

from app.nets.compiled import AOTInductor, CompiledBuckets, TorchCompile

pytestmark = pytest.mark.usefixtures("one_thread")


class RowWise(nn.Module):
    """A small network whose rows do not mix, with a config as the served networks have."""

    config = ("width", 8)

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.LayerNorm(32), nn.Linear(32, 8))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(x) * t[:, None]


@pytest.fixture(scope="module", params=["aoti", "torch.compile"])
def warmed(request, tmp_path_factory):
    torch.manual_seed(0)
    module = RowWise().eval()
    compiler = AOTInductor(tmp_path_factory.mktemp("packages"), "rowwise") if request.param == "aoti" else TorchCompile()
    wrapped = CompiledBuckets(module, [2, 4], compiler)
    with torch.no_grad():
        before = wrapped(torch.randn(3, 8), torch.ones(3))
    assert wrapped.compiled_calls == 0 and before.shape == (3, 8)  # not warm: eager
    seconds = wrapped.warm((torch.zeros(4, 8), torch.zeros(4)))
    return module, wrapped, seconds


def test_a_warm_bucket_answers_smaller_batches_padded_to_it(warmed):
    module, wrapped, seconds = warmed
    x, t = torch.randn(3, 8), torch.tensor([1.0, 2.0, 0.5])
    with torch.no_grad():
        got, want = wrapped(x, t), module(x, t)
    assert wrapped.compiled_calls == 1 and seconds > 0
    assert got.shape == want.shape == (3, 8)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert wrapped.ready_buckets == [4] and wrapped.warm_seconds[4] == round(seconds, 3)


def test_a_full_bucket_of_expanded_rows_is_answered_right(warmed):
    module, wrapped, _ = warmed
    x, t = torch.randn(1, 8).expand(4, 8), torch.tensor([1.0, 2.0, 3.0, 4.0])  # stride 0 along the batch
    with torch.no_grad():
        torch.testing.assert_close(wrapped(x, t), module(x, t), rtol=1e-5, atol=1e-5)


def test_shapes_not_warm_run_eagerly(warmed):
    _, wrapped, _ = warmed
    calls = wrapped.compiled_calls
    with torch.no_grad():
        wrapped(torch.randn(2, 8), torch.ones(2))  # bucket 2 was never warmed
        wrapped(torch.randn(5, 8), torch.ones(5))  # above the largest bucket
    assert wrapped.compiled_calls == calls


def test_the_wrapper_stands_for_the_network(warmed):
    module, wrapped, _ = warmed
    assert wrapped.config is module.config
    assert sum(p.numel() for p in wrapped.parameters()) == sum(p.numel() for p in module.parameters())
    with pytest.raises(ValueError, match="not a bucket"):
        wrapped.warm((torch.zeros(3, 8), torch.zeros(3)))


def test_an_aot_package_is_kept_and_loaded_by_the_next_start(tmp_path):
    torch.manual_seed(1)
    module = RowWise().eval()
    options = {"freezing": True}
    compiler = AOTInductor(tmp_path, "rowwise", options)
    args = (torch.zeros(2, 8), torch.zeros(2))
    first = CompiledBuckets(module, [2], compiler).warm(args)
    (package,) = tmp_path.glob("rowwise-*.pt2")
    assert compiler.package_path(module, args) == package and options == {"freezing": True}
    again = CompiledBuckets(module, [2], AOTInductor(tmp_path, "rowwise", options))
    assert again.warm(args) < first / 3  # loaded, not compiled
    x = torch.randn(2, 8)
    with torch.no_grad():
        torch.testing.assert_close(again(x, torch.ones(2)), module(x, torch.ones(2)), rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        module.net[0].weight.mul_(2)  # other weights: another package
    assert AOTInductor(tmp_path, "rowwise", options).package_path(module, args) != package
