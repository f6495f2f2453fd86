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
import gzip
import json
import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

import torch

SIZES = ("full", "tiny")
PARTS = ("sd14", "controlnet", "clip", "sam")
SD14_DIR = "stable-diffusion-v1-4"
CLIP_DIR = "open_clip_vit_l_14"
CLIP_FILE = "open_clip_pytorch_model.bin"
SAM_FILE = "sam_vit_b_01ec64.pth"
CLIP_MODEL_FULL = "ViT-L-14-quickgelu"

# OpenAI CLIP's image normalisation, used by SD's feature extractor and open_clip alike
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# ---------------------------------------------------------------------------------------------
# configs: the published values; tiny changes widths only (and the depth of the text towers)


def unet_config(size: str) -> dict:
    """UNet2DConditionModel, SD1.4's unet/config.json (``attention_head_dim`` is diffusers' legacy name for heads)."""
    tiny = size == "tiny"
    return {
        "act_fn": "silu",
        "attention_head_dim": 8,
        "block_out_channels": [32, 64, 64, 64] if tiny else [320, 640, 1280, 1280],
        "center_input_sample": False,
        "cross_attention_dim": 32 if tiny else 768,
        "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        "downsample_padding": 1,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": 32,  # divides 32 and 64 as well: no change needed at tiny size
        "out_channels": 4,
        "sample_size": 64,
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    }


def vae_config(size: str) -> dict:
    """AutoencoderKL, SD1.4's vae/config.json (no scaling_factor key: the default 0.18215 is SD's)."""
    return {
        "act_fn": "silu",
        "block_out_channels": [32, 64, 64, 64] if size == "tiny" else [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": 512,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
    }


def controlnet_options(size: str) -> dict:
    """What sd-controlnet-seg adds to its UNet's config (the rest is copied from the UNet by from_unet)."""
    return {
        "conditioning_embedding_out_channels": [8, 16, 32, 64] if size == "tiny" else [16, 32, 96, 256],
        "controlnet_conditioning_channel_order": "rgb",
    }


def text_config(size: str) -> dict:
    """CLIPTextConfig, SD1.4's text_encoder/config.json (OpenAI's ViT-L/14 text tower; bos/eos/pad ids as shipped,
    which are not the tokenizer's: the model reads eos_token_id=2 as "pool at the argmax id")."""
    tiny = size == "tiny"
    return {
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "dropout": 0.0,
        "eos_token_id": 2,
        "hidden_act": "quick_gelu",
        "hidden_size": 32 if tiny else 768,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": 64 if tiny else 3072,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "num_attention_heads": 4 if tiny else 12,
        "num_hidden_layers": 2 if tiny else 12,
        "pad_token_id": 1,
        "projection_dim": 32 if tiny else 768,
        "vocab_size": 49408,
    }


def safety_checker_config(size: str) -> dict:
    """CLIPConfig of SD's safety checker: a ViT-L/14 vision tower (its text tower is never built)."""
    tiny = size == "tiny"
    vision = {
        "hidden_size": 32 if tiny else 1024,
        "intermediate_size": 64 if tiny else 4096,
        "num_attention_heads": 4 if tiny else 16,
        "num_hidden_layers": 2 if tiny else 24,
        "image_size": 224,
        "patch_size": 14,
        "hidden_act": "quick_gelu",
    }
    text = {key: text_config(size)[key] for key in ("hidden_size", "intermediate_size", "num_attention_heads")}
    text.update(num_hidden_layers=text_config(size)["num_hidden_layers"], max_position_embeddings=77)
    return {"text_config": text, "vision_config": vision, "projection_dim": 32 if tiny else 768}


def open_clip_model_config(size: str) -> dict:
    """open_clip's ViT-L-14-quickgelu config; tiny: same fields, smaller widths (vision width 64: one 64-wide head)."""
    if size == "full":
        import open_clip

        return open_clip.get_model_config(CLIP_MODEL_FULL)
    return {
        "embed_dim": 32,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 14},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
    }


# The keys each published diffusers config.json holds (written by old diffusers versions): a lookalike keeps
# to them, so newer diffusers fills in its defaults on load exactly as it does for the real download.
PUBLISHED = {
    "unet": ("UNet2DConditionModel", "0.2.2", sorted(unet_config("full"))),
    "vae": ("AutoencoderKL", "0.2.2", sorted(vae_config("full"))),
    "controlnet": (
        "ControlNetModel",
        "0.14.0.dev0",
        sorted(
            set(unet_config("full")) - {"center_input_sample", "out_channels", "sample_size", "up_block_types"}
            | set(controlnet_options("full"))
            | {"class_embed_type", "num_class_embeds", "only_cross_attention", "projection_class_embeddings_input_dim"}
            | {"resnet_time_scale_shift", "upcast_attention", "use_linear_projection"}
        ),
    ),
}

SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.7.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

# older revisions name the feature extractor CLIPFeatureExtractor, which transformers 5 no longer has
MODEL_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.2.2",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}

FEATURE_EXTRACTOR = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": CLIP_MEAN,
    "image_processor_type": "CLIPImageProcessor",
    "image_std": CLIP_STD,
    "resample": 3,
    "rescale_factor": 1 / 255,
    "size": {"shortest_edge": 224},
}


def _token(content: str) -> dict:
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


SPECIAL_TOKENS_MAP = {
    "bos_token": _token("<|startoftext|>"),
    "eos_token": _token("<|endoftext|>"),
    "pad_token": "<|endoftext|>",
    "unk_token": _token("<|endoftext|>"),
}
TOKENIZER_CONFIG = {
    "add_prefix_space": False,
    **SPECIAL_TOKENS_MAP,
    "do_lower_case": True,
    "errors": "replace",
    "model_max_length": 77,
    "name_or_path": "openai/clip-vit-large-patch14",
    "special_tokens_map_file": "./special_tokens_map.json",
    "tokenizer_class": "CLIPTokenizer",
}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------------------------
# the tokenizer: CLIP's byte-level BPE, as open_clip ships it


def byte_symbols() -> list[str]:
    """CLIP's (and GPT-2's) printable symbol for each byte, in CLIP's vocabulary order: the printable bytes stand
    for themselves and come first; the other bytes follow in byte order, as code points from 256 on."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def clip_bpe() -> tuple[dict[str, int], list[str]]:
    """CLIP's vocabulary (49408 ids) and merges, in the order CLIP numbers them: the 256 byte symbols, the same
    with ``</w>``, one token per merge (the file's lines 1..48894, after its header), then the two specials."""
    import open_clip

    path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}, merges


def write_tokenizer(folder: Path) -> None:
    """SD1.4's tokenizer/: vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json."""
    vocab, merges = clip_bpe()
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    write_json(folder / "tokenizer_config.json", TOKENIZER_CONFIG)
    write_json(folder / "special_tokens_map.json", SPECIAL_TOKENS_MAP)


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
