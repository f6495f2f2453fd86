"""What one frame costs in one denoising call: the plain 2-D UNet (a peer's) against the video UNet,
switch by switch.

    HF_HUB_OFFLINE=1 python bench/speed/row_cost.py [--threads 2] [--base base/toy]

The side-by-side bench (``side_by_side.py``) found ours about 1.9x Text2Video-Zero + ControlNet's seconds at
equal steps while both push about as many frame-rows through a UNet per video. This prices a row: the
base's 2-D UNet on 16 rows (two guidance halves of 8 frames, as a peer calls it, with its per-frame
self-attention), the same UNet with cross-frame attention on frame 1 (Text2Video-Zero's), then the
video UNet the train stage builds (``model.video_unet.inflate_unet``, new layers at random: they cost
what trained ones cost) with each of its additions on, one at a time and all together, on the same
16 rows (2 x 8 frames, masks on every row). The ControlNet a peer runs beside its UNet is priced too.
Each figure is the median of ``--repeats`` calls after two warm-ups, in this process, all in one run:
compare rows with each other, not with another run's. Writes ``row_cost_results.md``.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).parent
FRAMES, HALVES = 8, 2

NONE = dict(self_attention="per_frame", mask_cross_attention=False, temporal_attention=False, temporal_conv=False)
VARIANTS = [  # (label, VideoUNetConfig fields); the first is the 2-D UNet inside the video wrapper
    ("video UNet, every addition off (per-frame attention)", NONE),
    ("+ self-attention on frame 1 (eq. 5)", {**NONE, "self_attention": "first_frame"}),
    ("+ temporal attention", {**NONE, "temporal_attention": True}),
    ("+ temporal conv", {**NONE, "temporal_conv": True}),
    ("+ mask cross-attention (eq. 7)", {**NONE, "mask_cross_attention": True}),
    ("ours: all of them (the trained model)", {}),
]


def median_seconds(call, repeats: int) -> float:
    for _ in range(2):
        call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, default=ROOT / "base" / "toy")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from model.video_unet import VideoUNetConfig, inflate_unet
    from tasks.common.pretrained import load_base

    base = load_base(args.base, "--base")
    unet, controlnet = base.unet, base.controlnet
    size = unet.config.sample_size
    g = torch.Generator().manual_seed(0)
    rows = HALVES * FRAMES
    latents = torch.randn(rows, unet.config.in_channels, size, size, generator=g)
    text = torch.randn(rows, base.tokenizer.model_max_length, unet.config.cross_attention_dim, generator=g)
    t = torch.tensor(500)
    video = latents.view(HALVES, FRAMES, *latents.shape[1:]).transpose(1, 2)  # (B, C, F, h, w)
    masks = (torch.rand(HALVES, FRAMES, size, size, generator=g) > 0.5).float()
    video_text = text[::FRAMES]

    results = []
    with torch.no_grad():
        plain = median_seconds(lambda: unet(latents, t, encoder_hidden_states=text), args.repeats)
        results.append(("2-D UNet, per-frame attention (a peer's UNet)", plain))
        if controlnet is not None:
            pixels = size * 2 ** (len(base.vae.config.block_out_channels) - 1)
            cond = torch.rand(rows, controlnet.config.conditioning_channels, pixels, pixels, generator=g)
            seconds = median_seconds(
                lambda: controlnet(latents, t, encoder_hidden_states=text, controlnet_cond=cond), args.repeats
            )
            results.append(("its ControlNet (Text2Video-Zero + ControlNet runs both)", seconds))
        for label, fields in VARIANTS:
            net = inflate_unet(unet, VideoUNetConfig(**fields)).eval()
            call = (
                (lambda n=net: n(video, t, video_text, masks=masks))
                if fields.get("mask_cross_attention", True)
                else (lambda n=net: n(video, t, video_text))
            )
            results.append((label, median_seconds(call, args.repeats)))
    write_markdown(results, plain, args)


def write_markdown(results: list[tuple[str, float]], plain: float, args) -> None:
    lines = [
        "# What one frame costs in one denoising call",
        "",
        "Written by `python bench/speed/row_cost.py` (its docstring: what is timed). The toy base "
        f"(`{args.base.relative_to(ROOT) if args.base.is_relative_to(ROOT) else args.base}`), "
        f"{HALVES} x {FRAMES} = {HALVES * FRAMES} rows a call, median of {args.repeats} calls after two "
        f"warm-ups, {args.threads} thread(s), one run ({datetime.date.today().isoformat()}, "
        f"{platform.machine()} CPU).",
        "",
        "| network | ms a call | ms a frame-row | vs the 2-D UNet |",
        "|---|---|---|---|",
    ]
    for label, seconds in results:
        lines.append(
            f"| {label} | {1000 * seconds:.1f} | {1000 * seconds / (HALVES * FRAMES):.2f} | {seconds / plain:.2f}x |"
        )
    (HERE / "row_cost_results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
