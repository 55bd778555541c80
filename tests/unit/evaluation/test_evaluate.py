"""The evaluation command: the sweep summary, failures, the stages table, and the card of a tiny random model."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from app.cli import main as cli_main
from app.diffusion.schedule import NoiseSchedule
from app.evaluation.image import CARD_KEYS, build_card, render_readme, training_stages
from app.evaluation.pairs import CATEGORIES, PairEvalConfig, category_prompts
from app.evaluation.sweeps import EvalConfig, failures, sweep_summary
from app.measure.image import CARD_GUIDANCE_SCALES, adherence, chance_level
from app.measure.judge import judge
from app.nets import DIT_SIZES, TEXT_SIZES, VAE, VAE_SIZES, DiT, TextEncoder, save_module
from app.pipelines.image import Pipeline
from app.world.prompts import parse_prompt
from app.world.scenes import (
    COLOUR_NAMES,
    MAX_TOKENS,
    VOCAB,
    Prompt,
    caption,
    parse_object_prompt,
    render,
    sample_scenes,
    to_uint8,
)

TINY = EvalConfig(prompts=2, seeds=2, steps=3, scales=(0.0, 1.0, 5.0), partial_prompts=("a red circle", "a square"),
                  partial_seeds=3, partial_scales=(1.0, 5.0), judge_scenes=16, vae_scenes=8, timing_repeats=1,
                  timing_batch=2)
TINY_PAIRS = PairEvalConfig(prompts=1, seeds=2, steps=3, scales=(1.0, 3.0), scenes=16, variant_prompts=1,
                            variant_seeds=2, variant_scales=(1.0, 5.0))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised 32 px model in the three files the pipeline loads, plus a TRAINING.md."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("model")
    vae = VAE(VAE_SIZES["tiny"]())
    text = TextEncoder(TEXT_SIZES["tiny"](vocab_size=len(VOCAB), max_tokens=MAX_TOKENS))
    dit = DiT(DIT_SIZES["tiny"](latent_size=4, context_dim=text.config.width))
    with torch.no_grad():  # adaLN-Zero makes a fresh DiT output zeros; give it something to say
        for p in dit.parameters():
            p.add_(0.02 * torch.randn_like(p))
    save_module(out / "vae.safetensors", vae, vae.config, {"command": "test", "steps_done": 0})
    save_module(out / "text_encoder.safetensors", text, text.config, {"vocab": list(VOCAB)})
    save_module(out / "denoiser.safetensors", dit, dit.config,
                {"schedule": NoiseSchedule.make().config(), "prediction": "v", "steps_done": 0})
    (out / "TRAINING.md").write_text("# t\n\n| stage | steps |\n| --- | --- |\n| VAE | `3,284` |\n")
    return out


# --------------------------------------------------------------------------------------------- arithmetic


def test_adherence_of_rendered_scenes_to_their_own_and_to_wrong_captions():
    scenes = sample_scenes(24, np.random.default_rng(5))
    verdicts = judge(to_uint8(render(scenes)))
    own = [parse_object_prompt(c) for c in caption(scenes)]
    assert adherence(verdicts, own) == {"shape": 1.0, "colour": 1.0, "size": 1.0, "position": 1.0,
                                        "clean": 1.0, "all": 1.0}
    other = [Prompt(p.shape, COLOUR_NAMES[(COLOUR_NAMES.index(p.colour) + 1) % 6], p.size, p.position) for p in own]
    score = adherence(verdicts, other)
    assert score["colour"] == 0.0 and score["all"] == 0.0 and score["shape"] == 1.0
    listed = failures(verdicts, other, limit=5)
    assert [f["seed"] for f in listed] == [0, 1, 2, 3, 4] and all(f["wrong"] == ["colour"] for f in listed)
    assert listed[0]["judged"]["colour"] == own[0].colour and failures(verdicts, own, limit=5) == []
    partial = adherence(verdicts, [Prompt(shape=p.shape) for p in own])
    assert list(partial) == ["shape", "clean", "all"] and partial["all"] == 1.0


def test_sweep_summary_finds_the_peak_and_the_first_attribute_to_fail_past_it():
    def row(scale, shape, colour, clean, all_):
        return {"scale": scale, "adherence": {"shape": shape, "colour": colour, "clean": clean, "all": all_}}

    sweep = [row(0, 0.3, 0.2, 0.9, 0.0), row(3, 1, 1, 1, 1.0), row(5, 1, 1, 1, 1.0), row(7.5, 0.97, 1, 0.96, 0.96),
             row(10, 0.9, 0.7, 0.8, 0.6)]
    summary = sweep_summary(sweep)
    assert summary["best_scale"] == 3 and summary["best_all"] == 1.0  # ties go to the smaller s
    assert (summary["first_drop_scale"], summary["first_drop_attribute"]) == (10, "colour")
    assert summary["first_drop_value"] == 0.7
    assert sweep_summary(sweep[:3])["first_drop_scale"] is None


def test_training_stages_reads_the_first_markdown_table():
    text = "intro\n\n| stage | steps |\n| --- | ---: |\n| VAE | `3,284` |\n| denoiser | 9,511 |\n\nmore | text"
    assert training_stages(text) == [{"stage": "VAE", "steps": "3,284"}, {"stage": "denoiser", "steps": "9,511"}]
    assert training_stages("no table here") == []


# --------------------------------------------------------------------------------------------- the card


@pytest.fixture(scope="module")
def tiny_card(tiny_model_dir) -> dict:
    pipeline = Pipeline.load(tiny_model_dir, device="cpu")
    return build_card(pipeline, tiny_model_dir, TINY, "diffusion-lab evaluate (test)", log=lambda _: None,
                      pair_cfg=TINY_PAIRS)


def test_card_has_its_documented_keys_and_is_strict_json(tiny_card):
    assert tuple(tiny_card) == CARD_KEYS
    assert set(tiny_card["evaluation"]) == {"settings", "judge_on_scenes", "vae", "guidance_sweep", "chance",
                                            "summary", "partial_prompts", "pairs", "families", "timing"}
    json.loads(json.dumps(tiny_card, allow_nan=False))  # no NaN or tensors slipped in


def test_the_pair_section_measures_every_category_at_every_scale(tiny_card):
    pairs = tiny_card["evaluation"]["pairs"]
    assert [r["scale"] for r in pairs["sweep"]] == list(TINY_PAIRS.scales)
    for row in pairs["sweep"]:
        assert set(row["categories"]) == set(CATEGORIES)
        for name, measured in row["categories"].items():
            assert measured["images"] == TINY_PAIRS.prompts * TINY_PAIRS.seeds
            assert 0.0 <= measured["all"] <= min(measured["count"], measured["binding"]) <= 1.0
            assert ("relation" in measured) == (name == "relation")
        assert row["two_object_all"] == pytest.approx(np.mean([row["categories"][c]["all"] for c in CATEGORIES]))
    assert set(pairs["summary"]) == {*CATEGORIES, "two_object_all"}
    assert pairs["judge_on_pairs"]["accuracy"]["all"] == 1.0  # the judge reads rendered pairs exactly
    variants = {v["variant"]: [b["scale"] for b in v["by_scale"]] for v in pairs["guidance_variants"]}
    assert set(variants) == {"cfg", "cfg_rescale", "cfg_interval", "apg", "cfg++"}
    assert variants["cfg"] == list(TINY_PAIRS.variant_scales) and max(variants["cfg++"]) <= 1.0
    readme = render_readme(tiny_card)
    assert "## Two shapes: binding, relations, counting against s" in readme and "| cfg++ |" in readme


def test_a_model_from_before_the_two_shape_words_gets_its_ceiling_measured_and_no_sweep(tmp_path):
    from app.evaluation.pairs import evaluate_pairs
    from app.world.scenes import TOKEN_ID
    from tests.helpers.models import write_tiny_model

    pipeline = Pipeline.load(write_tiny_model(tmp_path / "old", vocab_size=TOKEN_ID["of"]), device="cpu")
    pairs = evaluate_pairs(pipeline, TINY_PAIRS, log=lambda _: None)
    assert pairs["sweep"] is None and pairs["guidance_variants"] is None
    assert "trained before the words of, above, below, and, two" in pairs["not_measured"]
    assert 0.0 <= pairs["vae"]["judge_reconstructions"]["all"] <= 1.0
    from app.evaluation.readme import _pair_sections

    assert any("not measured" in line for line in _pair_sections(pairs))


@pytest.mark.parametrize("category", CATEGORIES)
def test_category_prompts_name_what_their_category_tests(category):
    prompts = category_prompts(category, 20, seed=3)
    assert prompts == category_prompts(category, 20, seed=3) and len(set(prompts)) > 5
    for p in prompts:
        if category == "counting":
            assert p.kind == "two" and p.first == p.second and p.first.colour
        else:
            assert p.first.shape != p.second.shape
        if category == "colour binding":
            assert p.kind == "and" and p.first.colour != p.second.colour and not p.first.size
        if category == "size binding":
            assert p.kind == "and" and {p.first.size, p.second.size} == {"small", "large"} and not p.first.colour
        if category == "relation":
            assert p.relation and p.first.colour != p.second.colour
        assert parse_prompt(p.canonical) == p  # the canonical text reads back as the same prompt


def test_card_architecture_comes_from_the_weights(tiny_card, tiny_model_dir):
    arch = tiny_card["architecture"]
    assert arch["resolution"] == 32 and arch["latent_shape"] == [4, 4, 4] and arch["compression_ratio"] == 48
    assert arch["denoiser"]["config"]["width"] == 32 and arch["denoiser"]["class"] == "DiT"
    assert arch["vae"]["bytes"] == (tiny_model_dir / "vae.safetensors").stat().st_size
    assert arch["total_parameters"] == sum(arch[k]["parameters"] for k in ("vae", "text_encoder", "denoiser"))
    assert tiny_card["training"]["stages"] == [{"stage": "VAE", "steps": "3,284"}]
    assert tiny_card["defaults"]["sampler"] == "dpmpp_2m" and tiny_card["defaults"]["steps"] == 20


def test_card_sweep_has_one_entry_per_scale_with_chance_at_zero(tiny_card):
    sweep = tiny_card["evaluation"]["guidance_sweep"]
    assert [r["scale"] for r in sweep] == list(TINY.scales)
    for row in sweep:
        assert set(row["adherence"]) == {"shape", "colour", "size", "position", "clean", "all"}
        assert all(0.0 <= v <= 1.0 for v in row["adherence"].values())
        assert row["images"] == TINY.prompts * TINY.seeds and row["diversity_rms"] >= 0.0
    assert sweep[0]["chance"] == chance_level() and all("chance" not in r for r in sweep[1:])
    partial = tiny_card["evaluation"]["partial_prompts"]
    assert [p["prompt"] for p in partial] == ["a red circle", "a square"]
    assert partial[1]["open"] == ["colour", "size", "position"]
    assert [b["scale"] for b in partial[0]["by_scale"]] == [1.0, 5.0]
    assert all(b["variety"]["size"]["distinct"] <= 2 for b in partial[0]["by_scale"])


def test_readme_tabulates_every_scale_and_links_training(tiny_card):
    text = render_readme(tiny_card)
    assert "[TRAINING.md](TRAINING.md)" in text and "[model-card.json](model-card.json)" in text
    for row in tiny_card["evaluation"]["guidance_sweep"]:
        assert f"| {row['scale']:g} | {row['adherence']['shape']:.3f} |" in text
    assert "| chance | 0.333 | 0.167 | 0.500 | 0.111 |" in text
    assert f"peaks at s = {tiny_card['evaluation']['summary']['best_scale']:g}" in text


def test_cli_writes_the_card_and_the_readme(tiny_model_dir, tmp_path):
    card, readme = tmp_path / "out" / "card.json", tmp_path / "README.md"
    code = cli_main(["evaluate", "--model-dir", str(tiny_model_dir), "--quick", "--prompts", "1", "--seeds", "2",
                     "--partial-seeds", "2", "--device", "cpu", "--threads", "1",
                     "--out-card", str(card), "--out-readme", str(readme)])
    assert code == 0
    written = json.loads(card.read_text())
    assert written["command"].startswith("diffusion-lab evaluate --model-dir")
    assert [r["scale"] for r in written["evaluation"]["guidance_sweep"]] == list(CARD_GUIDANCE_SCALES)
    assert written["evaluation"]["settings"]["prompts"] == 1 and written["evaluation"]["settings"]["seeds"] == 2
    assert math.isfinite(written["evaluation"]["vae"]["psnr_db_mean"])
    assert readme.read_text().startswith("# The trained model")
