"""The ``sd14`` world: no training, only a check that the real weights named in params are there and load."""

from __future__ import annotations

from pathlib import Path

from tasks.base.config import Sd14Config
from tasks.common.clip_weights import load_open_clip
from tasks.common.params import ConfigError
from tasks.common.pretrained import load_base


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
    report: dict = {"world": "sd14"}
    sd, cn = _folder(cfg, "sd14_dir"), _folder(cfg, "controlnet_dir")
    try:  # the loader generation uses: fp16-only folders, PNDM configs and the unused safety checker included
        base = load_base(sd, "base.sd14.sd14_dir", controlnet_dir=cn, controlnet_setting="base.sd14.controlnet_dir")
    except FileNotFoundError as err:
        raise ConfigError(f"params.yaml: {err}") from None
    except Exception as err:  # noqa: BLE001 - any load failure is reported against the setting
        raise ConfigError(f"params.yaml: base.sd14.sd14_dir = '{sd}' does not load ({err})") from None
    for part in ("vae", "text_encoder", "tokenizer", "unet", "controlnet"):
        report[part] = type(getattr(base, part)).__name__
    report["scheduler"] = f"{base.sample_scheduler.config.get('_class_name')} (sampling: DDIM over its betas)"
    report["unet_sample_size"] = base.unet.config.sample_size
    weights = _folder(cfg, "clip_weights")
    if not cfg.clip_model:
        raise ConfigError("params.yaml: base.sd14.clip_model is not set (the open_clip architecture of clip_weights)")
    try:
        load_open_clip(cfg.clip_model, str(weights), "base.sd14.clip_model", "base.sd14.clip_weights")
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001
        raise ConfigError(
            f"params.yaml: base.sd14.clip_weights = '{weights}' does not load as {cfg.clip_model} ({err})"
        ) from None
    report["clip"] = cfg.clip_model
    return report
