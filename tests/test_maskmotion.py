"""maskmotion: the pipeline a researcher imports gives the generate stage's videos, from anywhere."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from maskmotion import MaskMotionPipeline, SamplerSettings, read_masks
from tasks.generate.config import GenerateConfig
from tasks.generate.stage import generate

REPO = Path(__file__).resolve().parent.parent


def stage_video(tiny_world: Path, tiny_run: Path, out: Path) -> tuple[dict, np.ndarray]:
    """The generate stage's first video on the tiny world, with params.yaml's sampler settings (fewer steps)."""
    cfg = GenerateConfig(
        checkpoint_dir=str(tiny_run / "checkpoints"),
        sequences=str(tiny_world / "data/raw/toy/heldout/manifest.yaml"),
        out_dir=str(out),
        seeds=[3],
        num_inference_steps=4,
    )
    row = generate(cfg).iloc[0].to_dict()
    return row, np.load(out / row["video_id"] / "frames.npy")


def test_the_pipeline_gives_the_generate_stages_video_bit_for_bit(tiny_world, tiny_run, tmp_path, monkeypatch):
    row, frames = stage_video(tiny_world, tiny_run, tmp_path / "outputs")
    monkeypatch.chdir(tmp_path)  # not the folder the model was trained from
    pipe = MaskMotionPipeline.from_pretrained(tiny_run / "checkpoints")
    assert pipe.sampler.window == pipe.checkpoint_config["window"]  # the trained window
    video = pipe(row["prompt"], read_masks(row["masks_dir"]), seed=row["seed"], num_inference_steps=4)
    assert np.array_equal(video.frames, frames)

    # saved, moved, loaded from elsewhere: the same video, the settings it was saved with
    pipe.sampler = SamplerSettings(**{**pipe.sampler.to_dict(), "num_inference_steps": 4})
    pipe.save_pretrained(tmp_path / "saved")
    shutil.move(tmp_path / "saved", tmp_path / "moved")
    again = MaskMotionPipeline.from_pretrained(tmp_path / "moved")
    assert again.sampler == pipe.sampler
    assert np.array_equal(again(row["prompt"], read_masks(row["masks_dir"]), seed=row["seed"]).frames, frames)


def test_a_relative_base_is_found_above_the_checkpoint_and_a_missing_one_named(
    tiny_world, tiny_run, tmp_path, monkeypatch
):
    project = tmp_path / "project"
    checkpoint = next((tiny_run / "checkpoints").glob("ckpt-*"))
    shutil.copytree(checkpoint, project / "data/checkpoints" / checkpoint.name)
    shutil.copytree(tiny_world / "base", project / "models/base")
    config_path = project / "data/checkpoints" / checkpoint.name / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "base_dir": "models/base"}))  # as trained from the project root
    monkeypatch.chdir(tmp_path)
    pipe = MaskMotionPipeline.from_pretrained(project / "data/checkpoints" / checkpoint.name)
    assert pipe.base_dir == (project / "models/base").resolve()

    # saved beside its base, then both moved: found through the path relative to the saved folder
    pipe.save_pretrained(project / "saved")
    shutil.move(project, tmp_path / "elsewhere")
    assert (
        MaskMotionPipeline.from_pretrained(tmp_path / "elsewhere/saved").base_dir
        == (tmp_path / "elsewhere/models/base").resolve()
    )
    shutil.rmtree(tmp_path / "elsewhere/models")
    with pytest.raises(FileNotFoundError, match=r"config.json: base_dir: base folder '.*' not found; looked in"):
        MaskMotionPipeline.from_pretrained(tmp_path / "elsewhere/saved")


def test_a_checkpoint_in_a_project_samples_with_its_generate_settings(tiny_run, tmp_path):
    shutil.copytree(tiny_run / "checkpoints", tmp_path / "project/data/checkpoints")
    pipe = MaskMotionPipeline.from_pretrained(tmp_path / "project/data/checkpoints")
    assert pipe.sampler == SamplerSettings(window=pipe.checkpoint_config["window"])  # no project: the defaults
    (tmp_path / "project/params.yaml").write_text("generate:\n  guidance_scale: 7.5\n  shared_noise: paper\n")
    pipe = MaskMotionPipeline.from_pretrained(tmp_path / "project/data/checkpoints")
    assert (pipe.sampler.guidance_scale, pipe.sampler.shared_noise, pipe.sampler.adain) == (7.5, "paper", True)


def test_params_generate_section_and_the_pipeline_defaults_agree():
    generate_params = yaml.safe_load((REPO / "params.yaml").read_text())["generate"]
    defaults = SamplerSettings()
    shared = {name: getattr(defaults, name) for name in defaults.to_dict() if name in generate_params}
    as_yaml = {name: list(value) if isinstance(value, tuple) else value for name, value in shared.items()}
    assert as_yaml == {name: generate_params[name] for name in shared}
    assert generate_params["controlnet_scale"] == defaults.controlnet_conditioning_scale
    assert GenerateConfig().sampler(defaults.window or 8) == SamplerSettings(window=defaults.window or 8)


def test_seed_and_generator_are_one_or_the_other(tiny_run):

    pipe = MaskMotionPipeline.from_pretrained(tiny_run / "checkpoints")
    with pytest.raises(ValueError, match="seed or generator"):
        pipe("a red circle", np.ones((3, 32, 32), bool), seed=0, generator=torch.Generator())
