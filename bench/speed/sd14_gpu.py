"""SD1.4's real cost on a GPU: inference at 16 x 512 x 512 under each memory switch, training at 16 x 512 x 320,
and the video UNet's achieved TFLOP/s against the card's bf16 peak.

    HF_HUB_OFFLINE=1 python bench/speed/sd14_gpu.py              # on a CUDA machine: a few minutes
    HF_HUB_OFFLINE=1 python bench/speed/sd14_gpu.py --dry-run    # anywhere: the same cases, tiny, on the CPU

Random weights in SD1.4's architecture (``maskmotion.tools.lookalike``'s builders, in memory: nothing is
written or downloaded); they cost what real ones cost. Each case runs in a process of its own, so its
memory is its own: ``torch.cuda.max_memory_allocated`` (the allocator's peak, weights included; the CUDA
context comes on top). Cases:

- ``generate``: one video, 16 frames at 512 x 512, frame 1 by the ControlNet, frames 2..n in windows of 8
  with the project's sampler settings, ``--steps`` DDIM steps (seconds per step and per video at that
  count); fp32, and bf16 with no switch, VAE slicing, attention slicing, model CPU offload, all of them.
- ``train``: a training step (eq. 2, AdamW on the paper's trainable set, bf16 autocast), 16 frames at
  512 x 320, with and without gradient checkpointing.
- ``unet``: one video-UNet call as the sampler makes it (3 x 8 frames: both guidance halves and the
  mask-guidance rows) at 64 x 64 latents in bf16: FLOPs counted by ``torch.utils.flop_counter``, time by
  CUDA events (median of 10 after 3 warm-ups), achieved TFLOP/s and its share of the card's dense bf16 peak.

Writes ``bench/speed/sd14_gpu_results.json`` and ``.md`` (``--dry-run`` writes nothing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).parent
PROMPT = "a person walks along a road"
# dense bf16 tensor-core peaks (TFLOP/s) as the vendors publish them, by a name's key words
BF16_PEAK = {
    "H200": 989.4,
    "H100 SXM": 989.4,
    "H100 80GB HBM3": 989.4,
    "H100 PCIe": 756.0,
    "H100": 989.4,
    "A100": 312.0,
}
FULL = dict(size="full", generate=(16, 512, 512), train=(16, 512, 320), unet_latents=64)
TINY = dict(size="tiny", generate=(8, 64, 64), train=(8, 64, 48), unet_latents=8)
CASES = [
    ("generate", "fp32"),
    ("generate", "bf16"),
    ("generate", "bf16+vae_slicing"),
    ("generate", "bf16+attention_slicing"),
    ("generate", "bf16+cpu_offload"),
    ("generate", "bf16+all"),
    ("train", "bf16"),
    ("train", "bf16+checkpointing"),
    ("unet", "bf16"),
]


def peak_tflops(name: str) -> float | None:
    return next((peak for key, peak in BF16_PEAK.items() if key in name), None)


def build_pipeline(shape: dict, device):
    """SD1.4's parts with random weights, as the generate stage assembles them."""
    import torch
    from diffusers import DDIMScheduler
    from transformers import AutoTokenizer

    from maskmotion.tools import lookalike
    from model.conditioning import ControlNetCondition
    from model.pipeline import MaskVideoPipeline
    from model.sampler_settings import SamplerSettings
    from model.video_unet import inflate_unet

    size = shape["size"]
    torch.manual_seed(0)
    unet = lookalike.build_unet(size).eval()
    controlnet = lookalike.build_controlnet(unet, size).eval()
    folder = Path(tempfile.mkdtemp()) / "tokenizer"
    lookalike.write_tokenizer(folder)
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1)
    pipe = MaskVideoPipeline(
        lookalike.build_vae(size).eval(),
        lookalike.build_text_encoder(size).eval(),
        AutoTokenizer.from_pretrained(folder),
        inflate_unet(unet, share_frozen="paper").eval(),  # as the loader builds it: the UNet held once
        scheduler,
        base_unet=unet,
        controlnet=controlnet,
        controlnet_condition=ControlNetCondition("seg"),
        sampler=SamplerSettings(window=8),
    )
    for module in pipe.modules():
        module.requires_grad_(False)
    return pipe


