"""The training command: `diffusion-lab train vae|denoiser|video ...` or `python3 -m app.training vae|denoiser|video ...`.

Train the VAE (app.training.image), then the caption-conditioned denoiser on its latents (same module), then the
space-time denoiser from the image model (app.training.video); all three share the loop of app.training.loop.
Needs only torch, numpy, safetensors and tqdm, so it runs on a bare GPU box.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from app.nets.device import pick_device
from app.training import distributed
from app.training.image import add_parsers as add_image_parsers
from app.training.tokens import add_parsers as add_token_parsers
from app.training.video import add_parser as add_video_parser

PROG = "python3 -m app.training"


def _common(p: argparse.ArgumentParser, kind: str, lr: float, batch: int) -> None:
    """The options every trainer has; Run and fit (app.training.loop) read most of them."""
    p.add_argument("--steps", type=int, default=5000, help="optimizer steps in total (a resumed run continues to it)")
    p.add_argument("--batch", type=int, default=batch, help="scenes per step")
    p.add_argument("--lr", type=float, default=lr, help="peak learning rate (AdamW)")
    p.add_argument("--warmup", type=int, default=200, help="linear warmup steps (at most a fifth of --steps)")
    p.add_argument("--weight-decay", type=float, default=0.0 if kind in ("vae", "decoder", "vq") else 0.01)
    p.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (0: off)")
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--out", default=f"models/{kind}.safetensors", help="final weights file (EMA weights)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--size", choices=("tiny", "small", "base"), default="small", help="model size preset")
    p.add_argument("--resolution", type=int, default=64, help="scene side in pixels")
    p.add_argument("--resume", default=None, help="checkpoint (.pt) to continue from")
    p.add_argument("--ckpt-dir", default=f"runs/{kind}", help=f"where {kind}-last.pt is written")
    p.add_argument("--ckpt-every", type=int, default=1000, help="checkpoint period in steps (0: only at the end)")
    p.add_argument("--keep-checkpoints", action="store_true", help="also keep <kind>-step<N>.pt at each checkpoint")
    p.add_argument("--val-every", type=int, default=500, help="validation period in steps (0: only at the end)")
    p.add_argument("--val-size", type=int, default=512, help="held-out scenes")
    p.add_argument("--log-every", type=int, default=25, help="progress-bar loss period in steps")
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop cleanly and save after this long (0: no limit)")
    p.add_argument("--lr-by-time", action="store_true",
                   help="decay the learning rate over --max-minutes when that ends the run before --steps")
    p.add_argument("--compile", action="store_true", help="torch.compile the training forward")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """`vae`, `denoiser` (app.training.image) and `video` (app.training.video) sub-commands."""
    parser = argparse.ArgumentParser(prog=prog, description="Train the VAE, then the caption-conditioned denoiser.")
    sub = parser.add_subparsers(dest="kind", required=True)
    add_image_parsers(sub, _common)
    add_video_parser(sub, _common)
    add_token_parsers(sub, _common)
    return parser


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    args.command_line = shlex.join([*prog.split(), *argv])
    try:
        device = distributed.setup(pick_device(args.device))  # under torchrun: joins the ranks, takes its own GPU
    except RuntimeError as err:  # --device cuda on a machine without one: a clean CLI error, not a traceback
        raise SystemExit(str(err)) from None
    args.func(args, device)
    return 0
