"""The token transformer: causal reading for the autoregressive family, full for the masked one, the KV cache."""

import pytest
import torch

from app.nets.token_transformer import TOKEN_SIZES, KVCache, TokenTransformer, mask_ratio


def model(causal: bool) -> TokenTransformer:
    torch.manual_seed(0)
    return TokenTransformer(TOKEN_SIZES["tiny"](codebook_size=16, grid=4, causal=causal)).eval()


def caption(b: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return torch.randn(b, 5, 32), torch.tensor([[True, True, True, False, False]] * b)


def test_a_causal_slot_never_sees_the_slots_after_it():
    net, (context, keep) = model(True), caption()
    slots = torch.randint(0, 16, (1, 16))
    changed = slots.clone()
    changed[0, 9:] = (changed[0, 9:] + 1) % 16
    before, after = net(slots, context, keep), net(changed, context, keep)
    assert torch.allclose(before[:, :9], after[:, :9], atol=1e-6)
    assert not torch.allclose(before[:, 9:], after[:, 9:])


def test_a_masked_slot_sees_every_slot():
    net, (context, keep) = model(False), caption()
    slots = torch.randint(0, 16, (1, 16))
    changed = slots.clone()
    changed[0, 15] = 16  # the mask token
    assert not torch.allclose(net(slots, context, keep)[:, 0], net(changed, context, keep)[:, 0])


def test_the_kv_cache_gives_the_teacher_forced_logits_one_slot_at_a_time_or_in_chunks():
    net, (context, keep) = model(True), caption(2)
    tokens = torch.randint(0, 16, (2, 16))
    slots = net.start_slots(tokens)
    assert slots[:, 0].tolist() == [16, 16] and torch.equal(slots[:, 1:], tokens[:, :-1])
    full = net(slots, context, keep)
    cache = KVCache(net.config.depth)
    steps = torch.cat([net(slots[:, i:i + 1], context, keep, cache) for i in range(16)], dim=1)
    assert cache.length == 16
    assert torch.allclose(steps, full, atol=1e-5)
    cache = KVCache(net.config.depth)
    chunks = torch.cat([net(slots[:, :5], context, keep, cache), net(slots[:, 5:], context, keep, cache)], dim=1)
    assert torch.allclose(chunks, full, atol=1e-5)


def test_the_caption_changes_the_prediction():
    net, (context, keep) = model(True), caption()
    slots = torch.randint(0, 16, (1, 16))
    assert not torch.allclose(net(slots, context, keep), net(slots, -context, keep))


def test_maskgits_cosine_schedule_runs_from_all_masked_to_none():
    assert mask_ratio(0.0) == 1.0
    assert abs(mask_ratio(1.0)) < 1e-12
    assert mask_ratio(0.5) == pytest.approx(2 ** -0.5)
    ratios = mask_ratio(torch.linspace(0, 1, 9))
    assert bool((ratios[1:] <= ratios[:-1]).all())