def moving_masks(frames: int, height: int, width: int):
    import numpy as np

    masks = np.zeros((frames, height, width), bool)
    side = min(height, width) // 4
    for i in range(frames):
        x = i * (width - side) // max(1, frames - 1)
        masks[i, height // 2 - side // 2 : height // 2 + side // 2, x : x + side] = True
    return masks


def cuda_seconds(fn, repeats: int, warmups: int = 1) -> float:
    import torch

    for _ in range(warmups):
        fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def generate_case(option: str, shape: dict, steps: int, device) -> dict:
    import torch

    pipe = build_pipeline(shape, device)
    dtype = torch.bfloat16 if option.startswith("bf16") else torch.float32
    switches = option.split("+")[1:]
    if "all" in switches:
        switches = ["vae_slicing", "attention_slicing", "cpu_offload"]
    if "cpu_offload" in switches and device.type == "cuda":
        pipe.to(dtype=dtype)
        pipe.enable_model_cpu_offload(device)
    else:
        pipe.to(device, dtype)
    if "vae_slicing" in switches:
        pipe.enable_vae_slicing()
    if "attention_slicing" in switches:
        pipe.enable_attention_slicing()
    frames, height, width = shape["generate"]
    masks = moving_masks(frames, height, width)

    def video():
        pipe(PROMPT, masks, num_inference_steps=steps, generator=torch.Generator().manual_seed(0))

    seconds = cuda_seconds(video, repeats=1)
    return dict(seconds_per_video=round(seconds, 2), seconds_per_step=round(seconds / steps, 3), steps=steps)


def train_case(option: str, shape: dict, device) -> dict:
    import torch

    from model.trainable import set_trainable
    from model.training import first_frame_loss

    pipe = build_pipeline(shape, device)
    unet = pipe.video_unet.train()
    set_trainable(unet, "paper")
    if "checkpointing" in option:
        unet.enable_gradient_checkpointing()
    pipe.to(device)
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-5)
    frames, height, width = shape["train"]
    factor = pipe.vae_scale_factor
    latents = torch.randn(1, 4, frames, height // factor, width // factor, device=device)
    text = pipe.encode_prompt([PROMPT], None).float()
    masks = torch.as_tensor(moving_masks(frames, height, width)[None]).float().to(device)
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = first_frame_loss(unet, scheduler, latents, text, masks)
        loss.backward()
        optimizer.step()

    return dict(seconds_per_step=round(cuda_seconds(step, repeats=3), 3), frames=frames)


def unet_case(shape: dict, device) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    pipe = build_pipeline(shape, device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    unet = pipe.video_unet.to(device, dtype)
    side = shape["unet_latents"]
    sample = torch.randn(3, 4, 8, side, side, device=device, dtype=dtype)
    text = torch.randn(3, 77, pipe.text_encoder.config.hidden_size, device=device, dtype=dtype)
    masks = torch.ones(2, 8, side, side, device=device, dtype=dtype)

    @torch.no_grad()
    def call():
        unet(sample, 500, text, masks)

    counter = FlopCounterMode(display=False)
    with counter:
        call()
    flops = counter.get_total_flops()
    seconds = cuda_seconds(call, repeats=10, warmups=3)
    row = dict(tflop_per_call=round(flops / 1e12, 3), seconds_per_call=round(seconds, 4))
    row["achieved_tflops"] = round(flops / seconds / 1e12, 1)
    if device.type == "cuda":
        peak = peak_tflops(torch.cuda.get_device_name())
        row["bf16_peak_tflops"] = peak
        row["share_of_peak"] = None if peak is None else round(row["achieved_tflops"] / peak, 3)
    return row


def run_case(case: str, option: str, shape: dict, steps: int) -> dict:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if case == "generate":
        row = generate_case(option, shape, steps, device)
    elif case == "train":
        row = train_case(option, shape, device)
    else:
        row = unet_case(shape, device)
    if device.type == "cuda":
        row["peak_memory_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return row


def write_results(result: dict) -> None:
    (HERE / "sd14_gpu_results.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# SD1.4 on {result['device']}",
        "",
        "Written by `python bench/speed/sd14_gpu.py` (its docstring: what each case runs). Random weights in",
        f"SD1.4's architecture; generate: {result['shape']['generate']} (frames, height, width), "
        f"{result['steps']} DDIM steps; train: {result['shape']['train']}; memory: the allocator's peak.",
        "",
        "| case | option | seconds | peak memory (GB) | other |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        seconds = r.get("seconds_per_video") or r.get("seconds_per_step") or r.get("seconds_per_call")
        other = {k: v for k, v in r.items() if k not in ("case", "option", "peak_memory_gb") and "seconds" not in k}
        lines.append(f"| {r['case']} | {r['option']} | {seconds} | {r.get('peak_memory_gb')} | {json.dumps(other)} |")
    (HERE / "sd14_gpu_results.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on whatever device there is; write nothing")
    ap.add_argument("--steps", type=int, default=10, help="DDIM steps of a generate case")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--option", help=argparse.SUPPRESS)
    args = ap.parse_args()
    shape = TINY if args.dry_run else FULL
    steps = 2 if args.dry_run else args.steps
    if args.case:  # one case, in this process
        print("ROW " + json.dumps(run_case(args.case, args.option, shape, steps)))
        return
    import torch

    if not (torch.cuda.is_available() or args.dry_run):
        raise SystemExit("no CUDA device: this benchmark measures a GPU (--dry-run runs it tiny on the CPU)")
    rows = []
    for case, option in CASES:
        if case == "generate" and "cpu_offload" in option and not torch.cuda.is_available():
            continue
        cmd = [sys.executable, __file__, "--case", case, "--option", option, "--steps", str(steps)]
        cmd += ["--dry-run"] if args.dry_run else []
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        row = {"case": case, "option": option}
        if done.returncode:  # e.g. out of memory: recorded, and the other cases still run
            row["error"] = (
                done.stderr.strip().splitlines()[-1][:200] if done.stderr.strip() else f"exit {done.returncode}"
            )
        else:
            row.update(json.loads(done.stdout.split("ROW ", 1)[1]))
        rows.append(row)
        print(json.dumps(row), flush=True)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    result = {"device": device, "shape": shape, "steps": steps, "rows": rows}
    if not args.dry_run:
        write_results(result)


if __name__ == "__main__":
    main()
