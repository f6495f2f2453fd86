"""The whole stage on a tiny config, through the Prefect flow: layout, loading, metrics."""

import json

import pytest
import torch
import yaml
from diffusers import ControlNetModel, DDIMScheduler, StableDiffusionPipeline
from transformers import AutoTokenizer

from tasks.common.params import ConfigError
from tasks.common.toy_clip import load_toy_clip

TINY = {
    "world": "toy",
    "seed": 0,
    "data": {"n_scenes": 24, "frames_per_scene": 2, "n_heldout_combos": 4, "n_eval_scenes": 4},
    "vae": {
        "channels": [8, 16, 16],
        "norm_groups": 4,
        "train": {"steps": 3, "batch_size": 4, "lr": 1e-3, "min_lr": 1e-4, "warmup": 1},
    },
    "text": {"width": 32, "layers": 1, "heads": 2},
    "unet": {
        "channels": [16, 32, 32],
        "norm_groups": 8,
        "attention_heads": 2,
        "noise_offset": 0.1,
        "train": {"steps": 3, "batch_size": 4, "lr": 1e-3, "min_lr": 1e-4, "warmup": 1},
    },
    "controlnet": {
        "embedding_channels": [8, 8, 16],
        "train": {"steps": 3, "batch_size": 4, "lr": 1e-3, "min_lr": 1e-4, "warmup": 1},
    },
    "clip": {
        "embed_dim": 16,
        "vision_width": 32,
        "vision_layers": 1,
        "patch_size": 16,
        "text_width": 16,
        "text_layers": 1,
        "text_heads": 2,
        "train": {"steps": 3, "batch_size": 8, "lr": 1e-3, "min_lr": 1e-4, "warmup": 1},
    },
    "quality": {"n_samples": 2, "inference_steps": 2},
}


def _params(tmp_path, **base):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"base": base}))
    return str(path)


@pytest.mark.slow
def test_toy_base_flow_writes_an_sd14_style_folder(tmp_path, prefect_harness):
    from flows.base import base_flow

    out, metrics = tmp_path / "base" / "toy", tmp_path / "metrics" / "base.json"
    report = base_flow(
        _params(tmp_path, **TINY, out_dir=str(out), metrics=str(metrics), logs_dir=str(tmp_path / "logs"))
    )
    for part in ("vae", "text_encoder", "tokenizer", "unet", "scheduler", "controlnet", "clip", "logs"):
        assert (out / part).is_dir(), part
    assert (out / "model_index.json").is_file() and (out / "samples.png").is_file() and (out / "README.md").is_file()
    weights = [p for p in out.rglob("*.safetensors")]
    assert len(weights) == 5
    pipe = StableDiffusionPipeline.from_pretrained(out, dtype=torch.float32)
    assert pipe.unet.dtype == torch.float32
    assert pipe.vae.config.scaling_factor == pytest.approx(report["vae"]["scaling_factor"], rel=1e-3)
    assert AutoTokenizer.from_pretrained(out / "tokenizer").model_max_length == 20  # base.text.max_length
    assert DDIMScheduler.from_pretrained(out / "scheduler").config.steps_offset == 1
    ControlNetModel.from_pretrained(out / "controlnet")
    load_toy_clip(out / "clip")
    saved = json.loads(metrics.read_text())
    q = saved["quality"]
    assert {"vae_psnr_db", "vae_mask_iou", "text_to_image", "controlnet", "clip_zero_shot"} <= set(q)
    assert 0 <= q["controlnet"]["mask_iou"] <= 1 and saved["unet"]["steps"] == 3
    assert all(0 <= q[m]["ground_accuracy"] <= 1 for m in ("text_to_image", "controlnet"))
    assert report == saved


def test_sd14_flow_names_the_missing_setting(tmp_path, prefect_harness):
    from flows.base import base_flow

    params = _params(
        tmp_path,
        world="sd14",
        out_dir=str(tmp_path / "out"),
        **{k: TINY[k] for k in ("vae", "unet", "controlnet", "clip")},
        sd14={"sd14_dir": str(tmp_path / "missing")},
    )
    with pytest.raises(ConfigError, match="base.sd14.sd14_dir"):
        base_flow(params)


