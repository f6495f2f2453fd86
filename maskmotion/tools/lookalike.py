"""Lookalike downloads: the sd14 world's weight folders, laid out and configured as the real ones, with random weights.

Under ``--out`` this writes (names as the real downloads are usually saved):

    stable-diffusion-v1-4/     CompVis/stable-diffusion-v1-4 in the diffusers layout: model_index.json, scheduler/
                               (SD1.4's PNDM config), unet/ vae/ text_encoder/ safety_checker/ (fp32 and/or
                               *.fp16.safetensors), tokenizer/ (CLIP's real BPE, rebuilt from open_clip's vocabulary
                               file), feature_extractor/
    sd-controlnet-seg/         lllyasviel/sd-controlnet-seg: config.json + diffusion_pytorch_model.safetensors
                               (``--controlnet scribble``: sd-controlnet-scribble/, same architecture)
    open_clip_vit_l_14/        open_clip_pytorch_model.bin (a state dict, as the hub ships it) + open_clip_config.json
    sam_vit_b_01ec64.pth       a segment-anything state dict (torch.save of the state dict, as the real file)

``--size full`` uses the real architectures (a few GB; for checking a machine before the real download).
``--size tiny`` keeps every config field and the layout, with widths (and depths of the text towers) scaled
down, so the whole sd14 DAG runs on a CPU at 64x64 frames. The tokenizer is always the real one, hence
vocab 49408 and 77 positions at either size. Same seed, same bytes.

The tiny open_clip model is no built-in architecture: another process loads it by the ``local-dir:`` schema,
``open_clip.create_model_and_transforms("local-dir:<out>/open_clip_vit_l_14")`` (the folder's
open_clip_config.json names the architecture; ``pretrained=`` is then ignored). The full one also loads as
``ViT-L-14-quickgelu`` with ``pretrained=<out>/open_clip_vit_l_14/open_clip_pytorch_model.bin``.
The tiny SAM file holds the project's ``tiny`` model type (masks.sam_model_type: tiny).

Run:  maskmotion lookalike --out weights [--size tiny|full] [--seed 0] [--variants fp32,fp16]
          [--controlnet seg|scribble] [--parts sd14,controlnet,clip,sam] [--force]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

import torch

from maskmotion.tools.lookalike_configs import (
    CLIP_MEAN,
    CLIP_MODEL_FULL,
    CLIP_STD,
    FEATURE_EXTRACTOR,
    MODEL_INDEX,
    PUBLISHED,
    SCHEDULER,
    controlnet_options,
    open_clip_model_config,
    safety_checker_config,
    text_config,
    unet_config,
    vae_config,
    write_json,
)
from maskmotion.tools.lookalike_tokenizer import write_tokenizer

SIZES = ("full", "tiny")
PARTS = ("sd14", "controlnet", "clip", "sam")
SD14_DIR = "stable-diffusion-v1-4"
CLIP_DIR = "open_clip_vit_l_14"
CLIP_FILE = "open_clip_pytorch_model.bin"
SAM_FILE = "sam_vit_b_01ec64.pth"

# ---------------------------------------------------------------------------------------------
# models: built under a seed of their own, saved as the real files are


@contextlib.contextmanager
def seeded(seed: int, part: str):
    """Each part draws from its own stream (seed and part name), leaving the caller's RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(zlib.crc32(f"{seed}:{part}".encode()))
        yield


def build_unet(size: str):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_config(unet_config(size))


def build_vae(size: str):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_config(vae_config(size))


def build_text_encoder(size: str):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(**text_config(size)))


def build_safety_checker(size: str):
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig

    # its concept embeddings and thresholds start as ones: cosine - 1 <= 0, so random images are never flagged
    return StableDiffusionSafetyChecker(CLIPConfig(**safety_checker_config(size)))


def build_controlnet(unet, size: str):
    from diffusers import ControlNetModel

    controlnet = ControlNetModel.from_unet(unet, **controlnet_options(size))
    # from_unet zeroes the output convs; a trained ControlNet's are not zero, and zero ones would hide a
    # condition that is wired wrong (it would change nothing)
    zero_convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
    for conv in [*zero_convs, controlnet.controlnet_cond_embedding.conv_out]:
        conv.reset_parameters()
    return controlnet


