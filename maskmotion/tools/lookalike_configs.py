"""The lookalike folders' configs: the published SD1.4, ControlNet, CLIP text and open_clip values, their tiny
versions (widths scaled down, and the depth of the text towers), and the JSON files a download carries."""

from __future__ import annotations

import json
from pathlib import Path

CLIP_MODEL_FULL = "ViT-L-14-quickgelu"  # the open_clip architecture of the full-size CLIP

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
