"""Training cost on a CUDA GPU: steps/s and peak GPU memory of one optimizer step of eq. 2.

Run from the repository root on a machine with a GPU (there is none on the project's CPU
machines; the committed results came from a lent one, named in the results file):

    HF_HUB_OFFLINE=1 python bench/train_gpu/train_gpu_benchmark.py   # writes bench/train_gpu_results.{json,md}

What it measures (one step = the eq. 2 loss, backward, AdamW step on the paper's trainable set,
weights in fp32 as the train stage keeps them, the forward/backward under autocast as the train
stage runs it on CUDA):
  1. the toy world's model as the train stage runs it (params.yaml batch and window), fp32 and bf16;
  2. the Stable Diffusion 1.4 UNet architecture (random weights cost what real ones cost), batch 1,
     LAMP's training size (16 frames at 320x512, a 40x64 latent) and 8 frames at 512x512, bf16,
     with and without gradient checkpointing.

How: same inputs every step (``train_benchmark.step_fn``); after ``warmup`` steps, ``repeats``
steps timed one by one with the GPU synchronised around each; time = median; memory =
``torch.cuda.max_memory_allocated`` over the timed steps (what PyTorch's allocator handed out,
weights and optimizer state included; the process's CUDA context, ~0.5 GB, is not counted).
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from diffusers import DDPMScheduler

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "model"))  # model_benchmark.measure

from train_benchmark import step_fn  # noqa: E402

from model.video_unet import build_sd14_unet, inflate_unet  # noqa: E402


def time_steps(fn, warmup: int, repeats: int) -> dict:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {
        "seconds": seconds,
        "steps_per_second": 1 / seconds,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20,
    }


def toy_cases() -> list[dict]:
    from tasks.common.params import load_stage_config
    from tasks.common.pretrained import load_base
    from tasks.train.config import TrainConfig

    cfg = load_stage_config(TrainConfig, "train", ROOT / "params.yaml")
    rows = []
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        base = load_base(ROOT / cfg.base_dir, "train.base_dir", with_controlnet=False)
        video_unet = inflate_unet(base.unet, cfg.video_unet_config(), copy_unet=False).to("cuda")
        latent = base.unet.config.sample_size
        fn, counts = step_fn(
            video_unet,
            base.train_scheduler,
            cfg.batch_size,
            cfg.window,
            latent,
            base.tokenizer.model_max_length,
            base.text_encoder.config.hidden_size,
            "cuda",
            dtype,
        )
        rows.append(
            {
                "case": f"toy: batch {cfg.batch_size}, {cfg.window} frames, {latent}x{latent} latent, {name}",
                "trainable": counts.trainable,
                "total": counts.total,
                **time_steps(fn, 20, 50),
            }
        )
    return rows


def sd14_cases() -> list[dict]:
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    )
    rows = []
    video_unet = inflate_unet(build_sd14_unet(), copy_unet=False).to("cuda")
    for frames, (h, w), label in ((16, (40, 64), "16 frames, 320x512"), (8, (64, 64), "8 frames, 512x512")):
        for checkpointing in (False, True):
            if checkpointing:
                video_unet.enable_gradient_checkpointing()
            else:
                video_unet.disable_gradient_checkpointing()
            fn, counts = step_fn(video_unet, scheduler, 1, frames, (h, w), 77, 768, "cuda", torch.bfloat16)
            row = {
                "case": f"SD1.4 arch: batch 1, {label} ({h}x{w} latent), bf16, gradient checkpointing "
                f"{'on' if checkpointing else 'off'}",
                "trainable": counts.trainable,
                "total": counts.total,
            }
            try:
                row.update(time_steps(fn, 2, 5))
            except torch.cuda.OutOfMemoryError as err:  # a result too: this size does not fit this card
                row["error"] = f"out of memory: {str(err).splitlines()[0]}"
            rows.append(row)
            del fn  # the optimizer state goes with the closure
            gc.collect()
            torch.cuda.empty_cache()
    return rows


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit(
            "bench/train_gpu/train_gpu_benchmark.py needs a CUDA GPU "
            "(bench/train_cpu/train_benchmark.py is the CPU one)"
        )
    torch.backends.cuda.matmul.allow_tf32 = True  # as a user's training script would
    rows = toy_cases() + sd14_cases()
    gpu = torch.cuda.get_device_properties(0)
    machine = f"{gpu.name} ({gpu.total_memory / 2**30:.0f} GiB), torch {torch.__version__}"
    (ROOT / "bench/train_gpu/train_gpu_results.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n"
    )
    lines = [
        "# Training step cost (CUDA GPU)",
        "",
        f"Machine: {machine}. Command: `HF_HUB_OFFLINE=1 python bench/train_gpu/train_gpu_benchmark.py`.",
        "Time: median step after warm-up, GPU synchronised; memory: `torch.cuda.max_memory_allocated` "
        "(weights fp32, optimizer state and activations; not the CUDA context).",
        "",
        "| case | trainable / total params | s/step | steps/s | peak GPU memory (GB) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        cost = (
            f"{r['seconds']:.3f} | {r['steps_per_second']:.2f} | {r['peak_gpu_mb'] / 1024:.1f}"
            if "seconds" in r
            else f"- | - | {r['error']}"
        )
        lines.append(f"| {r['case']} | {r['trainable'] / 1e6:.1f}M / {r['total'] / 1e6:.1f}M | {cost} |")
    (ROOT / "bench/train_gpu/train_gpu_results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