def save_weights(model, folder: Path, variants: list[str]) -> None:
    """The fp32 files, then (cast in place) the ``*.fp16.safetensors`` variant, as SD1.4's repository holds them."""
    if "fp32" in variants:
        model.float().save_pretrained(folder)
    if "fp16" in variants:
        model.half().save_pretrained(folder, variant="fp16")
        keep_fp32_config(model, folder)


def keep_fp32_config(model, folder: Path) -> None:
    """transformers writes the dtype it saved last into config.json; the repository's one config (shared by the
    fp32 and fp16 files, and by fp16-only downloads of it) says float32."""
    from transformers import PreTrainedModel

    if isinstance(model, PreTrainedModel):
        model.config.dtype = torch.float32
        model.config.save_pretrained(folder)


def write_published_config(folder: Path, model, part: str) -> None:
    """Replace the config save_pretrained wrote by one with the published file's keys (values from the model)."""
    class_name, version, keys = PUBLISHED[part]
    config = {key: model.config[key] for key in keys}
    write_json(folder / "config.json", {"_class_name": class_name, "_diffusers_version": version, **config})


def write_text_encoder_config(folder: Path, size: str) -> None:
    """text_encoder/config.json with the keys transformers 4.22 wrote for SD1.4 (transformers 5 reads them)."""
    config = {
        "_name_or_path": "openai/clip-vit-large-patch14",
        "architectures": ["CLIPTextModel"],
        "model_type": "clip_text_model",
        "torch_dtype": "float32",
        "transformers_version": "4.22.0.dev0",
        **text_config(size),
    }
    write_json(folder / "config.json", config)


def write_sd14(target: Path, size: str, seed: int, variants: list[str]):
    """The stable-diffusion-v1-4 folder; returns the UNet (the ControlNet is made from it)."""
    write_json(target / "model_index.json", MODEL_INDEX)
    write_json(target / "scheduler" / "scheduler_config.json", SCHEDULER)
    write_json(target / "feature_extractor" / "preprocessor_config.json", FEATURE_EXTRACTOR)
    write_tokenizer(target / "tokenizer")
    for part, build in (("unet", build_unet), ("vae", build_vae)):
        with seeded(seed, part):
            model = build(size)
        save_weights(model, target / part, variants)
        write_published_config(target / part, model, part)
    with seeded(seed, "text_encoder"):
        text_encoder = build_text_encoder(size)
    save_weights(text_encoder, target / "text_encoder", variants)
    write_text_encoder_config(target / "text_encoder", size)
    with seeded(seed, "safety_checker"):
        checker = build_safety_checker(size)
    save_weights(checker, target / "safety_checker", variants)


def write_controlnet(target: Path, size: str, seed: int) -> None:
    """The sd-controlnet-* folder: fp32 only, as lllyasviel's repositories ship it."""
    with seeded(seed, "unet"):
        unet = build_unet(size)  # the same UNet as in stable-diffusion-v1-4/ (same seed and stream)
    with seeded(seed, "controlnet"):
        controlnet = build_controlnet(unet, size)
    controlnet.save_pretrained(target)
    write_published_config(target, controlnet, "controlnet")


def write_open_clip(target: Path, size: str, seed: int) -> None:
    """open_clip_pytorch_model.bin (a plain state dict) and open_clip_config.json, as a hub repository holds them."""
    import open_clip

    config = open_clip_model_config(size)
    with seeded(seed, "clip"):
        model = open_clip.CLIP(**config)
    target.mkdir(parents=True)
    torch.save(model.state_dict(), target / CLIP_FILE)
    write_json(
        target / "open_clip_config.json", {"model_cfg": config, "preprocess_cfg": {"mean": CLIP_MEAN, "std": CLIP_STD}}
    )


def write_sam(target: Path, size: str, seed: int) -> None:
    """A segment-anything vit_b state dict (or the project's ``tiny`` SAM), saved as the real checkpoint is."""
    from tasks.segment.sam import SAM_BUILDERS

    with seeded(seed, "sam"):
        sam = SAM_BUILDERS["tiny" if size == "tiny" else "vit_b"]()
    torch.save(sam.state_dict(), target)


# ---------------------------------------------------------------------------------------------
# writing: each target built beside itself, then moved into place


def is_taken(path: Path) -> bool:
    return path.is_file() or path.is_dir() and any(path.iterdir())


