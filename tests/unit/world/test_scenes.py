"""Pins the scene grammar of DESIGN.md §1: drawing, captions, tokens and prompt parsing."""

import time

import numpy as np
import pytest
import torch

from app.world.scenes import (
    COLOURS,
    MAX_TOKENS,
    POSITIONS,
    SHAPES,
    SIZES,
    VOCAB,
    Prompt,
    PromptError,
    SceneBatch,
    anchor_px,
    caption,
    detokenize,
    parse_object_prompt,
    random_captions,
    render,
    sample_scenes,
    scene_attributes,
    to_uint8,
    tokenize,
)


@pytest.fixture(scope="module")
def scenes() -> SceneBatch:
    return sample_scenes(600, np.random.default_rng(0))


@pytest.fixture(scope="module")
def pixels(scenes) -> np.ndarray:
    return to_uint8(render(scenes))  # (B, H, W, 3)


def _shape_mask(pixels: np.ndarray, scenes: SceneBatch) -> np.ndarray:
    """Pixels at least half-way from the background to the shape's colour: (B, H, W) bool."""
    fg = np.array([COLOURS[c] for c in COLOURS], dtype=np.float64)[[*scenes.colour]][:, None, None]
    bg = scenes.background[:, None, None]
    t = ((pixels - bg) * (fg - bg)).sum(-1) / ((fg - bg) ** 2).sum(-1)
    return t > 0.5


# ----------------------------------------------------------------------------- the grammar


def test_constants_follow_design():
    assert SHAPES == ("circle", "square", "triangle")
    assert SIZES == ("small", "large")
    assert POSITIONS == ("top left", "top", "top right", "left", "center", "right",
                         "bottom left", "bottom", "bottom right")
    assert COLOURS == {"red": (215, 48, 39), "orange": (245, 130, 32), "yellow": (240, 200, 30),
                       "green": (40, 160, 70), "blue": (40, 90, 200), "purple": (130, 60, 170)}


def test_render_shape_dtype_range(scenes):
    x = render(scenes)
    assert x.shape == (600, 3, 64, 64) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert render(sample_scenes(2, np.random.default_rng(0), resolution=32)).shape == (2, 3, 32, 32)


def test_colour_exact_at_the_shape_centre(scenes, pixels):
    i = np.arange(len(scenes))
    centre = pixels[i, scenes.cy.astype(int), scenes.cx.astype(int)]  # (B, 3)
    expected = np.array([COLOURS[c] for c in COLOURS])[scenes.colour]
    np.testing.assert_array_equal(centre, expected)


def test_background_is_light_and_plain(scenes, pixels):
    assert scenes.background.min() >= 200
    corners = pixels[:, [0, 0, -1, -1], [0, -1, 0, -1]]  # (B, 4, 3)
    assert corners.min() >= 200
    np.testing.assert_allclose(corners, np.round(scenes.background)[:, None].repeat(4, 1), atol=0.5)


def test_drawn_sizes_fall_in_the_design_ranges(scenes, pixels):
    assert np.all(scenes.side_px[scenes.size == 0] >= 10) and np.all(scenes.side_px[scenes.size == 0] <= 14)
    assert np.all(scenes.side_px[scenes.size == 1] >= 20) and np.all(scenes.side_px[scenes.size == 1] <= 26)
    mask = _shape_mask(pixels, scenes)
    for extent in (mask.any(1).sum(1), mask.any(2).sum(1)):  # width, height
        error = extent - scenes.side_px
        # A triangle's acute corners cover under half a pixel, so its mask is up to 2 px short.
        low = np.where(scenes.shape == SHAPES.index("triangle"), -2, -1)
        assert np.all(error >= low) and np.all(error <= 1)


def test_sizes_and_positions_scale_with_resolution():
    s = sample_scenes(500, np.random.default_rng(1), resolution=128)
    assert s.side_px[s.size == 0].min() >= 20 and s.side_px[s.size == 0].max() <= 28
    assert s.side_px[s.size == 1].min() >= 40 and s.side_px[s.size == 1].max() <= 52
    ax, ay = anchor_px(s.position, 128)
    assert np.abs(s.cx - ax).max() <= 4 and np.abs(s.cy - ay).max() <= 4


