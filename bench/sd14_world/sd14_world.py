"""The sd14 world's costs on download-lookalike folders: training, generation under each memory switch, SAM, CLIP.

    HF_HUB_OFFLINE=1 python bench/sd14_world/sd14_world.py --size tiny   # CPU: the same configs, reduced width, 64x64
    HF_HUB_OFFLINE=1 python bench/sd14_world/sd14_world.py --size full   # GPU: SD1.4 at real size, 512x512, 16 frames

writes bench/sd14_world/sd14_world_<size>.{json,md}. The folders come from ``maskmotion lookalike``
(maskmotion/tools/lookalike.py; random weights cost what real ones cost). Each case runs in a process of its
own, so its peak memory is its own: on CUDA ``torch.cuda.max_memory_allocated`` (the allocator's peak, weights
included), on CPU the process's peak resident set (``ru_maxrss``, Python and libraries included). Time: the
median of ``--repeats`` runs after one warm-up, same machine, same threads, one case after another.

Cases (each a row): a training step (eq. 2 loss, backward, AdamW on the paper's trainable set) with and without
gradient checkpointing; one video (frame 1 by the ControlNet, then the video UNet, DDIM) with no
memory switch, VAE slicing, attention slicing, model CPU offload (CUDA only) and all of them; SAM
vit_b (tiny: the ``tiny`` type) per frame; the evaluation's CLIP image + text embedding per video.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SIZES = {"tiny": dict(pixels=64, frames=8, steps=4), "full": dict(pixels=512, frames=16, steps=25)}
SWITCHES = ("none", "vae_slicing", "attention_slicing", "cpu_offload", "all")


def peak_memory_gb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def timed(fn, repeats: int, device) -> float:
    import torch

    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def moving_masks(frames: int, pixels: int):
    import numpy as np

    masks = np.zeros((frames, pixels, pixels), bool)
    side = pixels // 4
    for i in range(frames):
        x = i * (pixels - side) // max(1, frames - 1)
        masks[i, pixels // 2 - side // 2 : pixels // 2 + side // 2, x : x + side] = True
    return masks


def video_pipeline(weights: Path, device):
    from model.conditioning import ControlNetCondition
    from model.pipeline import MaskVideoPipeline
    from model.sampler_settings import PAPER_SAMPLER
    from model.video_unet import VideoUNetConfig, inflate_unet
    from tasks.common.pretrained import load_base

    base = load_base(weights / "stable-diffusion-v1-4", controlnet_dir=weights / "sd-controlnet-seg")
    video_unet = inflate_unet(base.unet, VideoUNetConfig(), copy_unet=True).eval()
    pipe = MaskVideoPipeline(
        base.vae,
        base.text_encoder,
        base.tokenizer,
        video_unet,
        base.sample_scheduler,
        base_unet=base.unet,
        controlnet=base.controlnet,
        controlnet_condition=ControlNetCondition("seg"),
        sampler=PAPER_SAMPLER,  # the settings its recorded timings were measured with
    )
    return pipe, base


def run_case(case: str, option: str, weights: Path, size: str, repeats: int) -> dict:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    shape = SIZES[size]
    masks = moving_masks(shape["frames"], shape["pixels"])
    if case == "generate":
        pipe, _ = video_pipeline(weights, device)
        if option == "cpu_offload" or (option == "all" and device.type == "cuda"):
            pipe.to(dtype=dtype)
            pipe.enable_model_cpu_offload(device)
        else:
            pipe.to(device, dtype)
        if option in ("vae_slicing", "all"):
            pipe.enable_vae_slicing()
        if option in ("attention_slicing", "all"):
            pipe.enable_attention_slicing()
        gen = torch.Generator().manual_seed(0)
        seconds = timed(
            lambda: pipe("a person walks along a road", masks, num_inference_steps=shape["steps"], generator=gen),
            repeats,
            device,
        )
        return dict(seconds_per_video=round(seconds, 2))
    if case == "train":
        from model.trainable import set_trainable
        from model.training import first_frame_loss

        pipe, base = video_pipeline(weights, device)
        unet = pipe.video_unet.train()
        set_trainable(unet, "paper")
        if option == "checkpointing":
            unet.enable_gradient_checkpointing()
        pipe.to(device)
        params = [p for p in unet.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=3e-5)
        latent = shape["pixels"] // pipe.vae_scale_factor
        window = min(8, shape["frames"])
        latents = torch.randn(1, 4, window, latent, latent, device=device)
        text = pipe.encode_prompt(["a person walks along a road"], None).float()
        step_masks = torch.as_tensor(masks[None, :window]).float().to(device)

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = first_frame_loss(unet, base.train_scheduler, latents, text, step_masks)
            loss.backward()
            opt.step()

        return dict(seconds_per_step=round(timed(step, repeats, device), 2), window=window)
    if case == "sam":  # one image embedding + a box prompt: what the masks stage pays per frame
        import numpy as np

        from tasks.segment.sam import FramePredictor, load_sam

        model_type = "vit_b" if size == "full" else "tiny"
        predictor = FramePredictor(load_sam(weights / "sam_vit_b_01ec64.pth", model_type, device.type))
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 256, (shape["pixels"], shape["pixels"], 3), dtype=np.uint8) for _ in range(4)]
        box = np.array([8, 8, shape["pixels"] // 2, shape["pixels"] // 2])

        def segment():
            for frame in frames:
                predictor.set_image(frame)
                predictor.predict(box=box, multimask_output=False)
                predictor.forget()

        return dict(seconds_per_frame=round(timed(segment, repeats, device) / len(frames), 3), model_type=model_type)
    if case == "clip":  # the evaluation's embeddings of one video: every frame and the prompt
        import numpy as np
        from PIL import Image

        from tasks.common.clip_weights import load_open_clip

        model, preprocess, tokenizer = load_open_clip(
            "ViT-L-14-quickgelu", str(weights / "open_clip_vit_l_14"), "clip_model", "clip_weights"
        )
        model.to(device)
        rng = np.random.default_rng(0)
        images = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(shape["frames"])]

        @torch.no_grad()
        def embed():
            model.encode_image(torch.stack([preprocess(i) for i in images]).to(device))
            model.encode_text(tokenizer(["a person walks along a road"]).to(device))

        return dict(seconds_per_video=round(timed(embed, repeats, device), 2))
    raise ValueError(case)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="tiny")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--option", help=argparse.SUPPRESS)
    parser.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # one measurement, in this process
        import torch

        row = run_case(args.case, args.option, args.weights, args.size, args.repeats)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        print(json.dumps({**row, "peak_memory_gb": round(peak_memory_gb(device), 2)}))
        return
    import torch

    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights"
        subprocess.run(
            [sys.executable, "-m", "maskmotion.tools.lookalike", "--out", str(weights), "--size", args.size],
            cwd=ROOT,
            check=True,
        )
        cases = [("train", "plain"), ("train", "checkpointing")]
        cases += [("generate", s) for s in SWITCHES if cuda or s != "cpu_offload"]
        cases += [("sam", "per frame"), ("clip", "per video")]
        rows = []
        for case, option in cases:
            cmd = [sys.executable, __file__, "--case", case, "--option", option, "--weights", str(weights)]
            cmd += ["--size", args.size, "--repeats", str(args.repeats)]
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
            rows.append({"case": case, "option": option, **json.loads(out.strip().splitlines()[-1])})
            print(rows[-1], flush=True)
    device = torch.cuda.get_device_name() if cuda else "CPU (2 cores, this project's machine kind)"
    result = {"size": args.size, **SIZES[args.size], "device": device, "rows": rows}
    out = ROOT / "bench" / "sd14_world" / f"sd14_world_{args.size}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# sd14 world costs ({args.size} lookalike, {device})",
        "",
        f"Command: `HF_HUB_OFFLINE=1 python bench/sd14_world/sd14_world.py --size {args.size}`; "
        f"{SIZES[args.size]['pixels']} px, "
        f"{SIZES[args.size]['frames']} frames, {SIZES[args.size]['steps']} DDIM steps, median of {args.repeats} runs.",
        "Memory: " + ("torch.cuda.max_memory_allocated" if cuda else "peak resident set of the case's process") + ".",
        "",
        "| case | option | seconds | peak memory (GB) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        unit = {"train": "step", "sam": "frame"}.get(r["case"], "video")
        seconds = r[f"seconds_per_{unit}"]
        unit = f"s/{unit}"
        lines.append(f"| {r['case']} | {r['option']} | {seconds} {unit} | {r['peak_memory_gb']} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
