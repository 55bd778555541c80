"""`python3 -m app.training video`: a 3-step CPU run from the tiny image model, its files, provenance and resume."""

import numpy as np
import pytest
import torch

from app.diffusion.schedule import NoiseSchedule
from app.nets import VAE, TextEncoder, TextEncoderConfig, VAEConfig, load_module, read_metadata
from app.nets.video_dit import VideoDiT, VideoDiTConfig
from app.pipelines.video import ClipSettings, VideoPipeline
from app.training.cli import main
from app.training.clip_bank import encode_clips, load_or_build_bank, select
from app.training.video import _merge, checkpoint_schedule, draw_odds
from app.world.clips import reverse_clips, sample_clips
from app.world.scenes import VOCAB

pytestmark = pytest.mark.usefixtures("one_thread")


def video_args(model_dir, out_dir, steps: int) -> list[str]:
    return ["video", "--resolution", "32", "--batch", "4", "--device", "cpu", "--warmup", "1", "--steps", str(steps),
            "--val-size", "8", "--val-every", "0", "--no-progress", "--log-every", "1",
            "--bank-size", "16", "--bank", str(out_dir / "bank.pt"),
            "--vae", str(model_dir / "vae.safetensors"), "--init-dit", str(model_dir / "denoiser.safetensors"),
            "--init-text", str(model_dir / "text_encoder.safetensors"),
            "--out", str(out_dir / "video_denoiser.safetensors"), "--ckpt-dir", str(out_dir / "ckpt")]


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("video-run")
    main(video_args(tiny_model_dir, out, 3))
    return out


def test_a_short_run_writes_both_files_with_their_provenance(trained, tiny_model_dir):
    dit, extra = load_module(trained / "video_denoiser.safetensors", VideoDiT, VideoDiTConfig)
    text, text_extra = load_module(trained / "video_text_encoder.safetensors", TextEncoder, TextEncoderConfig)
    assert extra["steps_done"] == 3 and extra["steps_planned"] == 3 and not extra["stopped_early"]
    assert extra["command"].startswith("python3 -m app.training video") and "--steps 3" in extra["command"]
    assert extra["prediction"] == "v" and extra["schedule"]["kind"] == "scaled_linear"
    assert extra["text_encoder"] == "video_text_encoder.safetensors"
    assert extra["initialised_from"] == [str(tiny_model_dir / "denoiser.safetensors"),
                                         str(tiny_model_dir / "text_encoder.safetensors")]
    assert extra["bank"]["clips"] == 16 and extra["recipe"]["attention"] == "factorised"
    assert extra["wall_time_s"] >= 0 and extra["device"] and extra["torch_version"] == torch.__version__
    assert "val_loss" in extra["validation"] and np.isfinite(extra["validation"]["val_loss"])
    assert [s for s, _ in extra["loss_curve"]] == [1, 2, 3]
    assert extra["param_count"] == sum(p.numel() for p in dit.parameters())
    assert dit.config.frames == 8 and dit.config.latent_size == 4
    assert text_extra["vocab"] == list(VOCAB) and text_extra["denoiser"] == "video_denoiser.safetensors"
    assert text.config.width == dit.config.context_dim
    assert (trained / "bank.pt").is_file() and (trained / "ckpt" / "video-last.pt").is_file()


def test_the_trained_files_sample_a_clip(trained, tiny_model_dir):
    vae, _ = load_module(tiny_model_dir / "vae.safetensors", VAE, VAEConfig)
    video = VideoPipeline.load(trained, vae)
    clip = video.generate(ClipSettings(prompt="a red circle moving left", steps=2, frames=4))
    assert clip.frames.shape == (4, 32, 32, 3)


def test_resume_continues_the_step_count(trained, tiny_model_dir, tmp_path):
    args = video_args(tiny_model_dir, tmp_path, 5)
    args[args.index("--bank") + 1] = str(trained / "bank.pt")  # the cached bank is reused
    main([*args, "--resume", str(trained / "ckpt" / "video-last.pt")])
    extra = read_metadata(tmp_path / "video_denoiser.safetensors")["extra"]
    assert extra["steps_done"] == 5 and [s for s, _ in extra["loss_curve"]] == [4, 5]
    assert not (tmp_path / "bank.pt").exists()