def test_positions_within_jitter_of_the_quarter_lines(scenes, pixels):
    ax, ay = anchor_px(scenes.position, 64)
    assert set(np.unique(ax)) == {16.0, 32.0, 48.0} and set(np.unique(ay)) == {16.0, 32.0, 48.0}
    assert np.abs(scenes.cx - ax).max() <= 2 and np.abs(scenes.cy - ay).max() <= 2
    assert np.all(np.array(POSITIONS)[scenes.position[(ax == 48) & (ay == 16)]] == "top right")
    assert np.all(np.array(POSITIONS)[scenes.position[(ax == 32) & (ay == 48)]] == "bottom")
    mask = _shape_mask(pixels, scenes)
    cols, rows = mask.any(1), mask.any(2)
    bx = (cols.argmax(1) + 64 - cols[:, ::-1].argmax(1)) / 2  # bounding-box centre, pixels
    by = (rows.argmax(1) + 64 - rows[:, ::-1].argmax(1)) / 2
    assert np.abs(bx - ax).max() <= 2.5 and np.abs(by - ay).max() <= 2.5
    assert np.all((mask[:, 0].sum(1) == 0) & (mask[:, -1].sum(1) == 0))  # shapes stay inside the frame


def test_triangle_apex_up_and_other_shapes_symmetric(scenes, pixels):
    mask = _shape_mask(pixels, scenes)
    widths = mask.sum(2)  # (B, H): pixels per row
    above = np.clip(scenes.cy[:, None] - np.arange(64)[None], 0, 1)  # (B, H): row share above the centre
    top_share = (widths * above).sum(1) / widths.sum(1)
    triangle = scenes.shape == SHAPES.index("triangle")
    assert np.all(np.abs(top_share[triangle] - 0.25) < 0.06)  # apex up: a quarter of the area on top
    assert np.all(np.abs(top_share[~triangle] - 0.5) < 0.06)
    for i in np.flatnonzero(triangle):
        rows = widths[i][widths[i] > 0]
        assert rows[0] <= 3 and rows[-1] >= scenes.side_px[i] - 3 and np.all(np.diff(rows) >= 0)


def test_sampling_is_uniform():
    s = sample_scenes(18000, np.random.default_rng(2))
    for values, k in ((s.shape, 3), (s.colour, 6), (s.size, 2), (s.position, 9)):
        counts = np.bincount(values, minlength=k)
        assert len(counts) == k and np.all(np.abs(counts / len(values) - 1 / k) < 0.02)


def test_deterministic_per_seed():
    a, b = (sample_scenes(50, np.random.default_rng(7)) for _ in range(2))
    c = sample_scenes(50, np.random.default_rng(8))
    assert torch.equal(render(a), render(b))
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("shape", "cx", "background"))
    assert not torch.equal(render(a), render(c))


def test_noise_is_optional_and_small():
    s = sample_scenes(8, np.random.default_rng(3))
    noisy = render(s, noise=0.02, generator=torch.Generator().manual_seed(0))
    assert 0 < (noisy - render(s)).abs().mean() < 0.03


def test_scene_attributes_names(scenes):
    a = scene_attributes(scenes, 0)
    assert (a["shape"], a["colour"], a["size"], a["position"]) == (
        SHAPES[scenes.shape[0]], list(COLOURS)[scenes.colour[0]], SIZES[scenes.size[0]],
        POSITIONS[scenes.position[0]])
    assert a["side_px"] == pytest.approx(scenes.side_px[0])


def test_render_is_fast_enough():
    s = sample_scenes(2048, np.random.default_rng(4))
    render(s)  # warm-up
    best = min(_timed(lambda: render(s)) for _ in range(3))
    print(f"render: {2048 / best:,.0f} images/s at 64x64")
    assert 2048 / best > 300  # ~10,000/s on an idle 2-core CPU; a per-pixel python loop gets ~100


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_render_on_cuda_matches_cpu():
    s = sample_scenes(64, np.random.default_rng(5))
    x = render(s, device="cuda")
    assert x.is_cuda and torch.allclose(x.cpu(), render(s), atol=1e-5)


# ----------------------------------------------------------------------------- captions


def _one(shape, colour, size, position) -> SceneBatch:
    return SceneBatch(
        shape=np.array([SHAPES.index(shape)]), colour=np.array([list(COLOURS).index(colour)]),
        size=np.array([SIZES.index(size)]), position=np.array([POSITIONS.index(position)]),
        side_px=np.array([12.0]), cx=np.array([32.0]), cy=np.array([32.0]),
        background=np.array([[230.0, 230.0, 230.0]]),
    )


def test_caption_format():
    assert caption(_one("circle", "red", "large", "top left")) == ["a large red circle at the top left"]
    assert caption(_one("square", "blue", "small", "center")) == ["a small blue square in the center"]
    assert caption(_one("triangle", "purple", "small", "bottom")) == ["a small purple triangle at the bottom"]


def test_partial_captions():
    s = _one("square", "blue", "small", "center")
    no = np.array([False])
    assert caption(s, {"size": no}) == ["a blue square in the center"]
    assert caption(s, {"size": no, "position": no}) == ["a blue square"]
    assert caption(s, {"colour": no, "position": no}) == ["a small square"]
    assert caption(s, {"size": no, "colour": no, "position": no}) == ["a square"]


