"""Pins the scene judge: near-perfect on drawn scenes, and it refuses what is not one clean shape."""

import numpy as np
import pytest
import torch

from app.measure.judge import MAX_ROUND_FOUR_FOLD, Verdict, agreement, components, judge, matches
from app.world.scenes import (
    COLOUR_NAMES,
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    parse_object_prompt,
    render,
    render_layers,
    sample_scenes,
    scene_attributes,
    to_uint8,
)
from tests.helpers.shapes import draw


def test_judge_agrees_with_2000_drawn_scenes():
    scenes = sample_scenes(2000, np.random.default_rng(123))
    verdicts = judge(render(scenes))
    acc = agreement(verdicts, scenes)
    print("judge accuracy on 2,000 scenes:", {k: f"{v:.2%}" for k, v in acc.items()})
    assert acc["all"] >= 0.995
    assert min(acc[k] for k in ("shape", "colour", "size", "position", "clean")) >= 0.995


def test_uint8_and_float_inputs_agree():
    scenes = sample_scenes(64, np.random.default_rng(1))
    x = render(scenes)
    a, b = judge(x), judge(to_uint8(x))
    assert [(v.shape, v.colour, v.size, v.position, v.clean) for v in a] == \
           [(v.shape, v.colour, v.size, v.position, v.clean) for v in b]
    single = judge(to_uint8(x)[0])  # one (H, W, 3) image is a batch of one
    assert len(single) == 1 and single[0].shape == a[0].shape
    with pytest.raises(TypeError):
        judge(to_uint8(x).astype(np.float32))


def test_measurements_match_the_drawn_geometry():
    scenes = sample_scenes(300, np.random.default_rng(2))
    verdicts = judge(render(scenes))
    for i, v in enumerate(verdicts):
        s = scene_attributes(scenes, i)
        assert abs(v.bbox_side - s["side_px"]) <= 2, (s, v)
        assert abs(v.bbox_center[0] - s["cx"]) <= 1 and abs(v.bbox_center[1] - s["cy"]) <= 1, (s, v)
        assert v.colour_distance < 1 and v.flatness == 1 and v.n_components == 1 and v.main_fraction == 1
        expected_fill = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5}[s["shape"]]
        assert abs(v.fill_ratio - expected_fill) < 0.15, (s, v)


def test_judge_at_other_resolutions():
    for res in (32, 128):
        scenes = sample_scenes(200, np.random.default_rng(res), resolution=res)
        assert agreement(judge(render(scenes)), scenes)["all"] >= 0.98


def test_judge_tolerates_mild_noise_and_blur():
    scenes = sample_scenes(300, np.random.default_rng(3))
    noisy = render(scenes, noise=0.05, generator=torch.Generator().manual_seed(0))
    assert agreement(judge(noisy), scenes)["all"] >= 0.99
    kernel = torch.tensor([1.0, 2.0, 1.0])
    kernel = (kernel[:, None] * kernel[None] / 16).expand(3, 1, 3, 3).contiguous()
    blurred = torch.nn.functional.conv2d(torch.nn.functional.pad(render(scenes), (1,) * 4, mode="replicate"),
                                         kernel, groups=3)
    assert agreement(judge(blurred), scenes)["all"] >= 0.99


def test_blank_and_noise_images_are_not_clean():
    blank = np.full((3, 64, 64, 3), 235, np.uint8)
    for v in judge(blank):
        assert not v.clean and v.shape is None and v.colour is None and v.position is None
    noise = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    light_noise = np.random.default_rng(1).integers(200, 256, (3, 64, 64, 3), dtype=np.uint8)
    dark = to_uint8(render(sample_scenes(3, np.random.default_rng(4)))) // 3  # a dark background
    for v in judge(np.concatenate([noise, light_noise, dark])):
        assert not v.clean


def test_two_shapes_are_not_clean():
    a = sample_scenes(200, np.random.default_rng(5))
    b = sample_scenes(200, np.random.default_rng(6))
    gap = np.maximum(np.abs(a.cx - b.cx), np.abs(a.cy - b.cy)) - (a.side_px + b.side_px) / 2
    apart = gap > 2  # two separate shapes, not touching
    verdicts = judge(render_layers([a, b]))  # b's shapes over a's images
    assert apart.sum() > 80
    assert not any(v.clean for v, far in zip(verdicts, apart) if far)
    assert all(v.n_components == 2 for v, far in zip(verdicts, apart) if far)


def test_off_palette_and_two_coloured_shapes_are_not_clean():
    scenes = sample_scenes(8, np.random.default_rng(7))
    x = to_uint8(render(scenes))
    grey = x.copy()
    shape = np.abs(x.astype(int) - np.round(scenes.background)[:, None, None]).sum(-1) > 30
    grey[shape] = 90  # a dark grey shape: no palette colour
    for v in judge(grey):
        assert not v.clean and v.colour is None
    split = x.copy()  # the lower half of each shape recoloured to a far palette colour
    for i in range(len(scenes)):
        other = COLOURS["blue"] if scenes.colour[i] in (0, 1, 2) else COLOURS["yellow"]
        rows = np.arange(64)[:, None] > scenes.cy[i]
        split[i][shape[i] & rows] = other
    for v in judge(split):
        assert not v.clean and v.flatness < 0.9


def test_upside_down_triangle_is_no_known_shape():
    scenes = sample_scenes(200, np.random.default_rng(8))
    triangles = scenes.shape == SHAPES.index("triangle")
    flipped = judge(torch.flip(render(scenes), dims=[2]))
    assert triangles.sum() > 40
    assert all(v.shape is None and not v.clean for v, t in zip(flipped, triangles) if t)


