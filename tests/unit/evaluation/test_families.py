"""`diffusion-lab evaluate`'s families section: the three families on the same prompts, the tokenizer, the
likelihood, and their rendering in models/README.md."""

import json
import math
from pathlib import Path

import pytest

from app.evaluation.families import FamilyEvalConfig, evaluate_families, load_families
from app.evaluation.image import main as evaluate_main
from app.evaluation.readme import _family_sections
from app.measure.pairs import CATEGORIES
from app.pipelines.image import Pipeline
from tests.helpers.models import write_tiny_model

TINY = FamilyEvalConfig(prompts=2, seeds=2, scales=(1.0, 3.0), pair_prompts=1, pair_seeds=1, scenes=8,
                        timing_repeats=1, rounds=3, steps=2)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def section(tmp_path_factory) -> dict:
    model_dir = write_tiny_model(tmp_path_factory.mktemp("families"))
    pipeline = Pipeline.load(model_dir, "cpu")
    return evaluate_families(pipeline, load_families(model_dir, "cpu"), TINY, log=lambda _: None)


def test_every_family_is_measured_on_the_same_prompts_at_every_scale(section):
    assert list(section["families"]) == ["diffusion", "autoregressive", "masked"]
    for name, family in section["families"].items():
        assert [r["scale"] for r in family["guidance_sweep"]] == [1.0, 3.0]
        assert all(r["images"] == TINY.prompts * TINY.seeds for r in family["guidance_sweep"])
        assert [r["scale"] for r in family["pairs"]] == [1.0, 3.0]
        assert set(family["pairs"][0]["categories"]) == set(CATEGORIES)
        assert 0.0 <= family["summary"]["best_all"] <= 1.0
    forwards = {name: f["timing"]["network_forwards"] for name, f in section["families"].items()}
    assert forwards == {"diffusion": 2, "autoregressive": 64, "masked": 3}  # steps, tokens, rounds
    assert section["families"]["masked"]["settings"]["rounds"] == 3
    json.dumps(section, allow_nan=False)


def test_the_tokenizer_and_the_likelihood_are_measured(section):
    tok, lik = section["tokenizer"], section["likelihood"]
    assert tok["tokens_per_image"] == 64 and tok["downsample_factor"] == 4 and tok["scenes"] == 8
    assert 1 <= tok["codes_used"] <= tok["codebook_size"] and tok["vae_psnr_db"] > 0
    assert lik["uniform_bits_per_token"] == math.log2(tok["codebook_size"])
    assert lik["bits_per_token"] > 0 and lik["bits_per_image"] == pytest.approx(64 * lik["bits_per_token"], rel=1e-4)
    assert lik["bits_per_token_p05"] <= lik["bits_per_token"] <= lik["bits_per_token_p95"]


def test_the_readme_shows_the_three_families_side_by_side(section):
    text = "\n".join(_family_sections(section))
    assert "| diffusion |" in text and "| autoregressive |" in text and "| masked |" in text
    assert "bits per token" in text and "K = 64 codes" in text
    assert _family_sections(None) == [] and _family_sections({"families": {}}) == []


def test_a_directory_without_token_weights_has_no_token_families(tmp_path: Path):
    model_dir = write_tiny_model(tmp_path)
    (model_dir / "masked_transformer.safetensors").unlink()
    assert list(load_families(model_dir, "cpu")) == ["autoregressive"]
    (model_dir / "vq_tokenizer.safetensors").unlink()
    assert load_families(model_dir, "cpu") == {}


def test_families_only_measures_that_section_into_the_existing_card(tmp_path: Path):
    model_dir = write_tiny_model(tmp_path / "model")
    card_path, readme = tmp_path / "card.json", tmp_path / "README.md"
    common = ["--model-dir", str(model_dir), "--quick", "--threads", "1", "--out-card", str(card_path),
              "--out-readme", str(readme)]
    with pytest.raises(SystemExit, match="needs the card written by a full run"):
        evaluate_main([*common, "--families-only"])
    evaluate_main([*common, "--no-pairs", "--no-families"])
    before = json.loads(card_path.read_text())
    assert before["evaluation"]["families"] is None and "Three families" not in readme.read_text()
    evaluate_main([*common, "--families-only"])
    after = json.loads(card_path.read_text())
    assert after["evaluation"]["guidance_sweep"] == before["evaluation"]["guidance_sweep"]
    families = after["evaluation"]["families"]
    assert list(families["families"]) == ["diffusion", "autoregressive", "masked"]
    assert "--families-only" in families["command"] and families["generated_at"]
    assert "Three families" in readme.read_text()
