"""The studio's own settings (command line or environment) and the stage settings it reads.

The studio has no ``params.yaml`` section: where it serves and stores are settings of the process
(flags, or ``MASKMOTION_STUDIO_*`` variables), while how videos are generated, masks cut out and
results scored are the ``generate``, ``masks`` and ``evaluate`` sections, read with the stages' own
validated configs (optionally with a profile merged over them, as ``apply_profile`` merges it).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

from studio.bounds import Bounds
from tasks.common.params import ConfigError, apply_profile, load_stage_config, validate_config
from tasks.evaluate.stage import EvaluateConfig
from tasks.generate.stage import GenerateConfig
from tasks.masks.stage import MasksConfig

ENV = "MASKMOTION_STUDIO_"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    data_dir: Path = Path("data/studio")
    params: Path = Path("params.yaml")
    profile: Path | None = None
    checkpoint_dir: str | None = None  # none: generate.checkpoint_dir
    clips_dir: Path = Path("data/clips")
    max_upload_mb: float = 8.0
    deployment: str = "generate/batch"
    use_deployment: bool | None = None  # none: when PREFECT_API_URL is set
    bounds: Bounds = Bounds()  # how much one request may ask (studio.bounds)
    max_queued: int = 4  # videos queued or generating at once; more are refused

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * (1 << 20))

    @property
    def via_deployment(self) -> bool:
        return bool(os.environ.get("PREFECT_API_URL")) if self.use_deployment is None else self.use_deployment


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_args(argv: list[str] | None = None) -> Settings:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m studio", description="The motion studio: draw, generate, watch.")
    p.add_argument(
        "--host",
        default=env(ENV + "HOST", "127.0.0.1"),
        help="address to bind (default 127.0.0.1, this machine only); another one serves your network",
    )
    p.add_argument("--port", type=int, default=int(env(ENV + "PORT", "7860")))
    p.add_argument(
        "--data",
        dest="data_dir",
        metavar="DATA",
        type=Path,
        default=Path(env(ENV + "DATA", "data/studio")),
        help="uploads and results",
    )
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--profile", type=Path, help="a params overlay, e.g. profiles/sd14.yaml (params.yaml untouched)")
    p.add_argument("--checkpoint-dir", help="default: generate.checkpoint_dir (the latest checkpoint in it is used)")
    p.add_argument("--clips-dir", type=Path, default=Path("data/clips"), help="ingested clips to pick frames from")
    p.add_argument("--max-upload-mb", type=float, default=float(env(ENV + "MAX_UPLOAD_MB", "8")))
    p.add_argument("--max-queued", type=int, default=int(env(ENV + "MAX_QUEUED", "4")), help="videos waiting at once")
    for name, info in Bounds.model_fields.items():  # --max-frames / MASKMOTION_STUDIO_MAX_FRAMES, ...
        default = env(ENV + name.upper(), str(info.default))
        p.add_argument("--" + name.replace("_", "-"), dest=name, default=default, help=f"{info.description}")
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--deployment", dest="use_deployment", action="store_true", default=None, help="always queue on generate/batch"
    )
    how.add_argument("--in-process", dest="use_deployment", action="store_false", help="never use the deployment")
    a = p.parse_args(argv)
    if a.max_upload_mb <= 0:
        p.error("--max-upload-mb must be > 0")
    if a.max_queued < 1:
        p.error("--max-queued must be >= 1")
    try:
        bounds = validate_config(Bounds, {k: getattr(a, k) for k in Bounds.model_fields}, "studio")
    except ConfigError as err:  # names the setting: "studio.max_frames: Input should be ..."
        p.error(str(err))
    # every flag's dest is the name of the setting it sets; bounds are checked above, the deployment's name is fixed
    return Settings(
        **{f.name: getattr(a, f.name) for f in fields(Settings) if f.name not in ("bounds", "deployment")},
        bounds=bounds,
    )


@dataclass(frozen=True)
class StageSettings:
    generate: GenerateConfig
    masks: MasksConfig
    evaluate: EvaluateConfig


def stage_settings(settings: Settings) -> StageSettings:
    """The generate, masks and evaluate sections (with the profile merged over them on a copy)."""
    params = settings.params
    with tempfile.TemporaryDirectory() as tmp:
        if settings.profile is not None:
            params = Path(tmp) / "params.yaml"
            shutil.copy(settings.params, params)
            apply_profile(params, settings.profile)  # rewrites the copy only
        overrides = {"checkpoint_dir": settings.checkpoint_dir} if settings.checkpoint_dir else None
        return StageSettings(
            generate=load_stage_config(GenerateConfig, "generate", params, overrides),
            masks=load_stage_config(MasksConfig, "masks", params),
            evaluate=load_stage_config(EvaluateConfig, "evaluate", params),
        )
