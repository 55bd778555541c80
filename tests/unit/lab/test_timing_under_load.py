"""The live timings of the committed models, measured while busy loops hold every core: more work is never
measured faster beyond the stated spread.

More work means more tokens through the same DiT for the latent-vs-pixel forwards (latent < pixels at patch 2 <
pixels at patch 1), and more FLOPs for the video attention: at the served sizes the joint network is the lighter
one (its N² pairs cost less than the factorised model's extra temporal blocks), which the test checks first.
"""

import os
import subprocess
import sys

import pytest
import torch

from app.lab import attention_timing, forward_timing
from app.lab.timing import compare
from app.pipelines.image import WEIGHT_FILES, Pipeline
from app.pipelines.video import VIDEO_WEIGHT_FILES, VideoPipeline
from tests.helpers.models import COMMITTED_MODELS

pytestmark = [
    pytest.mark.weights,
    pytest.mark.skipif(not all((COMMITTED_MODELS / f).is_file()
                               for f in (*WEIGHT_FILES.values(), *VIDEO_WEIGHT_FILES.values())),
                       reason="the trained weights are not in models/"),
]


@pytest.fixture(scope="module")
def busy_cores():
    """One busy loop per core this process may use, for as long as the module's tests run."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
             for _ in range(len(os.sched_getaffinity(0)))]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield len(loops)
    torch.set_num_threads(threads)
    for loop in loops:
        loop.kill()
        loop.wait()


@pytest.fixture(scope="module")
def image() -> Pipeline:
    return Pipeline.load(COMMITTED_MODELS, "cpu")


def test_more_tokens_are_never_measured_faster(busy_cores, image):
    m = forward_timing.measure(image)
    by_tokens = sorted([m.latent, *m.pixel], key=lambda f: f.tokens)
    assert [f.tokens for f in by_tokens] == [64, 1024, 4096] and by_tokens[-1].estimated
    for fewer, more in zip(by_tokens, by_tokens[1:]):
        verdict = compare(more.label, more, fewer.label, fewer)
        assert not verdict.inverted, (verdict, m.conditions)
    latent_vs_p2 = m.savings[0]
    assert latent_vs_p2.resolved and latent_vs_p2.ratio > 2, (latent_vs_p2, m.conditions)  # 16x the tokens


@pytest.mark.parametrize("frames", [2, 8])
def test_the_lighter_attention_is_never_measured_slower(busy_cores, image, frames):
    video = VideoPipeline.load(COMMITTED_MODELS, image.vae)
    a = attention_timing.measure(video, frames, repeats=5)
    assert a.joint_pairs > a.factorised_pairs and a.joint_flops < a.factorised_flops  # more pairs, fewer FLOPs
    assert (a.ordering.slower, a.ordering.faster) == ("factorised", "joint")
    assert not a.ordering.inverted, (a.ordering, a.conditions)
