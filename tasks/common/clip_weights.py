"""Loading local open_clip weights under the architecture a setting names, refusing wrong pairings.

open_clip loads a ViT-L/14 state dict into ``ViT-L-14`` and ``ViT-L-14-quickgelu`` alike (the two
differ only in the activation, which has no weights), so a wrong name gives no error, only wrong
scores. OpenAI's CLIP weights were trained with QuickGELU. Two ways to point at weights:

- a folder in open_clip's ``local-dir:`` layout (``open_clip_config.json`` + weights: what the hub's
  ``timm/vit_large_patch14_clip_224.openai`` download is): its config says ``quick_gelu``, and a
  name that disagrees is refused;
- a single weights file: a path that says "openai" under a name without ``-quickgelu`` is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

from tasks.common.params import ConfigError

QUICKGELU = "-quickgelu"


def open_clip_source(model: str, weights: str, model_setting: str, weights_setting: str) -> tuple[str, str | None]:
    """``(model_name, pretrained)`` for ``open_clip.create_model_and_transforms``."""
    path = Path(weights)
    if not path.exists():
        raise FileNotFoundError(f"{weights_setting}: '{weights}' not found (local open_clip weights for {model})")
    if path.is_dir():
        config_file = path / "open_clip_config.json"
        if not config_file.is_file():
            raise FileNotFoundError(
                f"{weights_setting}: folder '{weights}' has no open_clip_config.json (open_clip's local-dir layout)"
            )
        quick_gelu = bool(json.loads(config_file.read_text()).get("model_cfg", {}).get("quick_gelu", False))
        if quick_gelu != model.endswith(QUICKGELU):
            right = model + QUICKGELU if quick_gelu else model.removesuffix(QUICKGELU)
            raise ConfigError(
                f"{model_setting} = '{model}', but {config_file} says quick_gelu: {str(quick_gelu).lower()}; "
                f"set {model_setting}: {right}"
            )
        return f"local-dir:{path}", None
    if "openai" in path.as_posix().lower() and not model.endswith(QUICKGELU):
        raise ConfigError(
            f"{model_setting} = '{model}': '{weights}' looks like OpenAI's CLIP weights, which need QuickGELU; "
            f"set {model_setting}: {model}{QUICKGELU} (without it every score is silently wrong)"
        )
    return model, str(path)


def load_open_clip(model: str, weights: str, model_setting: str, weights_setting: str):
    """``(model, preprocess, tokenizer)`` from local weights, checked by ``open_clip_source``."""
    import open_clip

    name, pretrained = open_clip_source(model, weights, model_setting, weights_setting)
    net, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained)
    return net.eval(), preprocess, open_clip.get_tokenizer(name)