def _drawn(kind: str, sizes: tuple[float, float], n: int, seed: int, **style) -> list[Verdict]:
    """n shapes of one kind at random sides within `sizes`, places near the grammar's anchors, and colours."""
    rng = np.random.default_rng(seed)
    images = [draw(kind, rng.uniform(*sizes), *rng.choice([16.0, 32.0, 48.0], 2) + rng.uniform(-2, 2, 2),
                   colour=COLOUR_NAMES[i % len(COLOUR_NAMES)], background=rng.uniform(224, 248), **style)
              for i in range(n)]
    return judge(np.stack(images))


@pytest.mark.parametrize("sizes", [(10.0, 14.0), (20.0, 26.0)], ids=["small", "large"])
@pytest.mark.parametrize("kind, style", [
    ("diamond", {}), ("diamond", {"rounding": 0.4}), ("diamond", {"rounding": 0.7}),
    ("diamond", {"rounding": 0.7, "blur_sigma": 0.75}), ("diamond", {"rounding": 0.5, "angle_deg": 10.0}),
    ("square", {"angle_deg": 45.0}), ("square", {"angle_deg": 30.0}), ("square", {"angle_deg": 15.0}),
], ids=["diamond", "rounded-0.4", "rounded-0.7", "rounded-0.7-blurred", "rounded-0.5-turned", "square-45",
        "square-30", "square-15"])
def test_diamonds_and_turned_squares_are_neither_circles_nor_squares(kind, style, sizes):
    # A rotated square is not the grammar's axis-aligned square, and a rounded diamond is no disc: no shape fits.
    side = (sizes[0] / 2**0.5, sizes[1] / 2**0.5) if style.get("angle_deg") == 45.0 else sizes  # same bounding box
    verdicts = _drawn(kind, side, 24, seed=1, **style)
    assert all(v.shape is None and not v.clean for v in verdicts), [(v.shape, round(v.four_fold, 3)) for v in verdicts]
    assert min(v.four_fold for v in verdicts) > MAX_ROUND_FOUR_FOLD


@pytest.mark.parametrize("sizes", [(10.0, 14.0), (20.0, 26.0)], ids=["small", "large"])
@pytest.mark.parametrize("sigma", [0.0, 0.5, 0.75, 1.0])
def test_discs_stay_circles_sharp_or_blurred(sizes, sigma):
    verdicts = _drawn("disc", sizes, 48, seed=int(10 * sigma), blur_sigma=sigma)
    assert all(v.shape == "circle" for v in verdicts), [round(v.four_fold, 3) for v in verdicts]
    assert max(v.four_fold for v in verdicts) < MAX_ROUND_FOUR_FOLD / 2


def test_four_fold_moment_of_the_grammar_shapes():
    scenes = sample_scenes(600, np.random.default_rng(11))
    four = np.array([v.four_fold for v in judge(render(scenes))])
    assert four[scenes.shape == 0].max() < 0.03  # a disc: 0 up to the pixel grid
    assert np.allclose(four[scenes.shape == 1], 0.43, atol=0.02)  # a square: 16/15 / (112/45) = 3/7
    assert abs(draw("diamond", 24, 32, 32, rounding=1.0) - draw("disc", 24, 32, 32)).max() <= 1  # rounding 1: a disc


def test_components_counts_8_connected_blobs():
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, 0, 0] = mask[0, 1, 1] = True  # diagonal neighbours: one component
    mask[0, 5:7, 5:7] = True
    mask[0, 0, 7] = True
    labels = components(mask)
    assert len(labels.unique()) == 4  # background + 3
    assert labels[0, 0, 0] == labels[0, 1, 1] and labels[0, 5, 5] == labels[0, 6, 6] != labels[0, 0, 7]
    assert torch.all((labels > 0) == mask)
    snake = torch.zeros(1, 16, 16, dtype=torch.bool)
    snake[0, ::2] = True
    snake[0, 1::4, -1] = snake[0, 3::4, 0] = True
    assert len(components(snake).unique()) == 2  # one long winding component


def test_matches_per_named_attribute():
    scenes = sample_scenes(1, np.random.default_rng(9))
    (v,) = judge(render(scenes))
    s = scene_attributes(scenes, 0)
    good = parse_object_prompt(f"a {s['size']} {s['colour']} {s['shape']} at the {s['position']}")
    assert matches(v, good) == {"size": True, "colour": True, "shape": True, "position": True, "all": True}
    wrong_colour = next(c for c in COLOURS if c != s["colour"])
    m = matches(v, parse_object_prompt(f"a {wrong_colour} {s['shape']}"))
    assert m == {"shape": True, "colour": False, "all": False}
    assert matches(v, parse_object_prompt("")) == {"all": True}
    unclean = Verdict(**{**vars(v), "clean": False})
    assert matches(unclean, good)["all"] is False and matches(unclean, good)["shape"] is True


def test_agreement_counts_mistakes():
    scenes = sample_scenes(4, np.random.default_rng(10))
    verdicts = judge(render(scenes))
    verdicts[0] = Verdict(**{**vars(verdicts[0]), "size": SIZES[1 - scenes.size[0]]})
    acc = agreement(verdicts, scenes)
    assert acc["size"] == 0.75 and acc["all"] == 0.75 and acc["shape"] == 1.0
    assert set(acc) == {"shape", "colour", "size", "position", "clean", "all"}
    assert POSITIONS[scenes.position[1]] == verdicts[1].position
