"""Training cost on CPU: steps/s and peak memory of one optimizer step of eq. 2.

Run from the repository root:

    HF_HUB_OFFLINE=1 python bench/train_cpu/train_benchmark.py         # writes bench/train_results.{json,md}

What it measures (one step = the eq. 2 loss, backward, AdamW step on the paper's trainable set):
  1. the toy world's model as the train stage runs it: base/toy UNet inflated, the params.yaml
     batch size and window, 64x64 frames (16x16 latents);
  2. the Stable Diffusion 1.4 UNet architecture (random weights, built from its published config),
     batch 1, 4 frames at an 8x8 latent (64x64 pixels), with and without gradient checkpointing.

How: like bench/model/model_benchmark.py (its ``measure``): models are built in the parent, each
measurement runs in a forked child, time = fastest of the repeats after a warm-up, memory = the
child's peak resident set minus its resident set before the first step. One torch thread.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import torch
from diffusers import DDPMScheduler

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "model"))  # model_benchmark.measure

from model_benchmark import measure  # noqa: E402

from model.trainable import set_trainable  # noqa: E402
from model.training import first_frame_loss  # noqa: E402
from model.video_unet import build_sd14_unet, inflate_unet  # noqa: E402


def step_fn(
    video_unet,
    scheduler,
    batch: int,
    frames: int,
    latent: int | tuple[int, int],
    text_len: int,
    text_dim: int,
    device: str = "cpu",
    autocast_dtype: torch.dtype | None = None,
):
    """A closure doing one full training step on fixed random inputs (``latent``: side or (h, w))."""
    h, w = (latent, latent) if isinstance(latent, int) else latent
    counts = set_trainable(video_unet, "paper")
    params = [p for p in video_unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(batch, 4, frames, h, w, generator=g).to(device)
    text = torch.randn(batch, text_len, text_dim, generator=g).to(device)
    masks = (torch.rand(batch, frames, h, w, generator=g) > 0.5).float().to(device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(
            torch.device(device).type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
        ):
            loss = first_frame_loss(video_unet, scheduler, latents, text, masks, generator=g)
        loss.backward()
        optimizer.step()

    return step, counts


def toy_case() -> dict | None:
    from tasks.common.params import load_stage_config
    from tasks.common.pretrained import load_base
    from tasks.train.config import TrainConfig

    cfg = load_stage_config(TrainConfig, "train", ROOT / "params.yaml")
    base_dir = ROOT / cfg.base_dir
    if not (base_dir / "unet").is_dir():
        return None
    base = load_base(base_dir, "train.base_dir", with_controlnet=False)
    video_unet = inflate_unet(base.unet, cfg.video_unet_config(), copy_unet=False)
    latent = base.unet.config.sample_size
    fn, counts = step_fn(
        video_unet,
        base.train_scheduler,
        cfg.batch_size,
        cfg.window,
        latent,
        base.tokenizer.model_max_length,
        base.text_encoder.config.hidden_size,
    )
    r = measure(fn, repeats=5)
    return {
        "case": f"toy: batch {cfg.batch_size}, {cfg.window} frames, {latent}x{latent} latent",
        "trainable": counts.trainable,
        "total": counts.total,
        **r,
        "steps_per_second": 1 / r["seconds"],
    }


def sd14_cases() -> list[dict]:
    rows = []
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    )
    for checkpointing in (False, True):
        video_unet = inflate_unet(build_sd14_unet(), copy_unet=False)
        if checkpointing:
            video_unet.enable_gradient_checkpointing()
        fn, counts = step_fn(video_unet, scheduler, 1, 4, 8, 77, 768)
        r = measure(fn, repeats=2)
        rows.append(
            {
                "case": "SD1.4 arch: batch 1, 4 frames, 8x8 latent, gradient checkpointing "
                f"{'on' if checkpointing else 'off'}",
                "trainable": counts.trainable,
                "total": counts.total,
                **r,
                "steps_per_second": 1 / r["seconds"],
            }
        )
        del video_unet, fn
    return rows


def main() -> None:
    """``python bench/train_cpu/train_benchmark.py [toy] [sd14]`` (default both); rows of cases not re-run are kept."""
    torch.set_num_threads(1)
    which = set(sys.argv[1:]) or {"toy", "sd14"}
    fresh = ([r for r in [toy_case()] if r] if "toy" in which else []) + (sd14_cases() if "sd14" in which else [])
    results = ROOT / "bench/train_cpu/train_results.json"
    kept = json.loads(results.read_text())["rows"] if results.is_file() else []
    kept = [r for r in kept if not any(r["case"].split(":")[0] == f["case"].split(":")[0] for f in fresh)]
    for r in fresh:
        r["load_avg"] = round(os.getloadavg()[0], 1)  # other jobs on the 2 cores slow a run: say how busy it was
    rows = sorted(fresh + kept, key=lambda r: not r["case"].startswith("toy"))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, one thread"
    (ROOT / "bench/train_cpu/train_results.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n"
    )
    lines = [
        "# Training step cost (CPU)",
        "",
        f"Machine: {machine}. Command: `HF_HUB_OFFLINE=1 python bench/train_cpu/train_benchmark.py [toy] [sd14]`.",
        "Time: fastest of the repeats after one warm-up; memory: peak resident set of the forked child minus "
        "its resident set before the first step (weights built in the parent are shared, not counted).",
        "",
        "| case | trainable / total params | s/step | steps/s | peak extra memory (MB) | load avg |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['case']} | {r['trainable'] / 1e6:.1f}M / {r['total'] / 1e6:.1f}M | {r['seconds']:.2f} | "
        f"{r['steps_per_second']:.2f} | {r['peak_extra_mb']:.0f} | {r.get('load_avg', 'n/a')} |"
        for r in rows
    ]
    (ROOT / "bench/train_cpu/train_results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
