"""Latent vs pixel (EQ MM3.3): the chapter's numbers, the invariants of the counts, and the endpoint."""

import pytest

from app.instruments.compression import (
    PRESETS,
    check_sizes,
    compare,
    compression_ratio,
    cost_curve,
    page_context,
    tensor_cost,
    valid_factors,
)

URL = "/api/v1/instruments/compression"


# ---------------------------------------------------------------- the chapter's worked numbers


def test_chapter_pixel_tensor_is_786432_values():
    assert tensor_cost(512, 512, 3, 1).values == 786_432


def test_stable_diffusion_compresses_48x_with_64x_fewer_positions():
    r = compare(512, 512, 8, 4, 1)
    assert r.ratio == 48
    assert r.latent.shape == (64, 64, 4)
    assert r.latent.values == 16_384
    assert r.grid_reduction == 64
    assert r.pixel.values / r.latent.values == 48


def test_sd3_channels_give_12x():
    assert compression_ratio(8, 16) == 12
    assert compare(512, 512, 8, 16, 2).ratio == 12


def test_pixel_space_is_ratio_one():
    r = compare(256, 256, 1, 3, 1)
    assert r.ratio == 1 and r.values_fraction == 1 and r.attention_fraction == 1
    assert r.latent == r.pixel


# ---------------------------------------------------------------- invariants


@pytest.mark.parametrize(
    ("h", "w", "f", "c", "p"),
    [(512, 512, 8, 4, 2), (1024, 768, 16, 16, 1), (96, 160, 4, 3, 4), (64, 64, 2, 7, 8), (4096, 4096, 64, 64, 2)],
)
def test_ratio_equals_counted_values_and_ignores_image_size(h, w, f, c, p):
    r = compare(h, w, f, c, p)
    assert r.pixel.values / r.latent.values == pytest.approx(3 * f * f / c)
    assert r.ratio == pytest.approx(compare(h * 2, w * 2, f, c, p).ratio)
    assert r.values_fraction == pytest.approx(1 / r.ratio)


@pytest.mark.parametrize(("f", "p"), [(1, 1), (2, 2), (4, 1), (8, 2), (16, 4)])
def test_tokens_fall_f_squared_and_attention_f_fourth(f, p):
    r = compare(1024, 512, f, 4, p)
    assert r.latent.tokens == (1024 // f // p) * (512 // f // p)
    assert r.pixel.tokens == (1024 // p) * (512 // p)
    assert r.token_reduction == f**2
    assert r.attention_reduction == f**4
    assert r.latent.attention_pairs == r.latent.tokens**2
    assert r.latent.values_per_token == p * p * 4


def test_channels_change_values_not_tokens():
    a, b = compare(512, 512, 8, 4, 2), compare(512, 512, 8, 16, 2)
    assert b.latent.values == 4 * a.latent.values
    assert a.latent.tokens == b.latent.tokens and a.attention_fraction == b.attention_fraction


def test_cost_curve_lists_only_valid_factors_and_falls_with_f():
    curve = cost_curve(512, 512, 4, 2)
    assert [p.f for p in curve] == [1, 2, 4, 8, 16, 32, 64]
    for a, b in zip(curve, curve[1:]):
        assert b.values < a.values and b.attention_pairs < a.attention_pairs
    assert curve[0].attention_fraction == 1
    assert [p.f for p in cost_curve(96, 96, 4, 1)] == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48]


def test_valid_factors_respect_the_patch():
    assert valid_factors(64, 64, 4) == [1, 2, 4, 8, 16]


@pytest.mark.parametrize(("h", "w", "f", "p"), [(512, 512, 3, 1), (520, 512, 16, 1), (64, 64, 64, 2), (96, 64, 8, 8)])
def test_bad_sizes_raise(h, w, f, p):
    with pytest.raises(ValueError):
        check_sizes(h, w, f, p)


def test_presets_are_the_chapter_settings():
    settings = {p.key: (p.f, p.channels) for p in PRESETS}
    assert settings == {"pixel": (1, 3), "sd": (8, 4), "sd3": (8, 16)}
    assert [compression_ratio(p.f, p.channels) for p in PRESETS] == [1, 48, 12]


def test_page_context_answers():
    ctx = page_context()
    assert ctx["quiz_latent"] == "true"
    assert ctx["quiz_sd3_ratio"] == 12 and ctx["quiz_sd_ratio"] == 48
    assert ctx["quiz_pixel_values"] == 786_432 and ctx["quiz_sd_grid_reduction"] == 64


# ---------------------------------------------------------------- the endpoint


def test_endpoint_defaults_are_stable_diffusion(client):
    r = client.get(URL).json()
    assert (r["height"], r["width"], r["f"], r["channels"], r["patch"]) == (512, 512, 8, 4, 2)
    assert r["pixel"]["shape"] == [512, 512, 3] and r["pixel"]["values"] == 786_432
    assert r["latent"]["shape"] == [64, 64, 4] and r["latent"]["values"] == 16_384
    assert r["ratio"] == 48 and r["grid_reduction"] == 64 and r["attention_reduction"] == 4096
    assert r["latent"]["tokens"] == 1024 and r["pixel"]["tokens"] == 65_536
    assert [p["key"] for p in r["presets"]] == ["pixel", "sd", "sd3"]
    assert any(p["f"] == 8 and p["ratio"] == 48 for p in r["curve"])


def test_endpoint_largest_request_is_exact(client):
    r = client.get(URL, params={"height": 4096, "width": 4096, "f": 1, "channels": 3, "patch": 1})
    assert r.status_code == 200
    assert r.json()["pixel"]["attention_pairs"] == (4096 * 4096) ** 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"height": 4}, "height"),
        ({"height": 8192}, "height"),
        ({"width": "wide"}, "width"),
        ({"width": 512.5}, "width"),
        ({"f": 0}, "f"),
        ({"f": 128}, "f"),
        ({"f": 3}, "f"),
        ({"height": 520, "f": 16}, "f"),
        ({"channels": 0}, "channels"),
        ({"channels": 65}, "channels"),
        ({"patch": 17}, "patch"),
        ({"height": 64, "width": 64, "f": 64, "patch": 2}, "patch"),
        ({"f": 8, "patch": 3}, "patch"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_endpoint_rejects_bad_input_naming_the_field(client, params, field):
    r = client.get(URL, params=params)
    assert r.status_code == 422
    assert [d["loc"][-1] for d in r.json()["detail"]] == [field]


def test_endpoint_is_documented(client):
    schema = client.get("/openapi.json").json()
    op = schema["paths"][URL]["get"]
    assert {p["name"] for p in op["parameters"]} == {"height", "width", "f", "channels", "patch"}
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("CompressionResult")
