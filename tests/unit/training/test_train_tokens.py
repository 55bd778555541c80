"""The §3.4 trainers: a tiny VQ tokenizer, then the autoregressive and masked transformers on its tokens."""

from pathlib import Path

import pytest
import torch

from app.nets import load_module
from app.nets.token_transformer import CaptionedTokens, CaptionedTokensConfig, mask_ratio
from app.nets.vq import VQConfig, VQTokenizer
from app.pipelines.tokens import TokenFamily, TokenSettings
from app.training.cli import main
from app.training.tokens import masked_slots

TINY = ["--size", "tiny", "--resolution", "32", "--device", "cpu", "--warmup", "3", "--val-size", "16",
        "--no-progress", "--log-every", "5", "--val-every", "0"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tokens")
    main(["vq", *TINY, "--batch", "8", "--steps", "30", "--lr", "3e-3", "--out", str(out / "vq_tokenizer.safetensors"),
          "--ckpt-dir", str(out / "ckpt")])
    for kind, file in (("ar", "ar_transformer"), ("masked", "masked_transformer")):
        main([kind, *TINY, "--batch", "16", "--steps", "20", "--lr", "3e-3", "--bank", "64",
              "--tokenizer", str(out / "vq_tokenizer.safetensors"), "--out", str(out / f"{file}.safetensors"),
              "--ckpt-dir", str(out / "ckpt")])
    return out


def test_the_tokenizer_run_lowers_its_loss_and_records_its_ceiling(trained):
    tokenizer, extra = load_module(trained / "vq_tokenizer.safetensors", VQTokenizer, VQConfig)
    curve = [loss for _, loss in extra["loss_curve"]]
    assert curve[-1] < 0.8 * curve[0]
    assert extra["tokens_per_image"] == 64 and tokenizer.config.downsample_factor == 4
    assert extra["command"].startswith("python3 -m app.training vq")
    v = extra["validation"]
    assert v["psnr_db"] > 10 and 0 <= v["judge_all"] <= 1 and 0 <= v["pair_judge_all"] <= 1
    assert 1 <= v["codes_used"] <= tokenizer.codebook_size and v["perplexity"] >= 1
    assert bool(tokenizer.quantizer.initialised)  # the saved codebook is the trained one, not the random init


@pytest.mark.parametrize("file, family", [("ar_transformer", "autoregressive"), ("masked_transformer", "masked")])
def test_each_token_model_learns_and_samples_through_its_family(trained, file, family):
    model, extra = load_module(trained / f"{file}.safetensors", CaptionedTokens, CaptionedTokensConfig)
    curve = [loss for _, loss in extra["loss_curve"]]
    assert curve[-1] < curve[0]
    assert extra["family"] == family and extra["bank"] == 64 and extra["tokenizer"] == "vq_tokenizer.safetensors"
    assert model.transformer.config.grid == 8 and model.transformer.config.family == family
    assert extra["validation"]["val_bits_per_token"] < 1.05 * torch.log2(torch.tensor(64.0)).item()
    generator = TokenFamily.load(trained, family, "cpu")
    result = generator.generate(TokenSettings(family=family, prompt="a red circle left of a blue square", seed=1,
                                              rounds=4))
    assert result.images.shape == (1, 32, 32, 3)
    assert result.timings["network_forwards"] == (64 if family == "autoregressive" else 4)


def test_masked_training_hides_a_cosine_share_of_each_sample():
    tokens = torch.arange(64).repeat(4000, 1) % 10
    generator = torch.Generator().manual_seed(0)
    slots, masked = masked_slots(tokens, 99, generator)
    assert torch.equal(slots == 99, masked) and bool((masked.sum(1) >= 1).all())
    assert torch.equal(slots[~masked], tokens[~masked])
    # the share masked, ceil(cos(pi/2 u) * N) for u ~ U(0, 1), has mean 2/pi (plus half a token of rounding up)
    assert masked.float().mean().item() == pytest.approx(2 / torch.pi + 0.5 / 64, abs=0.02)
    assert mask_ratio(1.0) < 1e-12


def test_a_checkpoint_of_the_other_family_is_refused(trained, tmp_path):
    with pytest.raises(SystemExit, match="is a 'ar' checkpoint, not 'masked'"):
        main(["masked", *TINY, "--steps", "1", "--tokenizer", str(trained / "vq_tokenizer.safetensors"),
              "--resume", str(trained / "ckpt" / "ar-last.pt"), "--out", str(tmp_path / "m.safetensors")])
