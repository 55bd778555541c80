"""The space-time DiT: a fresh factorised model is the image model frame by frame; joint attention mixes frames."""

import pytest
import torch

from app.nets import DIT_SIZES, DiT
from app.nets.video_dit import VideoDiT, VideoDiTConfig, sincos_1d

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def image_dit() -> DiT:
    """A tiny image DiT whose zero-initialised gates are opened, so its output depends on everything."""
    torch.manual_seed(0)
    dit = DiT(DIT_SIZES["tiny"](latent_size=4))
    with torch.no_grad():
        for name, p in dit.named_parameters():
            if "adaLN" in name or name.startswith("final."):
                p.normal_(std=0.05)
    return dit.eval()


def inputs(b: int, f: int, dit: DiT, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    c = dit.config
    x = torch.randn(b, f, c.latent_channels, c.latent_size, c.latent_size, generator=g)
    context = torch.randn(b, 5, c.context_dim, generator=g)
    mask = torch.tensor([[True, True, True, False, False]] * b)
    return x, torch.tensor([10, 700][:b]), context, mask


@torch.no_grad()
def per_frame(image_dit: DiT, x, t, context, mask) -> torch.Tensor:
    return torch.stack([image_dit(x[:, k], t, context, mask) for k in range(x.shape[1])], dim=1)


@torch.no_grad()
def test_fresh_factorised_model_is_the_image_model_frame_by_frame(image_dit):
    video = VideoDiT.from_image_dit(image_dit, frames=6).eval()
    x, t, context, mask = inputs(2, 6, image_dit)
    out = video(x, t, context, mask)
    expected = per_frame(image_dit, x, t, context, mask)
    assert out.shape == (2, 6, 4, 4, 4)
    assert expected.abs().mean() > 0.01  # not trivially zero
    assert torch.allclose(out, expected, atol=1e-4)
    # and it holds for clips shorter than the longest one
    assert torch.allclose(video(x[:, :3], t, context, mask), expected[:, :3], atol=1e-4)


@torch.no_grad()
def test_opened_temporal_gates_let_frames_see_each_other(image_dit):
    video = VideoDiT.from_image_dit(image_dit, frames=4).eval()
    for name, p in video.named_parameters():
        if name.startswith("temporal.") and "adaLN" in name:
            p.normal_(std=0.1, generator=torch.Generator().manual_seed(1))
    x, t, context, mask = inputs(2, 4, image_dit)
    out = video(x, t, context, mask)
    x2 = x.clone()
    x2[:, 3] += 1.0  # change only the last frame
    out2 = video(x2, t, context, mask)
    assert (out2[:, 0] - out[:, 0]).abs().max() > 1e-4  # frame 0 saw it
    assert not torch.allclose(out, per_frame(image_dit, x, t, context, mask), atol=1e-3)


@torch.no_grad()
def test_joint_attention_differs_from_per_frame_and_mixes_frames(image_dit):
    joint = VideoDiT.from_image_dit(image_dit, frames=4, attention="joint").eval()
    assert not hasattr(joint, "temporal")
    extra = sum(p.numel() for p in joint.parameters()) - sum(p.numel() for p in image_dit.parameters())
    assert extra == 4 * image_dit.config.width  # only the frame embedding, which starts at zero
    assert joint.frame_embed.abs().max() == 0
    x, t, context, mask = inputs(2, 4, image_dit)
    out = joint(x, t, context, mask)
    assert out.shape == x.shape
    assert (out - per_frame(image_dit, x, t, context, mask)).abs().max() > 1e-3
    x2 = x.clone()
    x2[:, 3] += 1.0
    assert (joint(x2, t, context, mask)[:, 0] - out[:, 0]).abs().max() > 1e-4


@pytest.mark.parametrize("attention", ["factorised", "joint"])
def test_more_frames_than_the_model_knows_raise(image_dit, attention):
    video = VideoDiT.from_image_dit(image_dit, frames=4, attention=attention)
    x, t, context, mask = inputs(1, 5, image_dit)
    with pytest.raises(ValueError, match="up to 4"):
        video(x, t[:1], context, mask)


def test_unknown_attention_kind_is_refused():
    with pytest.raises(ValueError, match="attention must be one of"):
        VideoDiTConfig(attention="axial")


def test_gradient_reaches_every_temporal_block(image_dit):
    video = VideoDiT.from_image_dit(image_dit, frames=4).train()
    x, t, context, mask = inputs(2, 4, image_dit)
    video(x, t, context, mask).square().mean().backward()
    for k, block in enumerate(video.temporal):
        # at zero gates only the gate itself gets gradient: that is how training opens the block
        assert block.adaLN[-1].weight.grad.abs().sum() > 0, k
    assert video.image.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    with torch.no_grad():  # once a gate is open, the block's attention learns too
        for block in video.temporal:
            block.adaLN[-1].bias.fill_(0.1)
    video.zero_grad()
    video(x, t, context, mask).square().mean().backward()
    for k, block in enumerate(video.temporal):
        assert block.attn.qkv.weight.grad.abs().sum() > 0, k


def test_tokens_and_config_round_trip(image_dit):
    config = VideoDiTConfig(latent_size=8, patch=1, frames=8)
    assert config.tokens() == {"per_frame": 64, "per_clip": 512}
    assert config.tokens(2) == {"per_frame": 64, "per_clip": 128}
    assert VideoDiTConfig(latent_size=8, patch=2, frames=4).tokens() == {"per_frame": 16, "per_clip": 64}
    video = VideoDiT.from_image_dit(image_dit, frames=3, attention="joint")
    assert video.config.image_config() == image_dit.config
    assert VideoDiTConfig(**video.config.to_dict()) == video.config
    assert video.config.tokens() == {"per_frame": 16, "per_clip": 48}


def test_frame_positions_are_distinct_sine_cosine_rows():
    pos = torch.from_numpy(sincos_1d(32, 8))
    assert pos.shape == (8, 32)
    assert torch.allclose(pos[0, :16], torch.zeros(16)) and torch.allclose(pos[0, 16:], torch.ones(16))
    assert torch.cdist(pos, pos).add(torch.eye(8)).min() > 0.1