def test_a_warm_start_takes_the_weights_that_match_and_keeps_new_modules_at_their_init(trained, tiny_model_dir,
                                                                                        tmp_path):
    state = torch.load(trained / "ckpt" / "video-last.pt", weights_only=False)
    new = [k for k in state["model"] if ".cross_attn." in k and k.startswith("dit.temporal.")]
    for key in new:  # as if the checkpoint came from a model without the temporal cross-attention
        del state["model"][key], state["ema"][key]
    torch.save(state, tmp_path / "older.pt")
    args = video_args(tiny_model_dir, tmp_path, 2)
    args[args.index("--bank") + 1] = str(trained / "bank.pt")
    main([*args, "--warm-start", str(tmp_path / "older.pt")])
    extra = read_metadata(tmp_path / "video_denoiser.safetensors")["extra"]
    assert extra["steps_done"] == 2  # this run's own steps; the earlier ones are recorded beside them
    assert extra["warm_start"]["steps"] == 3 and extra["warm_start"]["new_tensors"] == len(new) > 0
    assert extra["wall_time_s"] >= extra["warm_start"]["elapsed_s"]


def test_a_warm_start_from_the_committed_weights_continues_where_they_ended(trained, tiny_model_dir, tmp_path):
    args = video_args(tiny_model_dir, tmp_path, 1)
    args[args.index("--bank") + 1] = str(trained / "bank.pt")
    main([*args, "--warm-start", str(trained / "video_denoiser.safetensors"), "--lr", "0"])
    before = read_metadata(trained / "video_denoiser.safetensors")["extra"]
    extra = read_metadata(tmp_path / "video_denoiser.safetensors")["extra"]
    assert extra["warm_start"]["steps"] == before["steps_done"] and extra["warm_start"]["new_tensors"] == 0
    old, _ = load_module(trained / "video_denoiser.safetensors", VideoDiT, VideoDiTConfig)
    new, _ = load_module(tmp_path / "video_denoiser.safetensors", VideoDiT, VideoDiTConfig)
    for (name, a), b in zip(old.state_dict().items(), new.state_dict().values()):  # lr 0: nothing moved
        assert torch.equal(a, b), name