@contextlib.contextmanager
def staged(target: Path):
    """Yield a path to build ``target`` at (same name, in a temp dir beside it); on success it replaces
    ``target`` in one rename, so a crash never leaves a half-written folder under the real name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        stage = tmp / target.name
        yield stage
        if target.exists():
            os.replace(target, tmp / "replaced")
        os.replace(stage, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def targets(out: Path, parts: list[str], controlnet: str) -> dict[str, Path]:
    names = {"sd14": SD14_DIR, "controlnet": f"sd-controlnet-{controlnet}", "clip": CLIP_DIR, "sam": SAM_FILE}
    return {part: out / names[part] for part in parts}


def build(
    out: str | Path,
    size: str = "tiny",
    seed: int = 0,
    variants: tuple[str, ...] = ("fp32", "fp16"),
    controlnet: str = "seg",
    parts: tuple[str, ...] = PARTS,
    force: bool = False,
) -> dict[str, Path]:
    """Write the lookalikes of ``parts`` under ``out``; returns each part's path. Raises FileExistsError before
    writing anything when a target exists and is not empty (unless ``force``), ValueError for a bad option."""
    if size not in SIZES:
        raise ValueError(f"--size: '{size}' is not one of {', '.join(SIZES)}")
    if not variants or set(variants) - {"fp32", "fp16"}:
        raise ValueError(f"--variants: '{','.join(variants)}' is not a list of fp32, fp16")
    if set(parts) - set(PARTS):
        raise ValueError(f"--parts: '{','.join(parts)}' is not a list of {', '.join(PARTS)}")
    paths = targets(Path(out), list(parts), controlnet)
    taken = [str(p) for p in paths.values() if is_taken(p)]
    if taken and not force:
        raise FileExistsError(f"not overwriting {', '.join(taken)} (pass --force to replace)")
    writers = {
        "sd14": lambda t: write_sd14(t, size, seed, list(variants)),
        "controlnet": lambda t: write_controlnet(t, size, seed),
        "clip": lambda t: write_open_clip(t, size, seed),
        "sam": lambda t: write_sam(t, size, seed),
    }
    for part, path in paths.items():
        with staged(path) as stage:
            writers[part](stage)
    return paths


def settings(paths: dict[str, Path], size: str) -> list[str]:
    """The params that point the sd14 world at these files (to put in a profile)."""
    lines = []
    if "sd14" in paths:
        sd = paths["sd14"]
        lines += [f"base.sd14.sd14_dir: {sd}", f"train.base_dir: {sd}", f"ingest.tokenizer: {sd / 'tokenizer'}"]
    if "controlnet" in paths:
        cn = paths["controlnet"]
        kind = cn.name.rsplit("-", 1)[1]  # seg or scribble: what the ControlNet is shown
        lines += [f"base.sd14.controlnet_dir: {cn}", f"generate.controlnet_dir: {cn}"]
        lines += [f"generate.controlnet_condition: {kind}"]
    if "clip" in paths:
        name = CLIP_MODEL_FULL if size == "full" else f"local-dir:{paths['clip']}"
        for section in ("base.sd14", "evaluate"):
            lines += [f"{section}.clip_model: {name}", f"{section}.clip_weights: {paths['clip'] / CLIP_FILE}"]
    if "sam" in paths:
        model_type = "vit_b" if size == "full" else "tiny"
        for section in ("masks", "evaluate"):
            lines += [f"{section}.sam_checkpoint: {paths['sam']}", f"{section}.sam_model_type: {model_type}"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="maskmotion lookalike",
        description=__doc__.split("\n")[0],
        epilog="example:\n  maskmotion lookalike --out /tmp/lookalike --size tiny   # prints the settings for them",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="folder to write the lookalikes under (e.g. weights)")
    parser.add_argument("--size", default="tiny", choices=SIZES, help="tiny (default, CPU-sized) or full (a few GB)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default="fp32,fp16", help="weight files of SD1.4: fp32, fp16 or both")
    parser.add_argument("--controlnet", default="seg", choices=("seg", "scribble"))
    parser.add_argument("--parts", default=",".join(PARTS), help="which lookalikes to write")
    parser.add_argument("--force", action="store_true", help="replace targets that exist")
    args = parser.parse_args(argv)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # one "Writing model shards" bar per small file is noise
    split = lambda text: tuple(v.strip() for v in text.split(",") if v.strip())  # noqa: E731
    try:
        paths = build(
            args.out, args.size, args.seed, split(args.variants), args.controlnet, split(args.parts), args.force
        )
    except (FileExistsError, ValueError) as err:
        print(f"lookalike: {err}", file=sys.stderr)
        return 2
    print("\n".join(settings(paths, args.size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
