"""Cost of the video UNet and the MaskVideo pipeline on CPU (random weights; nothing downloaded).

Run from the repository root:

    HF_HUB_OFFLINE=1 python bench/model/model_benchmark.py            # writes bench/model_results.{json,md}
    HF_HUB_OFFLINE=1 python bench/model/model_benchmark.py --quick    # smaller sweep, prints only

What it measures:
  1. one denoising step (a video-UNet forward, batch 1, no guidance) vs frames F in 8..64, for each
     spatial self-attention mode, on a tiny UNet at a 16x16 latent;
  2. long-video generation (the full pipeline with tiny components) vs number of chunks, with a
     fixed motion window, and the same frame counts generated in a single window for contrast;
  3. the SD1.4 UNet architecture (random weights): parameter counts, and one forward at a small latent.

How: each measurement runs in a forked child process after the models are built in the parent, so
they share nothing but the (copy-on-write) weights. Peak memory = the child's peak resident set
(ru_maxrss) minus its resident set just before the measured call: the extra memory the call needed.
Time = the fastest of the repeats after one warm-up call (the median is in the JSON too): the two
cores are shared with other jobs, and the minimum is the statistic least disturbed by them. One torch
thread, for the same reason.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

from model.pipeline import MaskVideoPipeline  # noqa: E402
from model.sampler_settings import PAPER_SAMPLER  # noqa: E402
from model.trainable import set_trainable  # noqa: E402
from model.video_unet import VideoUNetConfig, build_sd14_unet, inflate_unet  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def measure(fn, repeats: int) -> dict:
    """Run ``fn`` in a forked child: warm-up, then ``repeats`` timed calls; report time and peak memory."""

    def child(queue):
        torch.set_num_threads(1)
        before = rss_bytes()
        times = []
        for i in range(repeats + 1):
            start = time.perf_counter()
            fn()
            if i:  # the first call is a warm-up
                times.append(time.perf_counter() - start)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        queue.put(
            dict(
                seconds=min(times),
                seconds_median=statistics.median(times),
                peak_extra_mb=max(peak - before, 0) / 2**20,
            )
        )

    queue = mp.get_context("fork").Queue()
    process = mp.get_context("fork").Process(target=child, args=(queue,))
    process.start()
    process.join()
    if process.exitcode != 0:
        return dict(seconds=float("nan"), peak_extra_mb=float("nan"), error=f"exit code {process.exitcode}")
    return queue.get()


def tiny_unet2d(latent: int) -> UNet2DConditionModel:
    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=latent,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    ).eval()


def bench_step_vs_frames(runs: list[tuple[str, str, list[int]]], latent: int, repeats: int) -> list[dict]:
    """``runs``: (self-attention mode, SDPA backend, frame counts). Backend ``default`` lets torch pick
    (a fused kernel that never stores the score matrix); ``math`` stores it, as attention without a
    fused kernel does, which makes the memory cost of the score matrix visible."""
    unet2d = tiny_unet2d(latent)
    rows = []
    for mode, backend, frames in runs:
        video_unet = inflate_unet(unet2d, VideoUNetConfig(self_attention=mode)).eval()
        for f in frames:
            latents = torch.randn(1, 4, f, latent, latent)
            text, masks = torch.randn(1, 8, 32), torch.ones(1, f, latent, latent)

            def step():
                with torch.no_grad():
                    if backend == "math":
                        with sdpa_kernel(SDPBackend.MATH):
                            video_unet(latents, 500, text, masks)
                    else:
                        video_unet(latents, 500, text, masks)

            row = dict(mode=mode, sdpa=backend, frames=f, latent=latent, **measure(step, repeats))
            print(
                f"step  {mode:13s} {backend:7s} F={f:3d}  {row['seconds'] * 1e3:8.1f} ms"
                f"  +{row['peak_extra_mb']:7.1f} MB",
                flush=True,
            )
            rows.append(row)
    return rows


def tiny_pipeline() -> MaskVideoPipeline:
    torch.manual_seed(0)
    unet2d = tiny_unet2d(8)
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 16, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=32,
    ).eval()
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {c: i for i, c in enumerate(letters)} | {c + "</w>": 26 + i for i, c in enumerate(letters)}
    vocab |= {"<|startoftext|>": 52, "<|endoftext|>": 53}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=54,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=16,
            bos_token_id=52,
            eos_token_id=53,
            pad_token_id=53,
        )
    ).eval()
    scheduler = DDIMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return MaskVideoPipeline(
        vae, text_encoder, tokenizer, inflate_unet(unet2d).eval(), scheduler, base_unet=unet2d, sampler=PAPER_SAMPLER
    )


def bench_chunks(chunk_counts: list[int], window: int, steps: int) -> list[dict]:
    pipe = tiny_pipeline()
    first = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    rows = []
    for chunks in chunk_counts:
        num_frames = 1 + chunks * (window - 1)
        masks = np.zeros((num_frames, 32, 32), dtype=bool)
        masks[:, 8:24, 8:24] = True
        # the same frames in a single window, for contrast (identical to "chunked" for one chunk)
        variants = [("chunked", window)] + ([("one window", num_frames)] if chunks > 1 else [])
        for label, w in variants:

            def generate():
                pipe(
                    "a red ball",
                    masks,
                    first_frame=first,
                    num_inference_steps=steps,
                    guidance_scale=7.5,
                    window=w,
                    generator=torch.Generator().manual_seed(0),
                )

            row = dict(
                how=label,
                chunks=chunks if w == window else 1,
                frames=num_frames,
                window=w,
                steps=steps,
                **measure(generate, repeats=2),
            )
            print(
                f"video {label:10s} frames={num_frames:3d} chunks={row['chunks']:2d}  {row['seconds']:6.2f} s"
                f"  +{row['peak_extra_mb']:7.1f} MB",
                flush=True,
            )
            rows.append(row)
    return rows


def bench_sd14(latent: int, frames: int) -> dict:
    unet = inflate_unet(build_sd14_unet().eval(), copy_unet=False).eval()
    base_params = sum(
        p.numel()
        for n, p in unet.named_parameters()
        if not any(k in n for k in ("temporal_conv", "temporal_attention", "mask_branch"))
    )
    counts = {scheme: set_trainable(unet, scheme) for scheme in ("paper", "lamp", "new_layers")}
    latents, text = torch.randn(1, 4, frames, latent, latent), torch.randn(1, 77, 768)
    masks = torch.ones(1, frames, latent * 8, latent * 8)

    def forward():
        with torch.no_grad():
            unet(latents, 500, text, masks)

    row = dict(
        latent=latent,
        frames=frames,
        base_2d_params=base_params,
        total_params=counts["paper"].total,
        trainable_paper=counts["paper"].trainable,
        trainable_lamp=counts["lamp"].trainable,
        new_layer_params=counts["new_layers"].trainable,
        **measure(forward, repeats=2),
    )
    print(
        f"sd14  latent={latent} F={frames}: {row['seconds']:.2f} s  +{row['peak_extra_mb']:.0f} MB; "
        f"{counts['paper']}; {counts['lamp']}",
        flush=True,
    )
    return row


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?"
    )
    return (
        f"{platform.machine()}, {os.cpu_count()} cores ({model}), "
        f"{os.sysconf('SC_PHYS_PAGES') * PAGE / 2**30:.0f} GiB RAM, torch {torch.__version__} "
        f"({torch.get_num_threads()} thread), no GPU"
    )


def write_markdown(results: dict, path: Path) -> None:
    """The results as tables, with the ratios that answer "linear in frames?" and "flat in chunks?"."""
    lines = [
        "# Model benchmark: video UNet step cost and long-video memory",
        "",
        "Written by `HF_HUB_OFFLINE=1 python bench/model/model_benchmark.py` (numbers in `model_results.json`).",
        "",
        f"**Machine:** {results['machine']}.",
        "",
        f"**How measured:** {' '.join(results['method'].split())}",
        "",
        "## 1. One denoising step vs frames (tiny UNet, 16x16 latent, batch 1, no guidance)",
        "",
        "| self-attention | SDPA kernel | frames | time (ms) | peak extra memory (MB) |",
        "|---|---|---:|---:|---:|",
    ]
    steps = results["step_vs_frames"]
    for r in steps:
        lines.append(
            f"| {r['mode']} | {r['sdpa']} | {r['frames']} | {r['seconds'] * 1e3:.0f} | {r['peak_extra_mb']:.1f} |"
        )
    lines += ["", "Growth from the fewest to the most frames (x frames, x time, x memory):", ""]
    for mode, sdpa in dict.fromkeys((r["mode"], r["sdpa"]) for r in steps):
        rows = [r for r in steps if r["mode"] == mode and r["sdpa"] == sdpa]
        lo, hi = rows[0], rows[-1]
        lines.append(
            f"- {mode} ({sdpa}): frames x{hi['frames'] / lo['frames']:.0f}, time "
            f"x{hi['seconds'] / lo['seconds']:.1f}, memory x{hi['peak_extra_mb'] / lo['peak_extra_mb']:.1f}"
        )
    lines += [
        "",
        "## 2. Long-video generation vs number of chunks (tiny pipeline, 32x32 frames, window 8, CFG 7.5)",
        "",
        "| how | frames | chunks | window | DDIM steps | time (s) | peak extra memory (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    videos = results["video_vs_chunks"]
    for r in videos:
        lines.append(
            f"| {r['how']} | {r['frames']} | {r['chunks']} | {r['window']} | {r['steps']} | "
            f"{r['seconds']:.2f} | {r['peak_extra_mb']:.1f} |"
        )
    chunked = [r["peak_extra_mb"] for r in videos if r["how"] == "chunked"]
    lines += [
        "",
        f"Chunked peak memory ranges {min(chunked):.1f}-{max(chunked):.1f} MB over "
        f"{videos[0]['chunks']}-{max(r['chunks'] for r in videos)} chunks.",
    ]
    if results.get("load_average"):
        lines += ["", f"Load average (1, 5, 15 min) at start and end of the run: {results['load_average']}."]
    sd = results.get("sd14")
    if sd:
        lines += [
            "",
            "## 3. Stable Diffusion 1.4 UNet architecture (random weights), inflated with the default config",
            "",
            "| quantity | value |",
            "|---|---:|",
            f"| 2-D UNet parameters | {sd['base_2d_params']:,} |",
            "| new layer parameters (temporal conv + temporal attention + mask branches) "
            f"| {sd['new_layer_params']:,} |",
            f"| total parameters of the video UNet | {sd['total_params']:,} |",
            f"| trainable, paper scheme (new layers + attn1/attn2 Q, K, V, out) | {sd['trainable_paper']:,} |",
            f"| trainable, LAMP scheme (new layers + attn1 Q) | {sd['trainable_lamp']:,} |",
            f"| one forward, latent {sd['latent']}x{sd['latent']}, {sd['frames']} frames, batch 1: time "
            f"| {sd['seconds']:.2f} s |",
            f"| same forward: peak extra memory | {sd['peak_extra_mb']:.0f} MB |",
        ]
    if results.get("notes"):
        lines += ["", "## Reading", ""] + [f"- {note}" for note in results["notes"]]
    path.write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small sweep, results printed not written")
    parser.add_argument("--out", default=str(Path(__file__).with_name("model_results.json")))
    parser.add_argument("--markdown-only", action="store_true", help="rewrite the .md from an existing .json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    markdown = Path(args.out).with_suffix(".md")
    if args.markdown_only:
        write_markdown(json.loads(Path(args.out).read_text()), markdown)
        return

    frames = [8, 16] if args.quick else [8, 16, 32, 64]
    runs = [(mode, "default", frames) for mode in ("first_frame", "full", "sparse_causal", "per_frame")]
    # the stored score matrix of full attention at F=64 would be 4 GiB: stop the math runs at 32
    runs += [(mode, "math", [f for f in frames if f <= 32]) for mode in ("first_frame", "full")]
    load_start = os.getloadavg()
    results = dict(
        machine=machine(),
        method=__doc__.split("How:", 1)[1].strip(),
        step_vs_frames=bench_step_vs_frames(runs, latent=16, repeats=3),
        video_vs_chunks=bench_chunks([1, 2] if args.quick else [1, 2, 4, 8], window=8, steps=2 if args.quick else 5),
        sd14=None if args.quick else bench_sd14(latent=8, frames=2),
    )
    results["load_average"] = [list(load_start), list(os.getloadavg())]
    if not args.quick:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        write_markdown(results, markdown)
        print(f"wrote {args.out} and {markdown}")


if __name__ == "__main__":
    main()
