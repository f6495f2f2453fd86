"""params.yaml: every stage section validates, and a mistake names the key."""

from pathlib import Path

import pytest

from tasks.ingest import IngestConfig
from tasks.params import ConfigError, load_stage_config
from tasks.toyworld import ToyWorldConfig

REPO = Path(__file__).resolve().parent.parent


def test_shipped_params_validate():
    load_stage_config(ToyWorldConfig, "toyworld", REPO / "params.yaml")
    load_stage_config(IngestConfig, "ingest", REPO / "params.yaml")


def test_unknown_key_is_named(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("ingest:\n  n_frame: 8\n")
    with pytest.raises(ConfigError, match=r"params.yaml: ingest.n_frame: Extra inputs are not permitted"):
        load_stage_config(IngestConfig, "ingest", p)


def test_wrong_type_is_named(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("toyworld:\n  size: big\n  motion: fly\n")
    with pytest.raises(ConfigError) as info:
        load_stage_config(ToyWorldConfig, "toyworld", p)
    assert "toyworld.size" in str(info.value) and "toyworld.motion" in str(info.value)


def test_missing_section_means_defaults(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("other: {}\n")
    assert load_stage_config(ToyWorldConfig, "toyworld", p) == ToyWorldConfig()


def test_profile_overrides_existing_keys_only(tmp_path):
    from tasks.params import apply_profile, read_params

    p, prof = tmp_path / "params.yaml", tmp_path / "ci.yaml"
    p.write_text("train:\n  steps: 300\n  lr: 0.1\n")
    prof.write_text("train:\n  steps: 4\n")
    assert apply_profile(p, prof) == {"train": {"steps": 4, "lr": 0.1}}
    assert read_params(p) == {"train": {"steps": 4, "lr": 0.1}}
    prof.write_text("train:\n  stepz: 4\n")
    with pytest.raises(ConfigError, match="train.stepz is not a key"):
        apply_profile(p, prof)


def test_shipped_ci_profile_applies_to_shipped_params(tmp_path):
    import shutil

    from tasks.params import apply_profile

    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    merged = apply_profile(tmp_path / "params.yaml", REPO / "profiles" / "ci.yaml")
    assert merged["train"]["steps"] == 4
