"""The loop every trainer shares: lr schedule, optimizer, EMA, the Run and its checkpoints, fit, provenance.

A run checkpoints to <ckpt-dir>/<kind>-last.pt every --ckpt-every steps and at the end (model, EMA, optimizer,
step, rng states), which --resume continues from. Each final weights file's metadata records the command line,
steps done, wall time, device, torch version, git commit, the whole recipe, the loss curve and the final
validation numbers (`provenance`).

For a time-limited GPU run, --max-minutes stops the loop cleanly (then validates and saves), and
--lr-by-time makes the cosine decay follow that time budget, so a run cut short still ends at a low lr.

Under torchrun the same loop runs on every rank (app.training.distributed): the logged loss is the global batch's,
rank 0's clock decides when time is up, and only rank 0 validates and writes checkpoints.
"""

from __future__ import annotations

import argparse
import copy
import math
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from app.nets.device import device_name
from app.training import distributed

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_commit() -> str:
    """HEAD of the repository this code runs from, or 'unknown'."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def lr_at(step: int, total: int, peak: float, warmup: int, min_ratio: float = 0.1,
          time_fraction: float = 0.0) -> float:
    """Linear warmup to `peak`, then cosine decay to min_ratio * peak at `total`.

    The decay follows whichever is further along: the steps, or `time_fraction` of a time budget.
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_fraction))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW; matrices decay, biases, norms and 1-D vectors do not (nanoGPT's split)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), fused=device.type == "cuda")


class EMA:
    """Exponential moving average of a module's weights; its decay ramps up as (1+n)/(10+n)."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        ema_p = list(self.module.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in module.parameters()], 1.0 - d)
        for e, b in zip(self.module.buffers(), module.buffers()):
            e.copy_(b)


class Run:
    """Everything a training loop mutates, and what a checkpoint holds."""

    def __init__(self, args: argparse.Namespace, device: torch.device, model: nn.Module, configs: dict):
        self.args, self.device, self.model, self.configs = args, device, model, configs
        self.ema = EMA(model, args.ema_decay)
        self.opt = make_optimizer(model, args.lr, args.weight_decay, device)
        self.rng = np.random.default_rng(args.seed)  # scenes and captions
        self.cpu_gen = torch.Generator().manual_seed(args.seed)  # timesteps (kept on the CPU: no device sync)
        self.gen = torch.Generator(device=device).manual_seed(args.seed + 1)  # noise, on the device
        self.rank_gen = distributed.rank_generator(self.gen, args.seed + 1)  # noise drawn inside a network per rank
        self.step = 0
        self.elapsed_s = 0.0  # training time of earlier invocations (resume)
        self.world = distributed.world()
        self.shard = distributed.shard(args.batch)  # this rank's slice of each global batch (all of it alone)

    def parallel(self, module: nn.Module) -> nn.Module:
        """What the training step calls: `module`, inside DistributedDataParallel under torchrun."""
        return distributed.parallel(module, self.device)

    def checkpoint_path(self) -> Path:
        return Path(self.args.ckpt_dir) / f"{self.args.kind}-last.pt"

    def save_checkpoint(self) -> Path:
        path = self.checkpoint_path()
        if not self.world.is_main:  # every rank holds the same state; rank 0 writes it
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "kind": self.args.kind, "step": self.step, "elapsed_s": self.elapsed_s, "configs": self.configs,
            "model": self.model.state_dict(), "ema": self.ema.module.state_dict(), "opt": self.opt.state_dict(),
            "np_rng": self.rng.bit_generator.state, "cpu_gen": self.cpu_gen.get_state(),
            "gen": self.gen.get_state(), "args": {k: v for k, v in vars(self.args).items() if k != "func"},
        }
        tmp = path.with_name(path.name + ".tmp")
        torch.save(state, tmp)
        tmp.replace(path)
        if self.args.keep_checkpoints:
            shutil.copyfile(path, path.with_name(f"{self.args.kind}-step{self.step:07d}.pt"))
        return path

    def load_checkpoint(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.module.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.rng.bit_generator.state = state["np_rng"]
        self.cpu_gen.set_state(state["cpu_gen"])
        self.gen.set_state(state["gen"].to("cpu"))
        self.step, self.elapsed_s = int(state["step"]), float(state.get("elapsed_s", 0.0))


def read_checkpoint(path: str | Path, kind: str) -> dict:
    """A checkpoint written by Run.save_checkpoint, checked to be of this kind."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)  # our own file: it holds rng states
    if state.get("kind") != kind:
        raise SystemExit(f"checkpoint {path} is a {state.get('kind')!r} checkpoint, not {kind!r}")
    return state


def setup_backend(device: torch.device) -> None:
    """TF32 matmuls and cuDNN autotuning on CUDA."""
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def autocast(device: torch.device):
    """bf16 autocast on CUDA, plain fp32 elsewhere."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def fit(run: Run, train_step, validate) -> dict:
    """The shared loop: lr schedule, clipping, EMA, progress, validation, checkpoints, time guard."""
    args, model, opt = run.args, run.model, run.opt
    warmup = min(args.warmup, max(1, args.steps // 5))
    params = [p for p in model.parameters() if p.requires_grad]
    start, began = run.step, time.time()
    t0 = began  # start of the time not yet added to run.elapsed_s
    deadline = began + 60 * args.max_minutes if args.max_minutes > 0 else math.inf
    if args.lr_by_time and not math.isfinite(deadline):
        raise SystemExit("--lr-by-time needs --max-minutes")
    interactive = sys.stderr.isatty()
    bar = tqdm(total=args.steps, initial=start, desc=args.kind, disable=args.no_progress or not run.world.is_main,
               mininterval=0.5 if interactive else 10.0, dynamic_ncols=True)
    running, seen, curve = torch.zeros((), device=run.device), 0, []
    stopped_early = False
    model.train()
    while run.step < args.steps:
        time_up = time.time() >= deadline
        time_fraction = (time.time() - began) / (deadline - began) if args.lr_by_time else 0.0
        time_up, time_fraction = distributed.agree(time_up, time_fraction, run.device)
        if time_up:
            stopped_early = True
            say(run, f"--max-minutes {args.max_minutes} reached at step {run.step}: stopping and saving")
            break
        lr = lr_at(run.step, args.steps, args.lr, warmup, time_fraction=time_fraction)
        for group in opt.param_groups:
            group["lr"] = lr
        with autocast(run.device):
            loss = train_step()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        opt.step()
        run.ema.update(model, run.step)
        run.step += 1
        bar.update(1)
        running += loss.detach().float()
        seen += 1
        if run.step % args.log_every == 0 or run.step == args.steps:
            curve.append([run.step, round(distributed.mean_over_ranks(running).item() / seen, 6)])
            bar.set_postfix(loss=f"{curve[-1][1]:.4f}", lr=f"{lr:.2e}")
            running.zero_()
            seen = 0
        if args.val_every > 0 and run.step % args.val_every == 0 and run.step < args.steps and run.world.is_main:
            val = validate(run.ema.module, final=False)
            tqdm.write(f"step {run.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in val.items()))
        if args.ckpt_every > 0 and run.step % args.ckpt_every == 0:
            run.elapsed_s += time.time() - t0
            t0 = time.time()
            run.save_checkpoint()
    bar.close()
    if seen:
        curve.append([run.step, round(distributed.mean_over_ranks(running).item() / seen, 6)])
    if not run.world.is_main:  # the last step is taken: validating and writing the files is rank 0's
        raise SystemExit(0)
    run.elapsed_s += time.time() - t0
    final = validate(run.ema.module, final=True)
    tqdm.write(f"final (step {run.step}): " + ", ".join(f"{k} {v:.4f}" for k, v in final.items()))
    run.save_checkpoint()
    return {"validation": final, "steps_done": run.step, "steps_this_run": run.step - start,
            "stopped_early": stopped_early, "loss_curve": curve}


def say(run: Run, message: str) -> None:
    if run.world.is_main:
        tqdm.write(message)


def provenance(run: Run, summary: dict) -> dict:
    """What a weights file records about the run that made it."""
    args = run.args
    return {
        "command": args.command_line,
        "steps_done": summary["steps_done"],
        "steps_planned": args.steps,
        "stopped_early": summary["stopped_early"],
        "wall_time_s": round(run.elapsed_s, 1),
        "device": device_name(run.device),
        "torch_version": torch.__version__,
        "git_commit": git_commit(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "validation": summary["validation"],
        "loss_curve": summary["loss_curve"],  # [step, mean training loss since the last point]
        "recipe": {k: v for k, v in vars(args).items() if k not in ("command_line", "func")},
        "processes": run.world.size,  # torchrun ranks, each on its slice of every --batch
    }