def test_random_captions_mix():
    s = sample_scenes(4000, np.random.default_rng(6))
    caps = random_captions(s, np.random.default_rng(0), p_partial=0.3, p_drop=0.1)
    full = caption(s)
    dropped = np.mean([c == "" for c in caps])
    partial = np.mean([c != "" and c != f for c, f in zip(caps, full)])
    assert abs(dropped - 0.1) < 0.02 and abs(partial - 0.3) < 0.03
    assert all(SHAPES[k] in c for c, k in zip(caps, s.shape) if c)
    assert {len(c.split()) for c in caps if c} == set(range(2, 9))  # "a square" .. the full caption
    assert random_captions(s, np.random.default_rng(0)) == caps
    tokenize(caps)  # every training caption is in the vocabulary


# ----------------------------------------------------------------------------- tokens


def test_vocab_and_tokenizer_round_trip(scenes):
    assert VOCAB[0] == "<pad>" and len(set(VOCAB)) == len(VOCAB)
    for w in ("moving", "from", "up", "down", "left", "right", "a", "at", "in", "the"):
        assert w in VOCAB
    longest_video = "a large purple triangle moving down right from the bottom right"
    caps = caption(scenes) + ["", "a red circle", longest_video]
    ids = tokenize(caps)
    assert ids.shape == (len(caps), MAX_TOKENS) and ids.dtype == np.int64
    assert detokenize(ids) == caps
    assert np.all(ids[len(scenes)] == 0)
    first = tokenize(["a large red circle at the top left"])[0]
    assert [VOCAB[j] for j in first[:8]] == "a large red circle at the top left".split()
    assert np.all(first[8:] == 0)


def test_tokenize_refuses_unknown_words():
    with pytest.raises(PromptError) as e:
        tokenize(["a crimson circle"])
    assert e.value.unknown_words == ["crimson"]
    with pytest.raises(PromptError):
        tokenize([" ".join(["a"] * (MAX_TOKENS + 1))])


# ----------------------------------------------------------------------------- prompts


@pytest.mark.parametrize("text, canonical", [
    ("a large red circle at the top left", "a large red circle at the top left"),
    ("A Large RED Circle at the Top Left.", "a large red circle at the top left"),
    ("  a   red    circle  ", "a red circle"),
    ("red circle!", "a red circle"),
    ("an orange square", "a orange square"),
    ("the blue triangle in the center", "a blue triangle in the center"),
    ("blue triangle in the middle", "a blue triangle in the center"),
    ("blue triangle, centre", "a blue triangle in the center"),
    ("a big box", "a large square"),
    ("a tiny violet disc", "a small purple circle"),
    ("little green triangle", "a small green triangle"),
    ("a circle at the top-left", "a circle at the top left"),
    ("a circle in the upper left", "a circle at the top left"),
    ("a circle at the lower right", "a circle at the bottom right"),
    ("a square at the left top", "a square at the top left"),
    ("a square on the left", "a square at the left"),
    ("a square at the top center", "a square at the top"),
    ("circle red large", "a large red circle"),
    ("", ""),
    ("   ", ""),
    ("triangle", "a triangle"),
])
def test_parse_prompt_forms(text, canonical):
    p = parse_object_prompt(text)
    assert p.canonical == canonical
    assert detokenize(tokenize([p.canonical])) == [canonical]


def test_parse_prompt_fields():
    assert parse_object_prompt("a big violet box in the middle") == Prompt("square", "purple", "large", "center")
    assert parse_object_prompt("") == Prompt()
    assert parse_object_prompt("a red circle").named() == {"shape": "circle", "colour": "red"}


def test_prompt_error_lists_the_vocabulary():
    with pytest.raises(PromptError) as e:
        parse_object_prompt("a crimson hexagon at the top")
    err = e.value
    assert isinstance(err, ValueError)
    assert err.unknown_words == ["crimson", "hexagon"]
    assert {"circle", "red", "small", "top", "center"} <= set(err.vocabulary)
    msg = str(err)
    assert "crimson" in msg and "hexagon" in msg
    assert all(w in msg for w in (*SHAPES, *COLOURS, *SIZES, "top left"))


@pytest.mark.parametrize("text, fragment", [
    ("a red blue circle", "one colour"),
    ("a circle square", "one shape"),
    ("a small large circle", "one size"),
    ("a circle at the top bottom", "one position"),
    ("a circle at the left right", "one position"),
    ("a red one", "unknown"),
    ("a red", "name a shape"),
    ("at the top left", "name a shape"),
    ("a red circle moving left", "unknown"),
    ("a red circle " + "x" * 200, "at most 200"),
])
def test_parse_prompt_refusals(text, fragment):
    with pytest.raises(PromptError) as e:
        parse_object_prompt(text)
    assert fragment in str(e.value) and "circle, square, triangle" in str(e.value)
