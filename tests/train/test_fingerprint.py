"""A training run's identity survives the removal of a setting every run had at one value: a checkpoint made
before train.noise_offset was removed still resumes, and make ablations / compare still reuse it."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from tasks.train.config import TrainConfig, run_fingerprint


def test_fingerprints_are_those_computed_before_noise_offset_was_removed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths: the fingerprint hashes the settings as written
    for part in ("unet", "vae", "text_encoder"):
        Path("base", part).mkdir(parents=True)
        Path("base", part, "config.json").write_text(f'{{"part": "{part}"}}')
    for folder in ("clips", "masks"):
        Path(folder).mkdir()
        Path(folder, "manifest.csv").write_text(f"id\n{folder}-0\n")
    cfg = TrainConfig(clips_dir="clips", masks_dir="masks", base_dir="base")

    # both computed by the code of 92a8abf (train.noise_offset: 0.0 then), on these same files
    assert run_fingerprint(cfg) == "edf4b4edc75e1a82"
    assert run_fingerprint(cfg.model_copy(update={"lr": 1e-3})) == "ad4f2a6d9b3c2c28"
    # a setting added since (train.shift_cells) keeps them at its do-nothing value, and is hashed off it
    assert run_fingerprint(cfg.model_copy(update={"shift_cells": 2})) != run_fingerprint(cfg)


def test_the_removed_setting_is_refused_by_name():
    with pytest.raises(ValidationError, match="noise_offset"):
        TrainConfig(noise_offset=0.1)
