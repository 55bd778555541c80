"""The shared training loop's parts: the learning-rate schedule and the EMA."""

import pytest
import torch

from app.training.loop import EMA, lr_at


def test_lr_warms_up_then_decays_to_a_tenth():
    assert lr_at(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(55, 100, 1.0, 10) == pytest.approx(0.55)
    assert lr_at(100, 100, 1.0, 10) == pytest.approx(0.1)
    assert all(lr_at(s, 100, 1.0, 10) >= lr_at(s + 1, 100, 1.0, 10) for s in range(10, 100))


def test_ema_follows_with_a_ramped_decay():
    model = torch.nn.Linear(2, 2, bias=False)
    ema = EMA(model, decay=0.999)
    with torch.no_grad():
        model.weight.fill_(1.0)
        ema.module.weight.fill_(0.0)
    ema.update(model, step=0)  # decay (1+0)/(10+0) = 0.1
    assert torch.allclose(ema.module.weight, torch.full((2, 2), 0.9))
    ema.update(model, step=10**6)  # decay capped at 0.999
    assert torch.allclose(ema.module.weight, torch.full((2, 2), 0.9 + 0.1 * 0.001))
