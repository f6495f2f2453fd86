"""What the toy text-to-image UNet needs to draw the prompted shape: it alone, trained as the base stage trains it.

Each variant of the spec (``base`` keys merged over params.yaml's) renders the base stage's training pool,
encodes it with ``base/toy``'s VAE (frozen: a variant changes the UNet and its text encoder only), trains
them as the base stage does (``tasks.base.build.train_unet``), and samples the held-out prompts as
``metrics/base.json`` samples them (``tasks.base.quality_run.sample_t2i``, the quality section's steps and
guidance), as many prompts it trained on, and the held-out combos turned or stretched (``posed_eval_pool``,
prompted with pose words where the variant's captions have them), read by the toy palette's detector. A variant with
``score: committed`` trains nothing: it scores ``base/toy``'s own UNet (the baseline, in the same run; its
``quality`` keys set the sampler); ``score: truth`` scores the held-out frames as rendered through
``base/toy``'s VAE (the ceiling). Each row goes to
``t2i_shape_results.jsonl``, its held-out samples to ``sheets/<variant>.jpg`` (a row per prompted shape);
what the rows say is in docs/experiments.md.

    HF_HUB_OFFLINE=1 python bench/t2i_shape/t2i_shape.py bench/t2i_shape/t2i_shape.yaml [--only NAME ...] [--threads 1]
"""

from __future__ import annotations

import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
sys.path.insert(0, str(ROOT))

from bench.fewshot.variant_base import run_spec, variant_config  # noqa: E402
from tasks.base.build import encode_pool, train_unet  # noqa: E402
from tasks.base.config import BaseConfig  # noqa: E402
from tasks.base.data import FramePool  # noqa: E402
from tasks.base.pools import pools, posed_eval_pool, toy_tokenizer, upright_eval_pool  # noqa: E402
from tasks.base.quality_run import sample_t2i, vae_reconstruct  # noqa: E402
from tasks.common.params import load_stage_config  # noqa: E402
from tasks.common.toy import SHAPES  # noqa: E402
from tasks.common.toy_palette import classify_shape, detect_object, score_samples  # noqa: E402
from tasks.common.visualize import contact_sheet  # noqa: E402

# every held-out frame (base.data.n_eval_scenes): the quality section's 24 move a figure by 0.04 a sample
N_SAMPLES = 96
SHEETS = ROOT / "bench" / "t2i_shape" / "sheets"  # one picture per variant, rewritten by each run


def run_variant(name: str, overlay: dict, params: Path, work: Path, threads: int | None = None) -> dict:
    """Train the variant's UNet and text encoder over the committed VAE, save them as the base stage
    does beside the committed models, and score the folder."""
    cfg = variant_config(params, overlay, "unet", work / name, threads)
    pool, single, eval_pool, _ = pools(cfg)
    tokenizer = toy_tokenizer(cfg)
    committed = ROOT / cfg.out_dir
    vae = AutoencoderKL.from_pretrained(committed / "vae", torch_dtype=torch.float32).eval()
    latents = encode_pool(vae, pool)
    t0 = time.perf_counter()
    unet, text_encoder, _, report = train_unet(cfg, tokenizer, latents, pool, vae.config.scaling_factor)
    seconds = time.perf_counter() - t0
    folder = work / name / "base"
    shutil.copytree(committed, folder, ignore=shutil.ignore_patterns("logs"))
    unet.to(torch.float16).save_pretrained(folder / "unet")  # as the base stage saves it
    text_encoder.to(torch.float16).save_pretrained(folder / "text_encoder")
    tokenizer.save_pretrained(folder / "tokenizer")
    row = {"variant": name, "steps": report["steps"], "train_s": round(seconds, 1), "last_loss": report["last_loss"]}
    return row | score(folder, cfg, eval_pool, single, SHEETS / f"{name}.jpg")


