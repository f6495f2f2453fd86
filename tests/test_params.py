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