def test_a_warm_start_from_older_committed_weights_keeps_the_new_tensors_at_their_init(trained, tiny_model_dir,
                                                                                       tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    older = tmp_path / "older"
    older.mkdir()
    with safe_open(str(trained / "video_denoiser.safetensors"), framework="pt") as f:
        metadata = f.metadata()
    weights = {k: v for k, v in load_file(str(trained / "video_denoiser.safetensors")).items()
               if not k.startswith("temporal.0.cross_attn.")}  # as if saved before that module existed
    save_file(weights, str(older / "video_denoiser.safetensors"), metadata=metadata)
    (older / "video_text_encoder.safetensors").write_bytes((trained / "video_text_encoder.safetensors").read_bytes())
    args = video_args(tiny_model_dir, tmp_path, 1)
    args[args.index("--bank") + 1] = str(trained / "bank.pt")
    main([*args, "--warm-start", str(older / "video_denoiser.safetensors")])
    extra = read_metadata(tmp_path / "video_denoiser.safetensors")["extra"]
    assert extra["warm_start"]["new_tensors"] == sum(k.startswith("dit.temporal.0.cross_attn.")
                                                     for k in torch.load(trained / "ckpt" / "video-last.pt",
                                                                         weights_only=False)["model"]) > 0


def test_terminal_signal_trains_and_samples_on_the_rescaled_schedule(trained, tiny_model_dir, tmp_path):
    args = video_args(tiny_model_dir, tmp_path, 1)
    args[args.index("--bank") + 1] = str(trained / "bank.pt")
    main([*args, "--terminal-signal", "0.001"])
    extra = read_metadata(tmp_path / "video_denoiser.safetensors")["extra"]
    assert extra["schedule"]["kind"] == "custom"
    vae, _ = load_module(tiny_model_dir / "vae.safetensors", VAE, VAEConfig)
    video = VideoPipeline.load(tmp_path, vae)
    assert float(video.schedule.alphas_cumprod[-1].sqrt()) == pytest.approx(0.001)
    clip = video.generate(ClipSettings(prompt="a red circle moving left", steps=3, frames=2))
    assert clip.frames.shape == (2, 32, 32, 3)


def test_warm_starts_and_resumes_keep_the_schedule_their_weights_were_trained_on(trained, tiny_model_dir, tmp_path):
    def run(name: str, steps: int, *extra: str) -> dict:
        args = video_args(tiny_model_dir, tmp_path / name, steps)
        args[args.index("--bank") + 1] = str(trained / "bank.pt")
        main([*args, *extra])
        return read_metadata(tmp_path / name / "video_denoiser.safetensors")["extra"]["schedule"]

    rescaled = run("first", 1, "--terminal-signal", "0.001")
    assert rescaled["kind"] == "custom"
    # no --terminal-signal: the earlier weights' schedule, not the image model's
    assert run("from-weights", 1, "--warm-start", str(tmp_path / "first" / "video_denoiser.safetensors")) == rescaled
    assert run("from-checkpoint", 1, "--warm-start", str(tmp_path / "first" / "ckpt" / "video-last.pt")) == rescaled
    assert run("first", 2, "--resume", str(tmp_path / "first" / "ckpt" / "video-last.pt")) == rescaled
    # the flag still decides when given
    other = run("flag", 1, "--warm-start", str(tmp_path / "first" / "video_denoiser.safetensors"),
                "--terminal-signal", "0.01")
    assert NoiseSchedule.from_config(other).alphas_cumprod[-1].sqrt() == pytest.approx(0.01)


def test_checkpoints_from_before_the_schedule_was_recorded_read_it_from_their_arguments(tiny_model_dir):
    image_dit = tiny_model_dir / "denoiser.safetensors"
    assert checkpoint_schedule({"configs": {}, "args": {}}, image_dit) is None
    old = checkpoint_schedule({"configs": {}, "args": {"terminal_signal": 0.001}}, image_dit)
    assert float(old.alphas_cumprod[-1].sqrt()) == pytest.approx(0.001)


def test_a_checkpoint_of_another_kind_is_refused(trained, tiny_model_dir, tmp_path):
    state = torch.load(trained / "ckpt" / "video-last.pt", weights_only=False)
    state["kind"] = "vae"
    torch.save(state, tmp_path / "vae.pt")
    with pytest.raises(SystemExit, match="not 'video'"):
        main([*video_args(tiny_model_dir, tmp_path, 4), "--resume", str(tmp_path / "vae.pt")])


def test_the_bank_is_reused_when_it_matches_and_rebuilt_when_not(trained, tiny_model_dir):
    vae, _ = load_module(tiny_model_dir / "vae.safetensors", VAE, VAEConfig)
    log = []
    bank = load_or_build_bank(trained / "bank.pt", vae, 16, 20_261_126, 8, 32, log=log.append)
    assert log == [] and bank["latents"].shape == (16, 8, 4, 4, 4)
    # the bank holds what encode_clips gives for its clips
    assert torch.allclose(bank["latents"][:4], encode_clips(vae, select(bank["clips"], np.arange(4))), atol=1e-5)
    other = trained / "bank-copy.pt"
    other.write_bytes((trained / "bank.pt").read_bytes())
    rebuilt = load_or_build_bank(other, vae, 8, 1, 8, 32, log=log.append)
    assert len(rebuilt["clips"]) == 8 and any("rebuilding" in line for line in log)


def test_merge_takes_the_reversed_clip_where_asked():
    clips = sample_clips(6, np.random.default_rng(0))
    back = reverse_clips(clips)
    take = np.array([True, False, True, False, False, True])
    merged = _merge(clips, back, take)
    assert np.array_equal(merged.direction, np.where(take, back.direction, clips.direction))
    assert np.allclose(merged.scenes.cx, np.where(take, back.scenes.cx, clips.scenes.cx))
    assert np.allclose(merged.scenes.background, np.where(take[:, None], back.scenes.background,
                                                          clips.scenes.background))


def test_circle_weight_draws_circles_that_many_times_as_often():
    clips = sample_clips(3000, np.random.default_rng(0), 8, 64)
    assert draw_odds(clips, 1.0) is None  # uniform: the plain integer draw, so earlier recipes replay exactly
    odds = draw_odds(clips, 3.0)
    circle = clips.scenes.shape == 0
    assert odds.sum() == pytest.approx(1.0) and np.allclose(odds[circle], 3 * odds[~circle][0])
    drawn = np.random.default_rng(1).choice(len(clips), 20000, p=odds)
    share = circle[drawn].mean()  # 3 c / (3 c + (1 - c)) with c the bank's share of circles (~1/3)
    expected = 3 * circle.mean() / (3 * circle.mean() + 1 - circle.mean())
    assert share == pytest.approx(expected, abs=0.02) and share > 0.55
