"""A trained model as a ready ``MaskVideoPipeline``, in one call, and back to a folder (diffusers' habit).

The public face is ``maskmotion.MaskMotionPipeline.from_pretrained`` / ``save_pretrained``; both call
this module, and so does the generate stage: one loader.

A folder is either a train stage's checkpoint (``ckpt-000200/``, or the train stage's ``out_dir``: its
latest) or a folder written by ``save_pipeline``. Its ``config.json`` records:

- ``base_dir``: the Stable-Diffusion-layout folder it was trained on. A checkpoint records it as
  the train stage was given it (``base/toy``, relative to the project it was trained in); a saved
  pipeline records it resolved to an absolute path, plus ``base_dir_from_here``, the path relative to
  the saved folder. The base is looked for there (``from_here`` first), then, for a relative path,
  under the working directory and under each folder above the checkpoint: a checkpoint loads from
  any working directory, and a saved folder after being moved or copied (with or without its base).
- ``controlnet_dir`` / ``controlnet_condition`` (when not the defaults: ``<base_dir>/controlnet``
  drawn white on black): the ControlNet of frame 1 it was trained and validated with, found as the base is.
- ``sampler`` (saved pipelines): the ``SamplerSettings`` its videos were made with. A checkpoint records
  none: it samples with the ``generate`` section of the ``params.yaml`` in the nearest folder above it
  (the project it was trained in: what its generate stage used, a profile's settings included), else
  with the defaults (``SamplerSettings()``); the window is the trained one unless that section sets one.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import torch

from model.conditioning import ControlNetCondition
from model.pipeline import MaskVideoPipeline
from model.sampler_settings import SamplerSettings
from model.trainable import load_trainable_state_dict
from model.video_unet import VideoUNetConfig, inflate_unet
from tasks.common.io import atomic_dir
from tasks.common.pretrained import Variant, load_base
from tasks.contract import LATEST, latest_checkpoint, read_trained

FROM_HERE = "_from_here"  # the suffix of a recorded folder's path relative to the saved folder


def checkpoint_folder(checkpoint: str | Path, setting: str = "checkpoint") -> Path:
    """A checkpoint folder, or the latest one when ``checkpoint`` is a train stage's output folder."""
    path = Path(checkpoint)
    if (path / LATEST).is_file():
        path = latest_checkpoint(path)
    if path is None or not (path / "trainable.safetensors").is_file():
        raise FileNotFoundError(f"{setting}: no checkpoint in '{checkpoint}'; run the train stage")
    return path


def recorded_folder(config: dict, key: str, folder: Path, what: str) -> Path:
    """The folder ``config[key]`` records, looked for as the module docstring says; a clear error
    naming where it was looked for and what to put there when it is in none of those places."""
    recorded = Path(config[key])
    candidates = [folder / config[key + FROM_HERE]] if config.get(key + FROM_HERE) else []
    if recorded.is_absolute():
        candidates.append(recorded)
    else:
        candidates += [Path.cwd() / recorded] + [parent / recorded for parent in folder.resolve().parents]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"{folder}/config.json: {key}: {what} '{recorded}' not found; looked in "
        + ", ".join(f"'{c}'" for c in candidates[:4])
        + (" and the folders above" if len(candidates) > 4 else "")
        + f". Put the {what} at one of these, or pass {key}= to from_pretrained"
    )


def recorded_condition(config: dict) -> ControlNetCondition:
    """The ControlNet condition a folder records (the default, white on black, when it records none)."""
    return ControlNetCondition(**config.get("controlnet_condition", {}))


def recorded_sampler(config: dict, folder: Path) -> SamplerSettings:
    """The sampler settings a folder records, else its project's (module docstring), else the defaults;
    the trained window when they name none."""
    if "sampler" in config:
        sampler = SamplerSettings.from_dict(config["sampler"])
    else:
        sampler = project_sampler(folder, config["window"]) or SamplerSettings()
    return sampler if sampler.window is not None else replace(sampler, window=config["window"])


def project_sampler(folder: Path, trained_window: int) -> SamplerSettings | None:
    """The generate stage's settings in the project ``folder`` sits in (the nearest ``params.yaml`` above
    it), or None outside a project."""
    from tasks.common.params import load_stage_config
    from tasks.generate.config import GenerateConfig

    for parent in folder.resolve().parents:
        if (parent / "params.yaml").is_file():
            return load_stage_config(GenerateConfig, "generate", parent / "params.yaml").sampler(trained_window)
    return None


