"""The networks: shapes, the adaLN-Zero identity, the null caption, masks, and the weights files."""

import pytest
import torch

from app.nets import (
    DIT_SIZES,
    TEXT_SIZES,
    VAE,
    VAE_SIZES,
    DiT,
    DiTConfig,
    TextEncoder,
    TextEncoderConfig,
    VAEConfig,
    WeightsError,
    load_module,
    read_metadata,
    save_module,
)
from app.nets.dit import DiTBlock, sincos_2d
from app.nets.vae import kl_divergence

torch.manual_seed(0)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_vae(f: int = 8, c_z: int = 4) -> VAE:
    levels = {4: 3, 8: 4}[f]
    return VAE(VAE_SIZES["tiny"](channel_mult=(1, 2, 2, 2)[:levels], latent_channels=c_z))


def tokens(*rows: list[int], length: int = 12) -> torch.Tensor:
    out = torch.zeros(len(rows), length, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return out


# ---------------------------------------------------------------------------------------------- VAE


@pytest.mark.parametrize("f,c_z", [(4, 4), (8, 4), (4, 16), (8, 16)])
def test_vae_latent_shape_follows_f_and_c_z(f, c_z):
    vae = tiny_vae(f, c_z)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    mean, logvar = vae.encode(x)
    assert vae.config.downsample_factor == f
    assert mean.shape == logvar.shape == (2, c_z, 32 // f, 32 // f)
    assert vae.sample_latent(x).shape == mean.shape
    assert vae.decode(mean).shape == (2, 3, 32, 32)
    x_hat, m, lv = vae(x)
    assert x_hat.shape == x.shape and m.shape == mean.shape


def test_vae_sample_latent_is_seeded_and_centred_on_the_mean():
    vae = tiny_vae()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    a = vae.sample_latent(x, torch.Generator().manual_seed(3))
    b = vae.sample_latent(x, torch.Generator().manual_seed(3))
    c = vae.sample_latent(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    mean, logvar = vae.encode(x)
    std = torch.exp(0.5 * logvar)
    assert ((a - mean).abs() <= 6 * std).all()


def test_latent_stats_make_unit_variance_and_normalize_inverts():
    vae = tiny_vae()
    z = torch.randn(64, 4, 4, 4) * torch.tensor([0.5, 2.0, 1.0, 3.0]).view(1, 4, 1, 1) + 1.5
    vae.set_latent_stats(z)
    zn = vae.normalize(z)
    per_channel = zn.transpose(0, 1).reshape(4, -1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(4), atol=1e-5)
    assert torch.allclose(per_channel.std(1), torch.ones(4), atol=1e-5)
    assert torch.allclose(vae.denormalize(zn), z, atol=1e-5)


def test_kl_is_zero_for_the_prior_and_positive_otherwise():
    zero = torch.zeros(2, 4, 2, 2)
    assert kl_divergence(zero, zero).item() == 0.0
    assert kl_divergence(zero + 1.0, zero).item() == pytest.approx(0.5)
    assert kl_divergence(zero, zero - 2.0).item() > 0


def test_vae_small_is_in_its_parameter_budget():
    n = sum(p.numel() for p in VAE(VAE_SIZES["small"]()).parameters())
    assert 1_000_000 <= n <= 2_000_000


# ---------------------------------------------------------------------------------------------- text


def test_text_encoder_shapes_and_mask():
    enc = TextEncoder(TEXT_SIZES["tiny"](vocab_size=20))
    ctx, mask = enc(tokens([1, 5, 7], [1, 2, 3, 4, 5, 6]))
    assert ctx.shape == (2, 12, 32) and mask.shape == (2, 12) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [3, 6]


def test_empty_caption_maps_to_the_learned_null_context():
    enc = TextEncoder(TEXT_SIZES["tiny"](vocab_size=20))
    ctx, mask = enc(tokens([], [1, 5, 7]))
    assert torch.equal(ctx[0], enc.null_context)
    assert mask[0].all()  # the null context is never masked away
    assert (ctx[0] - ctx[1]).abs().max() > 0.1


def test_padding_does_not_change_real_positions():
    enc = TextEncoder(TEXT_SIZES["tiny"](vocab_size=20)).eval()
    long, _ = enc(tokens([1, 5, 7], length=12))
    short, _ = enc(tokens([1, 5, 7], length=5))
    assert torch.allclose(long[:, :3], short[:, :3], atol=1e-5)


# ---------------------------------------------------------------------------------------------- DiT


def dit_inputs(cfg: DiTConfig, b: int = 2):
    x = torch.randn(b, cfg.latent_channels, cfg.latent_size, cfg.latent_size)
    t = torch.randint(0, 1000, (b,))
    ctx = torch.randn(b, 12, cfg.context_dim)
    mask = torch.ones(b, 12, dtype=torch.bool)
    mask[0, 4:] = False
    return x, t, ctx, mask


@pytest.mark.parametrize("patch,c", [(1, 4), (2, 4), (1, 16)])
def test_dit_output_shape(patch, c):
    cfg = DIT_SIZES["tiny"](patch=patch, latent_channels=c)
    model = DiT(cfg)
    for p in model.final.parameters():  # make the output non-trivial
        torch.nn.init.normal_(p, std=0.1)
    out = model(*dit_inputs(cfg))
    assert out.shape == (2, c, 8, 8)
    assert out.abs().max() > 0


def test_fresh_dit_block_is_the_identity_and_trained_one_is_not():
    block = DiT(DIT_SIZES["tiny"]()).blocks[0]
    x, c = torch.randn(2, 64, 32), torch.randn(2, 32)
    ctx, mask = torch.randn(2, 12, 32), torch.ones(2, 12, dtype=torch.bool)
    assert torch.equal(block(x, c, ctx, mask), x)
    torch.nn.init.normal_(block.adaLN[-1].weight, std=0.1)
    assert not torch.allclose(block(x, c, ctx, mask), x)


def test_fresh_dit_predicts_zero():
    cfg = DIT_SIZES["tiny"]()
    assert torch.equal(DiT(cfg)(*dit_inputs(cfg)), torch.zeros(2, 4, 8, 8))


def test_masked_context_positions_are_ignored():
    cfg = DIT_SIZES["tiny"]()
    model = DiT(cfg)
    for m in model.modules():  # open the gates
        if isinstance(m, DiTBlock):
            torch.nn.init.normal_(m.adaLN[-1].weight, std=0.1)
    torch.nn.init.normal_(model.final.linear.weight, std=0.1)
    x, t, ctx, mask = dit_inputs(cfg)
    changed = ctx.clone()
    changed[0, 4:] += 5.0  # only masked positions of sample 0
    assert torch.allclose(model(x, t, ctx, mask), model(x, t, changed, mask), atol=1e-5)
    changed[0, 0] += 5.0  # a real position
    assert not torch.allclose(model(x, t, ctx, mask), model(x, t, changed, mask), atol=1e-4)


def test_sincos_positions_are_distinct_and_bounded():
    pos = torch.from_numpy(sincos_2d(32, 8))
    assert pos.shape == (64, 32)
    assert pos.abs().max() <= 1.0
    assert torch.cdist(pos, pos).add(torch.eye(64)).min() > 0.1


# ---------------------------------------------------------------------------------------------- weights files


@pytest.mark.parametrize("kind", ["vae", "text", "dit"])
def test_save_load_round_trip(tmp_path, kind):
    if kind == "vae":
        model, cls, cfg_cls, inputs = tiny_vae(), VAE, VAEConfig, (torch.rand(2, 3, 32, 32),)
        model.set_latent_stats(torch.randn(8, 4, 4, 4) * 3 + 1)
        run = lambda m, x: m.decode_from_diffusion(m.encode_for_diffusion(x))  # noqa: E731
    elif kind == "text":
        model, cls, cfg_cls = TextEncoder(TEXT_SIZES["tiny"](vocab_size=20)), TextEncoder, TextEncoderConfig
        inputs = (tokens([1, 2, 3], []),)
        run = lambda m, tok: m(tok)[0]  # noqa: E731
    else:
        model, cls, cfg_cls = DiT(DIT_SIZES["tiny"](patch=2)), DiT, DiTConfig
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.05)
        inputs = dit_inputs(model.config)
        run = lambda m, *a: m(*a)  # noqa: E731
    model.eval()
    path = save_module(tmp_path / "m.safetensors", model, model.config, {"latent_scale": [1.5], "note": "x"})
    loaded, extra = load_module(path, cls, cfg_cls)
    assert loaded.config == model.config
    assert extra == {"latent_scale": [1.5], "note": "x"}
    assert read_metadata(path)["class"] == cls.__name__
    with torch.no_grad():
        assert torch.equal(run(loaded, *inputs), run(model, *inputs))


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(WeightsError, match="nope.safetensors"):
        load_module(missing, VAE, VAEConfig)
    path = save_module(tmp_path / "vae.safetensors", tiny_vae(), tiny_vae().config)
    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.raises(WeightsError, match="vae.safetensors"):
        load_module(path, VAE, VAEConfig)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="garbage.safetensors"):
        load_module(garbage, VAE, VAEConfig)


def test_loading_into_the_wrong_class_is_refused(tmp_path):
    path = save_module(tmp_path / "dit.safetensors", DiT(DIT_SIZES["tiny"]()), DIT_SIZES["tiny"]())
    with pytest.raises(WeightsError, match="dit.safetensors.*DiT"):
        load_module(path, VAE, VAEConfig)


def test_dit_accepts_a_scalar_timestep():
    cfg = DIT_SIZES["tiny"]()
    model = DiT(cfg)
    torch.nn.init.normal_(model.final.linear.weight, std=0.1)
    torch.nn.init.normal_(model.final.adaLN[-1].weight, std=0.1)
    x, _, ctx, mask = dit_inputs(cfg)
    assert torch.equal(model(x, 700, ctx, mask), model(x, torch.tensor([700, 700]), ctx, mask))
