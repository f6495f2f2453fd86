"""The ``sd14`` world: no training, only a check that the real weights named in params are there and load."""

from __future__ import annotations

from pathlib import Path

from tasks.base.config import Sd14Config
from tasks.common.params import ConfigError


def _folder(cfg: Sd14Config, key: str) -> Path:
    value = getattr(cfg, key)
    if not value:
        raise ConfigError(f"params.yaml: base.sd14.{key} is not set (world: sd14 needs a local folder or file)")
    path = Path(value)
    if not path.exists():
        raise ConfigError(f"params.yaml: base.sd14.{key} = '{value}' does not exist")
    return path


def check_sd14(cfg: Sd14Config) -> dict:
    """Load every part once (float32, CPU) and report what was found. Raises ConfigError naming the
    setting (``base.sd14.<key>``) when a path is unset, missing, or does not load."""
    import open_clip
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel

    report: dict = {"world": "sd14"}
    sd = _folder(cfg, "sd14_dir")
    parts = {
        "vae": AutoencoderKL,
        "unet": UNet2DConditionModel,
        "text_encoder": CLIPTextModel,
        "tokenizer": AutoTokenizer,
        "scheduler": DDIMScheduler,
    }
    for sub, cls in parts.items():
        try:
            obj = cls.from_pretrained(str(sd), subfolder=sub)
        except Exception as err:  # noqa: BLE001 - any load failure is reported against the setting
            raise ConfigError(f"params.yaml: base.sd14.sd14_dir = '{sd}': {sub}/ does not load ({err})") from None
        report[sub] = type(obj).__name__
    cn = _folder(cfg, "controlnet_dir")
    try:
        report["controlnet"] = type(ControlNetModel.from_pretrained(str(cn))).__name__
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"params.yaml: base.sd14.controlnet_dir = '{cn}' does not load ({err})") from None
    ckpt = _folder(cfg, "clip_checkpoint")
    if not cfg.clip_model:
        raise ConfigError(
            "params.yaml: base.sd14.clip_model is not set (the open_clip architecture of clip_checkpoint)"
        )
    try:
        open_clip.create_model_and_transforms(cfg.clip_model, pretrained=str(ckpt))
    except Exception as err:  # noqa: BLE001
        raise ConfigError(
            f"params.yaml: base.sd14.clip_checkpoint = '{ckpt}' does not load as {cfg.clip_model} ({err})"
        ) from None
    report["clip"] = cfg.clip_model
    return report
