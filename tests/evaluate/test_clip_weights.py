"""open_clip weights and the architecture named for them: the pairings that give silently wrong scores are refused."""

import json

import pytest

from tasks.common.clip_weights import open_clip_source
from tasks.common.params import ConfigError

SETTINGS = ("evaluate.clip_model", "evaluate.clip_weights")


def local_dir(tmp_path, quick_gelu: bool):
    folder = tmp_path / "vit_large_patch14_clip_224.openai"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"quick_gelu": quick_gelu}}))
    (folder / "open_clip_pytorch_model.bin").write_bytes(b"")
    return folder


def test_a_local_dir_loads_by_its_own_config_and_the_name_must_agree(tmp_path):
    folder = local_dir(tmp_path, quick_gelu=True)
    assert open_clip_source("ViT-L-14-quickgelu", str(folder), *SETTINGS) == (f"local-dir:{folder}", None)
    with pytest.raises(
        ConfigError, match="evaluate.clip_model = 'ViT-L-14'.*set evaluate.clip_model: ViT-L-14-quickgelu"
    ):
        open_clip_source("ViT-L-14", str(folder), *SETTINGS)


def test_a_single_file_that_says_openai_needs_quickgelu(tmp_path):
    weights = tmp_path / "openai_vit_l_14.bin"
    weights.write_bytes(b"")
    assert open_clip_source("ViT-L-14-quickgelu", str(weights), *SETTINGS) == ("ViT-L-14-quickgelu", str(weights))
    with pytest.raises(ConfigError, match="looks like OpenAI's CLIP weights"):
        open_clip_source("ViT-L-14", str(weights), *SETTINGS)
    with pytest.raises(FileNotFoundError, match="evaluate.clip_weights: '.*missing.bin' not found"):
        open_clip_source("ViT-L-14", str(tmp_path / "missing.bin"), *SETTINGS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no open_clip_config.json"):
        open_clip_source("ViT-L-14", str(tmp_path / "empty"), *SETTINGS)


def test_a_single_file_under_a_name_that_runs_either_activation_is_refused_until_the_setting_says(tmp_path):
    """ViT-L-14's weights as one file, under the non-quickgelu name, on a path without "openai": accepted
    silently before (the metric would have run GELU on QuickGELU weights)."""
    weights = tmp_path / "vit_l_14.safetensors"
    weights.write_bytes(b"")
    full = (*SETTINGS, None, "evaluate.clip_activation")
    with pytest.raises(
        ConfigError, match="cannot tell QuickGELU from GELU.*ViT-L-14-quickgelu.*clip_activation: gelu"
    ):
        open_clip_source("ViT-L-14", str(weights), *full)
    said = (*SETTINGS, "gelu", "evaluate.clip_activation")
    assert open_clip_source("ViT-L-14", str(weights), *said) == ("ViT-L-14", str(weights))
    said = (*SETTINGS, "quickgelu", "evaluate.clip_activation")
    assert open_clip_source("ViT-L-14", str(weights), *said) == ("ViT-L-14-quickgelu", str(weights))
    with pytest.raises(ConfigError, match="choose one"):
        open_clip_source("ViT-L-14-quickgelu", str(weights), *SETTINGS, "gelu", "evaluate.clip_activation")
    # an architecture open_clip has with one activation only: its name decides
    assert open_clip_source("ViT-B-16-SigLIP", str(weights), *SETTINGS) == ("ViT-B-16-SigLIP", str(weights))


def test_the_evaluate_setting_reaches_the_check(tmp_path):
    from tasks.evaluate.stage import EvaluateConfig, load_clip_scorer

    weights = tmp_path / "vit_l_14.bin"
    weights.write_bytes(b"")
    with pytest.raises(ConfigError, match="evaluate.clip_activation: gelu"):
        load_clip_scorer(EvaluateConfig(clip_model="ViT-L-14", clip_weights=str(weights)))