def from_pretrained(
    checkpoint: str | Path,
    base_dir: str | Path | None = None,
    controlnet_dir: str | Path | None = None,
    controlnet_condition: ControlNetCondition | None = None,
    variant: Variant | None = None,
    device: str | torch.device | None = None,
    torch_dtype: torch.dtype | None = None,
    setting: str = "checkpoint",
    controlnet_setting: str = "controlnet_dir",
    pipeline_class: type[MaskVideoPipeline] = MaskVideoPipeline,
) -> MaskVideoPipeline:
    """Base folder + the checkpoint's trainable weights + its config -> the video pipeline.

    Args:
        checkpoint: a checkpoint folder (``.../ckpt-000200``), the train stage's ``out_dir`` (its
            latest), or a folder ``save_pipeline`` wrote.
        base_dir: the Stable-Diffusion-layout folder; default: the one the folder records.
        controlnet_dir: the ControlNet of frame 1; default: the one the folder records, else
            ``<base_dir>/controlnet`` when present.
        controlnet_condition: how that ControlNet is shown the first mask; default: as recorded.
        variant: weights files to read (``auto`` | ``fp32`` | ``fp16``); default: as at training.
        device, torch_dtype: where and in what precision the pipeline runs (``pipe.to``).
        setting, controlnet_setting: the names errors give the checkpoint and the ControlNet folder
            (a stage passes its config keys).
        pipeline_class: the class built (``maskmotion.MaskMotionPipeline`` for the public loader).

    The pipeline's ``checkpoint`` attribute is the folder loaded, ``checkpoint_config`` its config
    (the trained motion window is ``checkpoint_config["window"]``), ``base_dir`` and
    ``controlnet_dir`` the folders found, and ``sampler`` the recorded sampler settings.
    """
    folder = checkpoint_folder(checkpoint, setting)
    weights, config = read_trained(folder)
    base = Path(base_dir) if base_dir else recorded_folder(config, "base_dir", folder, "base folder")
    if controlnet_dir is None and config.get("controlnet_dir"):
        controlnet_dir = recorded_folder(config, "controlnet_dir", folder, "ControlNet folder")
        controlnet_setting = f"{folder}/config.json: controlnet_dir"
    components = load_base(
        base,
        "base_dir" if base_dir else f"{folder}/config.json: base_dir",
        controlnet_dir=controlnet_dir,
        variant=variant or config.get("base_variant", "auto"),
        controlnet_setting=controlnet_setting,
    )
    # the video UNet shares every weight it did not train with frame 1's UNet: the UNet is held once
    video_config = VideoUNetConfig(**config["video_unet"])
    video_unet = inflate_unet(components.unet, video_config, share_frozen=config["trainable"])
    try:
        load_trainable_state_dict(video_unet, weights, config["trainable"])
    except (KeyError, ValueError) as err:
        raise ValueError(f"checkpoint {folder} does not fit the base {base}: {err}") from None
    pipe = pipeline_class(
        components.vae,
        components.text_encoder,
        components.tokenizer,
        video_unet.eval(),
        components.sample_scheduler,
        base_unet=components.unet,
        controlnet=components.controlnet,
        controlnet_condition=controlnet_condition or recorded_condition(config),
        sampler=recorded_sampler(config, folder),
    )
    pipe.checkpoint, pipe.checkpoint_config = folder, config
    pipe.base_dir = base.resolve()
    frame1_controlnet = Path(controlnet_dir or base / "controlnet").resolve()
    pipe.controlnet_dir = None if components.controlnet is None else frame1_controlnet
    if device is not None or torch_dtype is not None:
        pipe.to(device, torch_dtype)
    return pipe


def save_pipeline(pipe: MaskVideoPipeline, path: str | Path) -> Path:
    """Write a pipeline ``from_pretrained`` loaded into ``path`` (atomically): its trainable weights and
    a ``config.json`` recording its base and ControlNet (absolute, and relative to ``path``), the
    ControlNet condition and ``pipe.sampler``. The base weights are not copied."""
    path = Path(path)
    config = dict(pipe.checkpoint_config)
    for key, recorded in (("base_dir", pipe.base_dir), ("controlnet_dir", pipe.controlnet_dir)):
        config.pop(key + FROM_HERE, None)
        config[key] = None if recorded is None else str(recorded)
        if recorded is not None:
            config[key + FROM_HERE] = os.path.relpath(recorded, path.resolve())
    condition = asdict(pipe.controlnet_condition)
    config["controlnet_condition"] = condition
    config["sampler"] = pipe.sampler.to_dict()
    with atomic_dir(path) as tmp:
        shutil.copyfile(pipe.checkpoint / "trainable.safetensors", tmp / "trainable.safetensors")
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return path
