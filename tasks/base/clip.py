"""The toy world's CLIP (for evaluation only): a tiny open_clip ViT trained contrastively on frames
and their captions, with the word-level toy tokenizer instead of open_clip's 49k BPE vocabulary.

Saved as ``clip/open_clip_config.json`` (``{"model_cfg": ..., "preprocess_cfg": ...}``, the layout
open_clip's own ``local-dir:`` loader reads), ``clip/open_clip_model.safetensors`` and the tokenizer
files, so ``tasks.common.toy_clip.load_toy_clip(folder)`` is two open_clip calls.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from tasks.common.toy_clip import CONFIG_FILE, MEAN, MODEL_NAME, STD, WEIGHTS_FILE


def clip_model_cfg(
    vocab_size: int,
    context_length: int,
    image_size: int,
    embed_dim: int,
    vision_width: int,
    vision_layers: int,
    patch_size: int,
    text_width: int,
    text_layers: int,
    text_heads: int,
) -> dict:
    """An open_clip model config. Text pooling takes the [EOS] token (id 3), CLIP's own choice."""
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {
            "image_size": image_size,
            "layers": vision_layers,
            "width": vision_width,
            "head_width": 32,
            "patch_size": patch_size,
        },
        "text_cfg": {
            "context_length": context_length,
            "vocab_size": vocab_size,
            "width": text_width,
            "heads": text_heads,
            "layers": text_layers,
            "pad_id": 0,
            "eos_id": 3,
            "pool_type": "eos",
            "hf_tokenizer_name": "tokenizer",
        },
    }


def build_clip(model_cfg: dict, seed: int):
    """A fresh, randomly initialised (model, preprocess) from ``model_cfg``."""
    torch.manual_seed(seed)
    open_clip.factory._MODEL_CONFIGS[MODEL_NAME] = model_cfg  # the registry add_model_config fills
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL_NAME, image_mean=MEAN, image_std=STD)
    return model, preprocess


def save_clip(model, model_cfg: dict, tokenizer, folder: str | Path) -> None:
    """Write ``toy-clip.json`` (the plain config add_model_config registers), ``open_clip_config.json``
    (the ``local-dir:`` layout), fp16 weights and the tokenizer files into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / WEIGHTS_FILE)
    preprocess_cfg = {"size": model_cfg["vision_cfg"]["image_size"], "mean": list(MEAN), "std": list(STD)}
    (folder / f"{MODEL_NAME}.json").write_text(json.dumps(model_cfg, indent=2) + "\n")
    (folder / CONFIG_FILE).write_text(
        json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}, indent=2) + "\n"
    )
    tokenizer.save_pretrained(str(folder))


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """CLIP input from ``pixels`` float (B, 3, H, W) in [-1, 1] (what ``preprocess`` gives a PIL image)."""
    mean = torch.tensor(MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=pixels.device).view(1, 3, 1, 1)
    return ((pixels + 1) / 2 - mean) / std


def contrastive_loss(model, images: torch.Tensor, ids: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """Symmetric InfoNCE. Frames in a batch may share a caption: those pairs count as positives
    (targets spread evenly over them) instead of being pushed apart."""
    img = F.normalize(model.encode_image(images), dim=-1)
    txt = F.normalize(model.encode_text(ids), dim=-1)
    logits = model.logit_scale.exp() * img @ txt.T
    same = torch.tensor([[a == b for b in prompts] for a in prompts], dtype=torch.float32, device=logits.device)
    targets = same / same.sum(1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


@torch.no_grad()
def zero_shot(model, tokenizer, images: torch.Tensor, classes: list[tuple], prompts_of: dict) -> np.ndarray:
    """Index into ``classes`` of the best-matching class for each image (B, 3, H, W) (normalised).
    ``prompts_of[c]`` lists the prompt templates filled for class ``c``; their text embeddings are
    averaged (prompt ensembling, as CLIP's zero-shot evaluation does)."""
    img = F.normalize(model.encode_image(images), dim=-1)
    text = []
    for c in classes:
        emb = F.normalize(model.encode_text(tokenizer(prompts_of[c])), dim=-1).mean(0)
        text.append(F.normalize(emb, dim=-1))
    return (img @ torch.stack(text).T).argmax(1).numpy()
