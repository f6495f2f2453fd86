"""What real downloads look like to the loader: fp16-only weights files, a mistyped ControlNet folder,
missing weights. Each is loaded or refused in seconds, the error naming the setting."""

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from flows.common import is_transient
from tasks.common.pretrained import load_base
from tasks.generate.stage import generate
from tests.tiny_world import tiny_generate_config


def fp16_only_copy(src, dest):
    """The base folder as many downloads hold it: each weights file only as its *.fp16.safetensors variant."""
    shutil.copytree(src, dest)
    for part in ("vae", "text_encoder", "unet", "controlnet"):
        for weights in (dest / part).glob("*.safetensors"):
            half = {k: v.half() for k, v in load_file(weights).items()}
            save_file(half, weights.with_name(weights.stem + ".fp16.safetensors"))
            weights.unlink()
    return dest


def test_an_fp16_only_folder_loads_in_fp32_and_matches_the_original_to_fp16_rounding(tiny_world, tmp_path):
    original = load_base(tiny_world / "base")
    half = load_base(fp16_only_copy(tiny_world / "base", tmp_path / "base16"), "train.base_dir")
    assert half.unet.dtype == torch.float32 and half.controlnet is not None
    for a, b in zip(original.unet.parameters(), half.unet.parameters()):
        torch.testing.assert_close(b, a.half().float())
    with pytest.raises(FileNotFoundError, match="train.base_dir: .*vae' holds no fp32 weights"):
        load_base(tmp_path / "base16", "train.base_dir", variant="fp32")


def test_missing_weights_and_a_mistyped_controlnet_fail_at_once_naming_the_setting(tiny_world, tiny_run, tmp_path):
    cfg = tiny_generate_config(
        tiny_world, tiny_run, out_dir=str(tmp_path / "o"), controlnet_dir=str(tmp_path / "typo")
    )
    with pytest.raises(FileNotFoundError, match="generate.controlnet_dir: .*typo' is not a ControlNet folder") as err:
        generate(cfg)
    assert not is_transient(err.value)  # not retried by the generate flow
    broken = shutil.copytree(tiny_world / "base", tmp_path / "broken")
    for weights in (broken / "unet").glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(FileNotFoundError, match="my.setting: .*unet' holds no weights") as err:
        load_base(broken, "my.setting")
    assert not is_transient(err.value)
