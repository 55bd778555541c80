"""Counting a forward's FLOPs: attention by its formula, the networks' totals as torch's own counter counts them."""

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from app.lab.flops import count_flops
from app.nets.video_dit import VideoDiT
from app.pipelines.video import VideoPipeline


def test_attention_costs_its_scores_and_its_weighted_values():
    q, kv = torch.randn(2, 5, 64, 32), torch.randn(2, 5, 12, 32)
    assert count_flops(lambda: F.scaled_dot_product_attention(q, kv, kv)) == 2 * (2 * 5 * 64 * 12 * 32) * 2
    assert count_flops(lambda: torch.relu(q)) == 0  # elementwise work is not counted, as in torch's counter


def test_a_video_forward_counts_what_torchs_counter_counts_with_attention_added(tiny_model_dir):
    """torch's FlopCounterMode, told the CPU attention kernel's formula, is the reference."""
    from app.pipelines.image import Pipeline

    video = VideoPipeline.load(tiny_model_dir, Pipeline.load(tiny_model_dir, "cpu").vae)
    cfg = video.dit.config
    x = torch.randn(2, 4, cfg.latent_channels, cfg.latent_size, cfg.latent_size)
    context, mask, t = torch.randn(2, 12, cfg.context_dim), torch.ones(2, 12, dtype=torch.bool), torch.full((2,), 500)
    cpu_attention = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu:
                     lambda q, k, v, *a, out_shape=None, **kw: sdpa_flop_count(q, k, v)}
    for net in (video.dit, VideoDiT.from_image_dit(video.dit.image, 4, "joint").eval()):
        with torch.inference_mode():
            with FlopCounterMode(display=False, custom_mapping=cpu_attention) as reference:
                net(x, t, context, mask)
            assert count_flops(lambda: net(x, t, context, mask)) == reference.get_total_flops() > 0
