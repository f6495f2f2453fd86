"""Loading local open_clip weights under the architecture a setting names, refusing wrong pairings.

open_clip loads a ViT-L/14 state dict into ``ViT-L-14`` and ``ViT-L-14-quickgelu`` alike (the two
differ only in the activation, which has no weights), so a wrong name gives no error, only wrong
scores. OpenAI's CLIP weights were trained with QuickGELU, LAION's with GELU. Two ways to point at weights:

- a folder in open_clip's ``local-dir:`` layout (``open_clip_config.json`` + weights: what the hub's
  ``timm/vit_large_patch14_clip_224.openai`` download is): its config says ``quick_gelu``, and a
  name (or an activation setting) that disagrees is refused;
- a single weights file: its tensors cannot tell the activation, so the settings must. A name with
  ``-quickgelu`` says QuickGELU; a name open_clip also has with ``-quickgelu`` (``ViT-L-14``) says
  nothing, and is refused unless the activation setting says ``gelu`` (or ``quickgelu``). A name
  with one activation only (no ``-quickgelu`` sibling) decides it. A path that says "openai" under
  a GELU choice is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

from tasks.common.params import ConfigError

QUICKGELU = "-quickgelu"
ACTIVATIONS = ("quickgelu", "gelu")


def open_clip_source(
    model: str,
    weights: str,
    model_setting: str,
    weights_setting: str,
    activation: str | None = None,
    activation_setting: str | None = None,
) -> tuple[str, str | None]:
    """``(model_name, pretrained)`` for ``open_clip.create_model_and_transforms``; ``activation``
    (quickgelu | gelu | None, the setting ``activation_setting``) says what a single file cannot."""
    path = Path(weights)
    if not path.exists():
        raise FileNotFoundError(f"{weights_setting}: '{weights}' not found (local open_clip weights for {model})")
    if activation is not None and activation not in ACTIVATIONS:
        raise ConfigError(f"{activation_setting} = '{activation}': expected one of {', '.join(ACTIVATIONS)}")
    if path.is_dir():
        return _local_dir(path, model, weights, model_setting, weights_setting, activation, activation_setting)
    said_quick = model.endswith(QUICKGELU) or activation == "quickgelu"
    if "openai" in path.as_posix().lower() and not said_quick:
        raise ConfigError(
            f"{model_setting} = '{model}': '{weights}' looks like OpenAI's CLIP weights, which need QuickGELU; "
            f"set {model_setting}: {model}{QUICKGELU} (without it every score is silently wrong)"
        )
    return _single_file_name(model, weights, model_setting, activation, activation_setting), str(path)


def _local_dir(path, model, weights, model_setting, weights_setting, activation, activation_setting):
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
    if activation is not None and (activation == "quickgelu") != quick_gelu:
        raise ConfigError(f"{activation_setting} = '{activation}', but {config_file} says quick_gelu: {quick_gelu}")
    return f"local-dir:{path}", None


def _single_file_name(model, weights, model_setting, activation, activation_setting) -> str:
    """The architecture to load a single weights file under, or ConfigError when its activation is not said."""
    if model.endswith(QUICKGELU):
        if activation == "gelu":
            raise ConfigError(f"{model_setting} = '{model}' (QuickGELU) but {activation_setting} = 'gelu': choose one")
        return model
    if not _has_quickgelu_sibling(model):
        return model  # this architecture has one activation: nothing to tell
    if activation == "quickgelu":
        return model + QUICKGELU
    if activation == "gelu":
        return model
    say = (
        f"{activation_setting}: gelu (weights trained with GELU, e.g. LAION's)"
        if activation_setting
        else ("give the open_clip folder (open_clip_config.json says it) for GELU weights")
    )
    raise ConfigError(
        f"{model_setting} = '{model}' with the single file '{weights}': its tensors cannot tell QuickGELU from GELU, "
        f"and '{model}' runs GELU. Set {model_setting}: {model}{QUICKGELU} (OpenAI's weights), or {say}"
    )


def _has_quickgelu_sibling(model: str) -> bool:
    import open_clip

    return model + QUICKGELU in open_clip.list_models()


def load_open_clip(*source, **named):
    """``(model, preprocess, tokenizer)`` from local weights; the arguments are ``open_clip_source``'s,
    which checks them."""
    import open_clip

    name, pretrained = open_clip_source(*source, **named)
    net, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained)
    return net.eval(), preprocess, open_clip.get_tokenizer(name)
