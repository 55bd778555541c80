"""The training command: schedule, EMA, tiny real runs on the CPU, metadata, resume."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from app.cli import main as cli_main
from app.nets import VAE, DiT, DiTConfig, TextEncoder, TextEncoderConfig, VAEConfig, load_module, read_metadata
from app.nets.io import save_module
from app.training.cli import main
from app.training.image import TextToLatent
from app.training.loop import lr_at
from app.world.scenes import VOCAB
from tests.helpers.models import REPO_ROOT

REPO = REPO_ROOT
TINY = ["--size", "tiny", "--resolution", "32", "--batch", "8", "--device", "cpu", "--warmup", "3",
        "--val-size", "32", "--no-progress", "--log-every", "5"]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_training_modules_import_without_the_web_stack():
    code = ("import sys, app.training.cli, app.nets, app.world.scenes, app.measure.judge, app.diffusion.schedule; "
            "bad = [m for m in ('fastapi', 'pydantic', 'pydantic_settings', 'jinja2', 'plotly') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


@pytest.fixture(scope="module")
def tiny_vae_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vae") / "vae.safetensors"
    main(["vae", *TINY, "--steps", "30", "--lr", "3e-3", "--stats-size", "64", "--out", str(out),
          "--ckpt-dir", str(out.parent / "ckpt"), "--val-every", "0"])
    return out


def test_vae_run_lowers_the_loss_and_records_its_provenance(tiny_vae_file):
    vae, extra = load_module(tiny_vae_file, VAE, VAEConfig)
    curve = [loss for _, loss in extra["loss_curve"]]
    assert len(curve) == 6 and curve[-1] < 0.7 * curve[0]
    assert extra["steps_done"] == 30 and extra["device"] and extra["torch_version"] == torch.__version__
    assert extra["command"].startswith("python3 -m app.training vae") and "--steps 30" in extra["command"]
    assert extra["validation"]["psnr_db"] > 10 and 0.0 <= extra["validation"]["judge_all"] <= 1.0
    assert extra["recipe"]["kl_weight"] == 1e-5
    # the latent statistics travel in the weights, and match the metadata copy
    assert torch.allclose(vae.latent_scale, torch.tensor(extra["latent_scale"]))
    assert not torch.allclose(vae.latent_scale, torch.ones(4))


def test_decoder_run_changes_only_the_decoder_and_lowers_its_loss(tiny_vae_file, tmp_path):
    out = tmp_path / "vae.safetensors"
    main(["decoder", *TINY, "--steps", "30", "--lr", "2e-3", "--init", str(tiny_vae_file), "--out", str(out),
          "--ckpt-dir", str(tmp_path / "ckpt"), "--val-every", "0"])
    before, init = load_module(tiny_vae_file, VAE, VAEConfig)
    after, extra = load_module(out, VAE, VAEConfig)
    old, new = before.state_dict(), after.state_dict()
    unchanged = [k for k in old if torch.equal(old[k], new[k])]
    # the encoder and the latent statistics are exactly as they were, so denoisers on these latents stay valid
    assert {k for k in old if not k.startswith("decoder.")} <= set(unchanged)
    assert not any(k.startswith("decoder.") and k.endswith("weight") for k in unchanged)
    # the same held-out scenes, drawn better
    assert extra["validation"]["psnr_db"] > init["validation"]["psnr_db"]
    assert extra["init"] == str(tiny_vae_file) and extra["command"].startswith("python3 -m app.training decoder")
    assert 0.0 <= extra["validation"]["moving_circle_frames_round"] <= 1.0
    assert extra["latent_scale"] == before.latent_scale.tolist()


def test_denoiser_run_writes_both_files_with_their_recipe(tiny_vae_file, tmp_path):
    out = tmp_path / "denoiser.safetensors"
    main(["denoiser", *TINY, "--steps", "30", "--lr", "2e-3", "--vae", str(tiny_vae_file), "--out", str(out),
          "--ckpt-dir", str(tmp_path / "ckpt"), "--val-every", "15"])
    dit, extra = load_module(out, DiT, DiTConfig)
    text, text_extra = load_module(tmp_path / "text_encoder.safetensors", TextEncoder, TextEncoderConfig)
    curve = [loss for _, loss in extra["loss_curve"]]
    assert curve[-1] < curve[0]
    assert extra["prediction"] == "v" and extra["schedule"]["kind"] == "scaled_linear"
    assert extra["text_encoder"] == "text_encoder.safetensors" and extra["steps_done"] == 30
    assert "val_loss" in extra["validation"]
    assert dit.config.latent_size == 4 and dit.config.context_dim == text.config.width
    assert text_extra["vocab"] == list(VOCAB) and text.config.vocab_size == len(VOCAB)
    # the pair runs end to end, and the saved weights are the trained (not the fresh, all-zero) output
    pair = TextToLatent(text.config, dit.config)
    pair.text, pair.dit = text, dit
    v = pair(torch.randn(2, 4, 4, 4), torch.tensor([10, 900]), torch.zeros(2, 12, dtype=torch.long))
    assert v.shape == (2, 4, 4, 4) and v.abs().max() > 0


def test_a_warm_start_keeps_the_earlier_weights_and_grows_the_vocabulary(tiny_vae_file, tmp_path):
    earlier = tmp_path / "earlier"
    main(["denoiser", *TINY, "--steps", "4", "--vae", str(tiny_vae_file), "--out", str(earlier / "denoiser.safetensors"),
          "--ckpt-dir", str(tmp_path / "ckpt0"), "--val-every", "0"])
    # As if trained before the two-shape words existed: the first 25 rows of the embedding only.
    text, text_extra = load_module(earlier / "text_encoder.safetensors", TextEncoder, TextEncoderConfig)
    small = TextEncoder(TextEncoderConfig(**{**text.config.to_dict(), "vocab_size": 25}))
    state = text.state_dict()
    state["token_embed.weight"] = state["token_embed.weight"][:25]
    small.load_state_dict(state)
    save_module(earlier / "text_encoder.safetensors", small, small.config, text_extra)

    out = tmp_path / "denoiser.safetensors"
    main(["denoiser", *TINY, "--steps", "3", "--lr", "0", "--pair-share", "0.5", "--vae", str(tiny_vae_file),
          "--warm-start", str(earlier / "denoiser.safetensors"), "--out", str(out), "--ckpt-dir", str(tmp_path / "c"),
          "--val-every", "0"])
    grown, extra = load_module(tmp_path / "text_encoder.safetensors", TextEncoder, TextEncoderConfig)
    assert grown.config.vocab_size == len(VOCAB) > 25
    assert torch.equal(grown.token_embed.weight[:25], small.token_embed.weight)  # lr 0: nothing moved
    assert not torch.equal(grown.token_embed.weight[25:], torch.zeros_like(grown.token_embed.weight[25:]))
    dit_before, _ = load_module(earlier / "denoiser.safetensors", DiT, DiTConfig)
    dit_after, dit_extra = load_module(out, DiT, DiTConfig)
    assert all(torch.equal(a, b) for a, b in zip(dit_before.state_dict().values(), dit_after.state_dict().values()))
    assert dit_extra["warm_start"]["weights"] == str(earlier / "denoiser.safetensors")
    assert dit_extra["pair_share"] == 0.5
    assert {"val_loss", "pairs_val_loss"} <= set(dit_extra["validation"])


def test_resume_continues_the_step_count_and_reproduces_the_run(tiny_vae_file, tmp_path):
    args = ["vae", *TINY, "--steps", "12", "--stats-size", "32", "--val-every", "0"]
    straight = tmp_path / "straight.safetensors"
    cli_main(["train", *args, "--out", str(straight), "--ckpt-dir", str(tmp_path / "a"),
              "--ckpt-every", "8", "--keep-checkpoints"])
    ckpt = tmp_path / "a" / "vae-step0000008.pt"
    assert ckpt.is_file() and torch.load(ckpt, weights_only=False)["step"] == 8
    resumed = tmp_path / "resumed.safetensors"
    cli_main(["train", *args, "--out", str(resumed), "--ckpt-dir", str(tmp_path / "b"), "--resume", str(ckpt)])
    meta = read_metadata(resumed)
    assert meta["extra"]["steps_done"] == 12
    assert meta["extra"]["command"].startswith("diffusion-lab train vae")
    a, _ = load_module(straight, VAE, VAEConfig)
    b, _ = load_module(resumed, VAE, VAEConfig)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-6), name


def test_max_minutes_stops_cleanly_and_saves(tmp_path):
    out = tmp_path / "vae.safetensors"
    main(["vae", *TINY, "--steps", "1000", "--max-minutes", "0.0001", "--stats-size", "32", "--out", str(out),
          "--ckpt-dir", str(tmp_path / "ckpt"), "--val-every", "0"])
    extra = read_metadata(out)["extra"]
    assert extra["stopped_early"] and extra["steps_done"] < 1000
    assert (tmp_path / "ckpt" / "vae-last.pt").is_file()


def test_lr_can_follow_a_time_budget():
    assert lr_at(20, 1000, 1.0, 10, time_fraction=1.0) == pytest.approx(0.1)
    assert lr_at(20, 1000, 1.0, 10, time_fraction=0.5) == pytest.approx(0.55)
    with pytest.raises(SystemExit, match="--max-minutes"):
        main(["vae", *TINY, "--steps", "5", "--lr-by-time", "--out", "/nonexistent/x.safetensors"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clean_command_line_error(tmp_path):
    with pytest.raises(SystemExit, match="no CUDA GPU is available"):
        main(["vae", "--device", "cuda", "--out", str(tmp_path / "vae.safetensors")])


def test_the_package_runs_as_the_training_command():
    out = subprocess.run([sys.executable, "-m", "app.training", "video", "--help"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("usage: python3 -m app.training video") and "--init-dit" in out
