"""params.yaml: every stage section validates, and a mistake names the key."""

from pathlib import Path

import pytest
import yaml

from tasks.common.params import ConfigError, load_stage_config
from tasks.ingest.stage import IngestConfig
from tasks.toyworld.stage import ToyWorldConfig

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


def test_a_guidance_interval_out_of_order_is_named(tmp_path):
    from tasks.generate.config import GenerateConfig

    p = tmp_path / "params.yaml"
    p.write_text("generate:\n  mask_guidance_interval: [0.6, 0.4]\n")
    with pytest.raises(ConfigError, match=r"generate.mask_guidance_interval: .*0 <= start < end <= 1"):
        load_stage_config(GenerateConfig, "generate", p)
    p.write_text("generate:\n  mask_guidance_interval: [0.0, 0.4]\n")
    sampler = load_stage_config(GenerateConfig, "generate", p).sampler(8)
    assert sampler.mask_guidance_interval == (0.0, 0.4) and [sampler.guided_at(i, (0.0, 0.4)) for i in (9, 10)] == [
        True,
        False,
    ]


def test_missing_section_means_defaults(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("other: {}\n")
    assert load_stage_config(ToyWorldConfig, "toyworld", p) == ToyWorldConfig()


def test_profile_overrides_existing_keys_only(tmp_path):
    from tasks.common.params import apply_profile, read_params

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

    from tasks.common.params import apply_profile

    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    merged = apply_profile(tmp_path / "params.yaml", REPO / "profiles" / "ci.yaml")
    assert merged["train"]["steps"] == 4


def _stage_configs():
    from tasks.ablations import AblationsConfig
    from tasks.base.config import BaseConfig
    from tasks.compare import CompareConfig
    from tasks.evaluate.stage import EvaluateConfig
    from tasks.generate.config import GenerateConfig
    from tasks.masks.stage import MasksConfig
    from tasks.train.config import TrainConfig

    return {
        "toyworld": ToyWorldConfig,
        "ingest": IngestConfig,
        "masks": MasksConfig,
        "base": BaseConfig,
        "train": TrainConfig,
        "generate": GenerateConfig,
        "evaluate": EvaluateConfig,
        "ablations": AblationsConfig,
        "compare": CompareConfig,
    }


def _default_mismatches(model, section: dict, where: str, compare: bool = True) -> list[str]:
    """Keys of ``model`` that ``section`` lacks, or whose pydantic default differs from the value there.

    Below a required field (each base model's training schedule) there is no one default to agree with:
    only the keys are checked there."""
    from pydantic import BaseModel, TypeAdapter

    found = []
    for name, field in model.model_fields.items():
        key = f"{where}.{name}"
        if name not in section:
            found.append(f"{key}: missing from params.yaml")
            continue
        value = section[name]
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel) and isinstance(value, dict):
            found += _default_mismatches(field.annotation, value, key, compare and not field.is_required())
        if not compare or field.is_required():
            continue
        default = field.get_default(call_default_factory=True)
        shipped = TypeAdapter(field.annotation).validate_python(value)
        if isinstance(default, BaseModel):
            default, shipped = default.model_dump(), shipped.model_dump()
        if shipped != default:
            found.append(f"{key}: pydantic default {default!r}, params.yaml {value!r}")
    return found


def test_params_yaml_is_the_one_source_of_defaults():
    """Every key of every stage config is in params.yaml, and every pydantic default equals it."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    found = []
    for section, model in _stage_configs().items():
        found += _default_mismatches(model, params.get(section) or {}, section)
    assert not found, "\n".join(found)


def test_a_changed_default_is_caught():
    """The comparison above can fail: a default that drifts from params.yaml is named."""
    from tasks.generate.config import GenerateConfig

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["generate"]["guidance_scale"] = 7.5
    del params["generate"]["alpha"]
    found = _default_mismatches(GenerateConfig, params["generate"], "generate")
    assert found == [
        "generate.guidance_scale: pydantic default 4.0, params.yaml 7.5",
        "generate.alpha: missing from params.yaml",
    ]


@pytest.mark.parametrize("profile", ["ci.yaml", "sd14.yaml"])
def test_profiles_apply_and_validate(tmp_path, profile):
    """Each shipped profile sets only keys params.yaml has, and every stage section still validates."""
    from tasks.common.params import apply_profile

    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    apply_profile(params, REPO / "profiles" / profile)
    for section, model in _stage_configs().items():
        load_stage_config(model, section, params)


def test_params_rewritten_by_dvc_exp_run_set_read_the_same(tmp_path):
    """``dvc exp run -S key=value`` rewrites params.yaml with ruamel.yaml (YAML 1.2), which drops the quotes
    of ``shared_noise: "off"``; every stage must still read what the file meant."""
    from dvc.utils.serialize import modify_yaml

    copy = tmp_path / "params.yaml"
    copy.write_text((REPO / "params.yaml").read_text())
    with modify_yaml(copy) as data:
        data["toyworld"]["n_multi_train"] = 4
    assert 'shared_noise: "off"' not in copy.read_text()  # what dvc writes: the quotes are gone
    for section, model in _stage_configs().items():
        shipped = load_stage_config(model, section, REPO / "params.yaml")
        expected = shipped.model_copy(update={"n_multi_train": 4}) if section == "toyworld" else shipped
        assert load_stage_config(model, section, copy) == expected, section


def test_applying_a_profile_keeps_every_comment_of_params_yaml(tmp_path):
    """`python -m tasks.common.params apply profiles/sd14.yaml` used to rewrite params.yaml without its comments."""
    import subprocess
    import sys

    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    comments = [line.split("#", 1)[1].strip() for line in params.read_text().splitlines() if "#" in line]
    assert len(comments) > 50
    subprocess.run(
        [sys.executable, "-m", "tasks.common.params", "apply", str(REPO / "profiles/sd14.yaml")],
        cwd=tmp_path,
        check=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    text = params.read_text()
    kept = [c for c in comments if c in text]
    assert kept == comments, sorted(set(comments) - set(kept))  # base.sd14's too: its keys are set one by one
    from tasks.common.params import read_params

    merged = read_params(params)
    assert merged["evaluate"]["clip_model"] == "ViT-L-14-quickgelu" == merged["base"]["sd14"]["clip_model"]
    assert merged["ingest"]["height"] == 512 and merged["evaluate"]["metrics"] == "metrics/sd14/eval.json"
    assert not list(tmp_path.glob(".params.yaml.tmp"))