DECODER = {"steps": 3, "batch_size": 4, "lr": 1e-3, "min_lr": 1e-4, "warmup": 1}


def _vae_weights(folder):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(folder / "vae").state_dict()


@pytest.mark.slow
def test_decoder_training_keeps_the_encoder_and_matches_a_full_build(tmp_path, prefect_harness):
    """The decoder step run on a saved base (``decoder_only``) changes the decoder and nothing that
    makes latents, and gives the decoder a full build with the step gives (here on whole frames, half of
    them showing 2-3 objects)."""
    from flows.base import base_flow

    saved, metrics = tmp_path / "saved", tmp_path / "saved.json"
    common = dict(TINY, out_dir=str(saved), metrics=str(metrics), logs_dir=str(tmp_path / "logs"))
    base_flow(_params(tmp_path, **common))
    before, built = _vae_weights(saved), json.loads(metrics.read_text())
    name = "diffusion_pytorch_model.safetensors"
    models = {m: (saved / m / name).read_bytes() for m in ("unet", "controlnet")}
    with_step = dict(common, vae=dict(TINY["vae"], decoder_train=DECODER, decoder_crop=64, decoder_multi_object=0.5))
    report = base_flow(_params(tmp_path, **with_step), decoder_only=True)
    after = _vae_weights(saved)

    frozen = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    assert all((saved / m / name).read_bytes() == data for m, data in models.items())  # kept byte for byte
    assert report["vae_decoder"]["steps"] == 3 and report["unet"] == built["unet"]
    assert (saved / "logs" / "vae_decoder.csv").is_file() and report == json.loads(metrics.read_text())

    full = tmp_path / "full"
    base_flow(_params(tmp_path, **dict(with_step, out_dir=str(full), metrics=str(tmp_path / "full.json"))))
    full_weights = _vae_weights(full)
    assert all(torch.equal(after[k], full_weights[k]) for k in after)
    assert (saved / "vae" / "config.json").read_text() == (full / "vae" / "config.json").read_text()


def test_decoder_only_names_the_missing_setting(tmp_path, prefect_harness):
    from flows.base import base_flow

    params = _params(tmp_path, **TINY, out_dir=str(tmp_path / "out"), metrics=str(tmp_path / "m.json"))
    with pytest.raises(ValueError, match="base.vae.decoder_train"):
        base_flow(params, decoder_only=True)


@pytest.mark.slow
def test_variant_base_builds_a_base_with_multi_object_frames_beside_the_pipelines(tmp_path, monkeypatch):
    from bench.fewshot import variant_base
    from tasks.base import pools

    shares = []
    real = pools.multi_object_frames

    def spy(cfg, n_single, share, seed):
        shares.append(share)
        return real(cfg, n_single, share, seed)

    monkeypatch.setattr(pools, "multi_object_frames", spy)
    out = tmp_path / "base-multi"
    variant_base.main(["--multi-object-share", "0.25", "--params", _params(tmp_path, **TINY), "--out", str(out)])
    assert shares == [0.25]  # once: the VAE's, UNet's and ControlNet's pool (the decoder step is off)
    StableDiffusionPipeline.from_pretrained(out, dtype=torch.float32)
    report = json.loads((out / "base.json").read_text())
    assert report["unet"]["steps"] == 3 and "quality" in report
    assert not (tmp_path / "base-multi.json").exists()  # moved into the folder


