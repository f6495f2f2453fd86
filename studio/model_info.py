"""What the studio needs to know of the latest checkpoint before generating: its name, the frame size
it was trained at (the page's default), and the sizes its base model can generate.

Read from the checkpoint's ``config.json`` and the base folder's UNet and VAE configs, not from the
weights: the page checks a size on every edit, and through the deployment it never loads a model.
The rules themselves are the generate stage's (``size_multiple``, ``native_size``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from studio.spec import problem
from tasks.generate.stage import GenerateConfig, native_size, resolve_checkpoint, size_multiple


@dataclass(frozen=True)
class ModelInfo:
    checkpoint: Path | None
    problem: str | None = None  # why there is nothing to generate with
    multiple: int = 8
    native: tuple[int, int] | None = None
    trained: tuple[int, int] | None = None
    window: int | None = None

    @property
    def name(self) -> str:
        return self.checkpoint.name if self.checkpoint else "none"

    @property
    def default_size(self) -> tuple[int, int]:
        return self.trained or self.native or (64, 64)


def model_info(cfg: GenerateConfig) -> ModelInfo:
    try:
        folder = resolve_checkpoint(cfg)
        config = json.loads((folder / "config.json").read_text())
        base = Path(config["base_dir"])
        unet = json.loads((base / "unet/config.json").read_text())
        vae = json.loads((base / "vae/config.json").read_text())
    except (FileNotFoundError, KeyError, json.JSONDecodeError) as err:
        return ModelInfo(None, f"{err} (make demo trains one)")
    # the shape of a MaskVideoPipeline that the generate stage's size rules read
    shaped = SimpleNamespace(
        vae_scale_factor=2 ** (len(vae["block_out_channels"]) - 1),
        base_unet=SimpleNamespace(config=SimpleNamespace(**unet)),
    )
    trained = tuple(config["frame_size"]) if config.get("frame_size") else None
    return ModelInfo(folder, None, size_multiple(shaped), native_size(shaped), trained, config.get("window"))


def size_problems(size, info: ModelInfo) -> tuple[list[dict], list[dict]]:
    """(errors, warnings) about generating at ``size`` (H, W), worded as the generate stage words them."""
    errors, warnings = [], []
    if info.checkpoint is None:
        return errors, warnings
    for name, side in zip(("height", "width"), size):
        if side % info.multiple:
            errors.append(
                problem(
                    "size",
                    f"the masks' {name}: {side} px is not a multiple of {info.multiple}, which this base model needs",
                )
            )
    for what, other in (("the base model was trained at", info.native), ("train saw clips of", info.trained)):
        if other is not None and tuple(other) != tuple(size):
            warnings.append(
                problem("size", f"generating {size[1]}x{size[0]} (W x H) but {what} {other[1]}x{other[0]}")
            )
    return errors, warnings