def score(folder: Path, cfg: BaseConfig, eval_pool: FramePool, seen_pool: FramePool, sheet: Path) -> dict:
    """The saved pipeline in ``folder`` sampled on the held-out prompts, as ``metrics/base.json`` samples
    them (the quality section's steps and guidance), and on as many prompts it trained on (``seen``:
    spread over the single-object training pool), each scored by the toy palette's detector. A model
    that draws the seen prompts' shapes and not the held-out ones' memorised combos; one that draws
    neither has not learned shapes from text."""
    q = cfg.quality
    held_prompts, held_combos = eval_pool.prompts[:N_SAMPLES], eval_pool.combos[:N_SAMPLES]
    picks = np.linspace(0, len(seen_pool) - 1, N_SAMPLES).astype(int)
    seen_prompts, seen_combos = [seen_pool.prompts[i] for i in picks], [seen_pool.combos[i] for i in picks]
    held = sample_t2i(folder, held_prompts, q.inference_steps, q.guidance_scale, cfg.seed)
    seen = sample_t2i(folder, seen_prompts, q.inference_steps, q.guidance_scale, cfg.seed)
    # the held-out combos turned or stretched, prompted as the variant's captions name poses
    posed_pool = posed_eval_pool(cfg)
    posed = sample_t2i(folder, posed_pool.prompts[:N_SAMPLES], q.inference_steps, q.guidance_scale, cfg.seed)
    write_sheet(posed, [c[1] for c in posed_pool.combos[:N_SAMPLES]], sheet.with_name(f"posed-{sheet.name}"))
    return detected(held, held_combos, sheet) | {
        "seen_shape_any_pose": score_samples(seen, seen_combos, any_pose=True)["shape_accuracy"],
        "seen_colour": score_samples(seen, seen_combos)["colour_accuracy"],
        "posed_shape_any_pose": score_samples(posed, posed_pool.combos[:N_SAMPLES], any_pose=True)["shape_accuracy"],
    }


def detected(images: np.ndarray, combos: list, sheet: Path) -> dict:
    """What the toy palette's detector reads in ``images`` against their prompts' ``combos``; ``drawn``:
    the shapes it finds (any pose; None where no object was found); ``sheet``: their picture."""
    upright = score_samples(images, combos)
    write_sheet(images, [c[1] for c in combos], sheet)
    drawn = Counter(classify_shape(detect_object(img)[1], any_pose=True) for img in images)
    return {
        "shape": upright["shape_accuracy"],
        "shape_any_pose": score_samples(images, combos, any_pose=True)["shape_accuracy"],
        "colour": upright["colour_accuracy"],
        "ground": upright["ground_accuracy"],
        "drawn": {str(shape): drawn[shape] for shape in [*SHAPES, None] if drawn[shape]},
        "n": upright["n"],
    }


def write_sheet(images: np.ndarray, shapes: list[str], path: Path) -> None:
    """A picture of the samples: one row per prompted shape (in SHAPES' order: circle, square, triangle,
    star, diamond), its first 8."""
    rows = [images[[i for i, s in enumerate(shapes) if s == shape][:8]] for shape in SHAPES]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(contact_sheet([r for r in rows if len(r)])).save(path, quality=90)


def score_committed(name: str, overlay: dict, params: Path, work: Path, threads: int | None) -> dict:
    """The committed base's UNet, scored as the variants are (its baseline, in the same run), with the
    overlay's sampler settings (``quality``)."""
    cfg = variant_config(params, overlay, "unet", work / name, threads)
    _, single, eval_pool, _ = pools(cfg)
    row = {"variant": name, "steps": cfg.unet.train.steps, "guidance": cfg.quality.guidance_scale}
    return row | score(ROOT / cfg.out_dir, cfg, eval_pool, single, SHEETS / f"{name}.jpg")


def score_truth(params: Path) -> dict:
    """The held-out frames as rendered, through the committed VAE, read by the same detector: the
    ceiling of every variant's held-out figures."""
    cfg = load_stage_config(BaseConfig, "base", params)
    pool = upright_eval_pool(cfg)
    frames = vae_reconstruct(ROOT / cfg.out_dir, pool.frames[:N_SAMPLES])
    return {"variant": "truth through the VAE"} | detected(frames, pool.combos[:N_SAMPLES], SHEETS / "truth.jpg")


def run_one(name: str, overlay: dict, params: Path, work: Path, threads: int | None) -> dict:
    """A spec entry's row: a ``score:`` entry scores without training, any other trains a variant."""
    scored = overlay.pop("score", None)
    if scored == "committed":
        return score_committed(name, overlay, params, work, threads)
    if scored == "truth":
        return score_truth(params)
    return run_variant(name, overlay, params, work, threads)


def main(argv: list[str] | None = None) -> None:
    run_spec(argv, __doc__.split("\n\n")[0], HERE / "t2i_shape_results.jsonl", run_one)


if __name__ == "__main__":
    main()
