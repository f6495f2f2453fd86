"""One training loop for every base model: AdamW, warm-up then cosine decay, EMA, a CSV loss log.

``train`` knows nothing about what it trains: the caller gives the parameters, a ``loss_fn(batch)``
and an endless batch iterator. What is saved afterwards is the EMA copy (``ema.copy_to``), which
for diffusion models gives visibly cleaner samples than the raw weights after a short run.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
from tqdm import tqdm


class EMA:
    """Exponential moving average of a set of parameters; the decay warms up as 1 - 1/(1 + step/10)
    so that early, badly initialised weights are forgotten quickly."""

    def __init__(self, params: Iterable[torch.nn.Parameter], decay: float):
        self.params = [p for p in params]
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay, self.step = decay, 0

    @torch.no_grad()
    def update(self) -> None:
        self.step += 1
        d = min(self.decay, 1 - 1 / (1 + self.step / 10))
        # one fused launch for all tensors: on a GPU a per-tensor loop costs more than the tiny models' step
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - d)

    @torch.no_grad()
    def copy_to(self) -> None:
        for s, p in zip(self.shadow, self.params):
            p.copy_(s)


def steps_that_fit(steps: int, done: int, elapsed: float, max_seconds: float, margin: float = 0.95) -> int:
    """``steps``, or fewer if ``done`` steps in ``elapsed`` seconds say they overrun ``margin`` x
    ``max_seconds`` (the margin absorbs the speed's jitter)."""
    if done == 0 or elapsed <= 0:
        return steps
    return max(done + 1, min(steps, int(margin * max_seconds * done / elapsed)))


def lr_at(step: int, progress: float, lr: float, min_lr: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from ``lr`` down to ``min_lr`` as
    ``progress`` goes from 0 to 1."""
    if step < warmup:
        return lr * (step + 1) / warmup
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def train(
    name: str,
    params: list[torch.nn.Parameter],
    loss_fn: Callable[[dict], torch.Tensor],
    batches: Iterator[dict],
    steps: int,
    lr: float,
    min_lr: float,
    warmup: int = 100,
    weight_decay: float = 0.01,
    ema_decay: float | None = 0.999,
    log_path: str | Path | None = None,
    grad_clip: float = 1.0,
    max_seconds: float | None = None,
    show_progress: bool = True,
) -> dict:
    """Run ``steps`` optimiser steps, or fewer if they would not fit in ``max_seconds``; the EMA
    weights (when ``ema_decay``) are copied into ``params`` at the end. Returns {"steps" (actually
    run), "planned_steps", "seconds", "first_loss", "last_loss"} (first/last = mean of 5% of the steps).

    The cap is applied once, when warm-up ends: if the speed so far says ``steps`` would overrun it,
    the run is shortened to what fits and the cosine decay follows the shortened count, so it still
    ends at ``min_lr``. The schedule never reads the clock otherwise: a run that fits is the same
    bit for bit on a fast or a busy machine. A machine that slows down later still stops at the cap.
    """
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    ema = EMA(params, ema_decay) if ema_decay else None
    writer = None
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "w", newline="")
        writer = csv.writer(log_file)
        writer.writerow(["step", "loss", "lr", "seconds"])
    planned, check_at = steps, min(steps, max(warmup, 10))
    losses, start = [], time.time()
    bar = tqdm(total=steps, desc=name, disable=not show_progress, mininterval=10)
    for step in range(planned):
        if step >= steps:
            break
        elapsed = time.time() - start
        if max_seconds and step == check_at:
            steps = steps_that_fit(steps, step, elapsed, max_seconds)
            bar.total = steps
        if max_seconds and elapsed > max_seconds:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, (step - warmup) / max(1, steps - warmup), lr, min_lr, warmup)
        loss = loss_fn(next(batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        if ema is not None:
            ema.update()
        losses.append(loss.item())
        if writer is not None:
            writer.writerow(
                [step, f"{losses[-1]:.6f}", f"{opt.param_groups[0]['lr']:.3g}", f"{time.time() - start:.1f}"]
            )
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}")
    bar.close()
    if writer is not None:
        log_file.close()
    if ema is not None:
        ema.copy_to()
    tail = max(1, len(losses) // 20)
    return {
        "steps": len(losses),
        "planned_steps": planned,
        "seconds": round(time.time() - start, 1),
        "first_loss": round(sum(losses[:tail]) / tail, 6) if losses else None,
        "last_loss": round(sum(losses[-tail:]) / tail, 6) if losses else None,
    }
