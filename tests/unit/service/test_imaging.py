"""PNG encoding: pixels and the A1111 `parameters` chunk survive the round trip; bytes are deterministic; every PNG
says it was generated (XMP, read by exiftool)."""

import numpy as np
import pytest

from app.diffusion.samplers import SAMPLERS
from app.service.imaging import (
    SAMPLER_NAMES,
    decode_png,
    encode_animation,
    encode_png,
    format_parameters,
    from_base64,
    parse_parameters,
    read_parameters,
    read_png_text,
    to_base64,
)
from tests.helpers.metadata import TRAINED_ALGORITHMIC_MEDIA, exiftool_tags, needs_exiftool

PARAMS = {"prompt": "a large red circle at the top left", "negative_prompt": "", "steps": 20, "sampler": "dpmpp_2m",
          "guidance_scale": 5.0, "seed": 1, "size": "64x64", "model": "diffusion-lab"}


def image(seed: int = 0, h: int = 16, w: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_a1111_text_without_a_negative_prompt():
    assert format_parameters(PARAMS) == ("a large red circle at the top left\n"
                                         "Steps: 20, Sampler: DPM++ 2M, CFG scale: 5, Seed: 1, Size: 64x64, "
                                         "Model: diffusion-lab")


def test_negative_prompt_line_none_values_and_unknown_keys():
    text = format_parameters({**PARAMS, "negative_prompt": "a blue square", "guidance_rescale": None, "eta": 0.25,
                              "model_hash": "abc123", "clip_skip": 2})
    lines = text.split("\n")
    assert lines[1] == "Negative prompt: a blue square"
    assert lines[2].endswith("Model: diffusion-lab, Eta: 0.25, Model hash: abc123, Clip skip: 2")
    assert "CFG rescale" not in text


def test_newlines_and_commas_cannot_break_the_format():
    text = format_parameters({"prompt": "a red\ncircle", "negative_prompt": "a\n\nsquare", "model": "x, y"})
    assert text == "a red circle\nNegative prompt: a square\nModel: x; y"


def test_pixels_and_parameters_round_trip():
    img = image()
    png = encode_png(img, PARAMS)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(decode_png(png), img)
    assert read_parameters(png) == format_parameters(PARAMS)


def test_same_inputs_give_the_same_bytes():
    assert encode_png(image(), PARAMS) == encode_png(image(), PARAMS)
    assert encode_png(image(), PARAMS) != encode_png(image(), {**PARAMS, "seed": 2})
    assert encode_png(image(), PARAMS) != encode_png(image(1), PARAMS)


def test_png_without_parameters_is_refused_by_the_reader():
    png = encode_png(image())
    assert np.array_equal(decode_png(png), image())
    with pytest.raises(ValueError, match="parameters"):
        read_parameters(png)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8),
                                 np.zeros((4, 4, 4), np.uint8)])
def test_only_uint8_rgb_is_encoded(bad):
    with pytest.raises(ValueError, match="uint8"):
        encode_png(bad, PARAMS)


def test_base64_round_trip():
    png = encode_png(image(), PARAMS)
    text = to_base64(png)
    assert text.isascii() and from_base64(text) == png
    with pytest.raises(ValueError):
        from_base64("not base64!")


def test_every_sampler_is_written_by_its_a1111_name():
    assert set(SAMPLER_NAMES) == set(SAMPLERS)
    for ours, theirs in SAMPLER_NAMES.items():
        assert f"Sampler: {theirs}," in format_parameters({**PARAMS, "sampler": ours})


def test_the_text_reads_back_the_way_a1111_reads_it():
    text = format_parameters({**PARAMS, "negative_prompt": "a blue square", "model_hash": "abc123"})
    assert parse_parameters(text) == {
        "Prompt": "a large red circle at the top left", "Negative prompt": "a blue square", "Steps": "20",
        "Sampler": "DPM++ 2M", "CFG scale": "5", "Seed": "1", "Size-1": "64", "Size-2": "64",
        "Model hash": "abc123", "Model": "diffusion-lab"}
    assert parse_parameters(format_parameters({**PARAMS, "prompt": ""}))["Prompt"] == ""
    assert parse_parameters("just a prompt") == {"Prompt": "just a prompt", "Negative prompt": ""}


def test_text_chunks_are_read_without_decoding_pixels_and_only_from_pngs():
    assert read_png_text(encode_png(image(), PARAMS))["parameters"] == format_parameters(PARAMS)
    with pytest.raises(ValueError, match="not a PNG"):
        read_png_text(b"GIF89a" + bytes(20))


@needs_exiftool
def test_exiftool_reads_that_every_png_was_made_by_a_trained_model(tmp_path):
    frames = np.stack([image(0), image(1)])
    for name, data in (("with-parameters.png", encode_png(image(), PARAMS)), ("bare.png", encode_png(image())),
                       ("clip.png", encode_animation(frames, "apng"))):
        assert exiftool_tags(data, tmp_path, name)["XMP:DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA, name
    tags = exiftool_tags(encode_png(image(), PARAMS), tmp_path)
    assert tags["PNG:Parameters"] == format_parameters(PARAMS)