@pytest.mark.slow
def test_variant_base_overlay_builds_a_posed_base_with_its_words_and_pose_figures(tmp_path):
    from transformers import AutoTokenizer

    from bench.fewshot import variant_base

    overlay = tmp_path / "posed.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "motions": ["run", "spin", "squash"],
                    "motion_weights": None,
                    "turned_share": 0.5,
                    "stretched_share": 0.25,
                }
            }
        )
    )
    out = tmp_path / "posed"
    variant_base.main(["--overlay", str(overlay), "--params", _params(tmp_path, **TINY), "--out", str(out)])

    vocab = AutoTokenizer.from_pretrained(out / "tokenizer").get_vocab()
    assert {"spins", "bounces", "runs"} <= set(vocab) and "jumps" not in vocab  # the configured motions' words
    quality = json.loads((out / "base.json").read_text())["quality"]
    assert quality["per_object_set"]["as_rendered"]["objects_at_both"] == 9  # the scorer's ceiling: 9 of 9
    assert quality["true_frames"]["shape_accuracy"] >= 0.75  # the samplers' ceiling, upright
    posed = quality["posed"]
    assert posed["true_frames"]["shape_accuracy"] >= 0.75  # the detector reads posed shapes as rendered
    assert 0 <= posed["vae_grid"]["min_iou"] <= posed["vae_grid"]["mean_iou"] <= 1
    grid = (out / "vae_poses.csv").read_text().splitlines()
    assert grid[0] == "shape,pose,vae_iou,rendered_iou" and len(grid) == 1 + 5 * 9


@pytest.mark.slow
def test_variant_base_built_in_two_parts_merges_into_one_base(tmp_path):
    from safetensors.torch import load_file, save_file

    from bench.fewshot import variant_base

    decoder = {"steps": 2, "batch_size": 4, "lr": 1e-3, "min_lr": 1e-4, "warmup": 1}
    overlay = tmp_path / "recipe.yaml"
    overlay.write_text(yaml.safe_dump({"vae": {"decoder_train": decoder}}))
    args = ["--overlay", str(overlay), "--params", _params(tmp_path, **TINY), "--out", str(tmp_path / "base")]
    for part in ("generators", "vae-clip"):
        variant_base.main([*args, "--part", part])
    variant_base.main([*args, "--merge"])

    def weights(folder, name):
        file = next((folder / name).glob("*.safetensors"))
        return load_file(file)

    gen, vc, out = (tmp_path / n for n in ("base-generators", "base-vae-clip", "base"))
    for name, source in [("unet", gen), ("controlnet", gen), ("text_encoder", gen), ("vae", vc), ("clip", vc)]:
        merged, expected = weights(out, name), weights(source, name)
        assert merged.keys() == expected.keys() and all(merged[k].equal(expected[k]) for k in merged), name
    assert not weights(gen, "vae")["decoder.conv_out.weight"].equal(weights(out, "vae")["decoder.conv_out.weight"])
    # every model as one build in one process trains it: the parts change where models train, not what
    variant_base.main([*args[:-1], str(tmp_path / "whole")])
    for name in ("unet", "controlnet", "text_encoder", "vae", "clip"):
        merged, whole = weights(out, name), weights(tmp_path / "whole", name)
        assert all(merged[k].equal(whole[k]) for k in whole), name
    report = json.loads((out / "base.json").read_text())
    assert report["unet"]["steps"] == 3 and report["clip"]["steps"] == 3 and report["vae_decoder"]["steps"] == 2
    assert set(report["built_in_parts"]) == {"generators_minutes", "vae_clip_minutes"} and "quality" in report
    StableDiffusionPipeline.from_pretrained(out, dtype=torch.float32)
    # merged unmeasured: the same weights, each part's own figures
    variant_base.main([*args, "--merge", "--no-measure"])
    assert (
        json.loads((out / "base.json").read_text())["quality"]
        == json.loads((gen / "base.json").read_text())["quality"]
    )
    assert weights(out, "vae")["decoder.conv_out.weight"].equal(weights(vc, "vae")["decoder.conv_out.weight"])

    # a vae-clip part whose VAE learnt other latents cannot be merged
    file = next((vc / "vae").glob("*.safetensors"))
    tensors = load_file(file)
    tensors["encoder.conv_in.weight"] += 1e-2
    save_file(tensors, file)
    with pytest.raises(ValueError, match="VAE encoders .* differ"):
        variant_base.main([*args, "--merge"])
