"""Loading the toy world's CLIP, which the base stage trains (tasks.base.clip) and evaluate scores with.

Saved as ``toy-clip.json`` (the plain config ``open_clip.add_model_config`` registers),
``open_clip_config.json`` (open_clip's ``local-dir:`` layout), ``open_clip_model.safetensors`` and the
tokenizer files.
"""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
from open_clip.tokenizer import HFTokenizer

MODEL_NAME = "toy-clip"
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
# the toy frames' own statistics would do as well; CLIP's keep the preprocessing familiar
MEAN, STD = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD


def load_toy_clip(folder: str | Path):
    """(model, preprocess, tokenizer) of the toy CLIP saved in ``folder``: eval mode, float32.

    ``preprocess`` maps a PIL image to a float tensor (3, S, S); ``tokenizer(list_of_str)`` gives long
    ids (B, context_length); ``model.encode_image`` / ``model.encode_text`` give (B, embed_dim).
    """
    folder = Path(folder)
    cfg_path = folder / f"{MODEL_NAME}.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: toy CLIP config not found")
    open_clip.add_model_config(cfg_path)  # registers the architecture under the file's stem
    model_cfg = json.loads(cfg_path.read_text())
    model, _, preprocess = open_clip.create_model_and_transforms(
        MODEL_NAME,
        pretrained=str(folder / WEIGHTS_FILE),
        image_mean=MEAN,
        image_std=STD,
    )
    tokenizer = HFTokenizer(str(folder), context_length=model_cfg["text_cfg"]["context_length"])
    return model.float().eval(), preprocess, tokenizer
