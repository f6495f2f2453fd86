"""Lookalike downloads (maskmotion/tools/lookalike.py, `maskmotion lookalike`): tiny folders that load as the
real SD1.4, ControlNet, open_clip and SAM downloads do, through diffusers, transformers, open_clip and the
project's own loaders."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from maskmotion.tools import lookalike

PROMPTS = [
    "a photo of a cat",
    "A Red FOX jumps over the lazy dog's tail!!",
    "3d render, 4k, trending on artstation; (masterpiece) #1 - naïve café",
    "  many   spaces\tand\nnewlines ",
    " ".join(["a horse galloping"] * 40),  # 120 words: longer than 77 tokens, so both truncate
]


@pytest.fixture(scope="session")
def weights(tmp_path_factory) -> dict[str, Path]:
    return lookalike.build(tmp_path_factory.mktemp("weights"), size="tiny", seed=0)


@pytest.fixture(scope="session")
def fp16_only(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fp16")
    return lookalike.build(out, size="tiny", seed=0, variants=("fp16",), parts=("sd14",))["sd14"]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_sd14_folder_is_laid_out_and_configured_as_published(weights):
    sd = weights["sd14"]
    assert sd.name == "stable-diffusion-v1-4"
    index = read_json(sd / "model_index.json")
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["safety_checker"] == ["stable_diffusion", "StableDiffusionSafetyChecker"]
    assert index["feature_extractor"] == ["transformers", "CLIPImageProcessor"]
    scheduler = read_json(sd / "scheduler" / "scheduler_config.json")
    assert scheduler == lookalike.SCHEDULER  # written as configured; the values SD1.4's download holds:
    assert (scheduler["_class_name"], scheduler["beta_schedule"], scheduler["steps_offset"]) == (
        "PNDMScheduler",
        "scaled_linear",
        1,
    )
    assert (scheduler["beta_start"], scheduler["beta_end"], scheduler["skip_prk_steps"]) == (0.00085, 0.012, True)
    for part in ("unet", "vae"):
        assert sorted(os.listdir(sd / part)) == [
            "config.json",
            "diffusion_pytorch_model.fp16.safetensors",
            "diffusion_pytorch_model.safetensors",
        ]
    for part in ("text_encoder", "safety_checker"):
        assert sorted(os.listdir(sd / part)) == ["config.json", "model.fp16.safetensors", "model.safetensors"]
    assert sorted(os.listdir(sd / "tokenizer")) == [
        "merges.txt",
        "special_tokens_map.json",
        "tokenizer_config.json",
        "vocab.json",
    ]
    text = read_json(sd / "text_encoder" / "config.json")
    assert (text["bos_token_id"], text["eos_token_id"], text["pad_token_id"]) == (0, 2, 1)
    assert (text["vocab_size"], text["max_position_embeddings"], text["hidden_act"]) == (49408, 77, "quick_gelu")
    unet = read_json(sd / "unet" / "config.json")
    assert unet["block_out_channels"] == [32, 64, 64, 64] and unet["cross_attention_dim"] == text["hidden_size"]
    assert sorted(unet) == sorted(["_class_name", "_diffusers_version", *lookalike.unet_config("full")])


def test_diffusers_loads_the_pipeline_with_its_safety_checker_and_runs_it(weights):
    from diffusers import StableDiffusionPipeline
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor, CLIPTokenizer

    pipe = StableDiffusionPipeline.from_pretrained(weights["sd14"])
    assert isinstance(pipe.safety_checker, StableDiffusionSafetyChecker)
    assert isinstance(pipe.feature_extractor, CLIPImageProcessor)
    assert isinstance(pipe.tokenizer, CLIPTokenizer)
    assert type(pipe.scheduler).__name__ == "PNDMScheduler" and pipe.unet.dtype == torch.float32
    pipe.set_progress_bar_config(disable=True)
    out = pipe("a red fox", height=64, width=64, num_inference_steps=2, output_type="np", generator=torch.Generator())
    assert out.images.shape == (1, 64, 64, 3)
    assert out.nsfw_content_detected == [False]  # the lookalike checker flags nothing, so images stay unblacked


def test_project_load_base_reads_both_folders(weights, fp16_only):
    from diffusers import ControlNetModel, DDIMScheduler, DDPMScheduler

    from tasks.common.pretrained import load_base

    base = load_base(weights["sd14"], controlnet_dir=weights["controlnet"])
    assert isinstance(base.train_scheduler, DDPMScheduler) and isinstance(base.sample_scheduler, DDIMScheduler)
    assert base.train_scheduler.config.beta_schedule == "scaled_linear"
    assert isinstance(base.controlnet, ControlNetModel)
    assert base.tokenizer.model_max_length == 77
    half = load_base(fp16_only, with_controlnet=False)
    assert half.unet.dtype == torch.float32  # load_base casts the fp16 files to fp32
    assert half.text_encoder.config.hidden_size == base.text_encoder.config.hidden_size


def test_project_sd14_check_passes(weights):
    from tasks.base.config import Sd14Config
    from tasks.base.sd14 import check_sd14

    clip = weights["clip"]
    cfg = Sd14Config(
        sd14_dir=str(weights["sd14"]),
        controlnet_dir=str(weights["controlnet"]),
        clip_model=f"local-dir:{clip}",
        clip_weights=str(clip / lookalike.CLIP_FILE),
    )
    report = check_sd14(cfg)
    assert report["unet"] == "UNet2DConditionModel" and report["controlnet"] == "ControlNetModel"


def test_tokenizer_gives_open_clip_ids(weights):
    import open_clip
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(weights["sd14"] / "tokenizer")
    assert type(tokenizer).__name__ == "CLIPTokenizer" and len(tokenizer) == 49408
    ours = tokenizer(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    theirs = open_clip.tokenize(PROMPTS)
    for prompt, a, b in zip(PROMPTS, ours, theirs):
        n = int((b == 49407).nonzero()[0]) + 1  # up to the first end-of-text
        assert a[:n].tolist() == b[:n].tolist(), prompt
        # SD pads with <|endoftext|>, open_clip with 0
        assert (a[n:] == 49407).all() and (b[n:] == 0).all(), prompt
    assert (theirs[-1] != 0).all(), "the long prompt should fill all 77 positions"


def test_fp16_only_folder_has_no_fp32_files(fp16_only):
    files = [p.name for p in fp16_only.rglob("*.safetensors")]
    assert len(files) == 4 and all(name.endswith(".fp16.safetensors") for name in files)
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(fp16_only, variant="fp16", dtype=torch.float16)
    assert pipe.unet.dtype == torch.float16 and pipe.safety_checker.dtype == torch.float16


def test_controlnet_loads_and_matches_its_unet(weights):
    from diffusers import ControlNetModel, UNet2DConditionModel

    folder = weights["controlnet"]
    assert folder.name == "sd-controlnet-seg"
    assert sorted(os.listdir(folder)) == ["config.json", "diffusion_pytorch_model.safetensors"]
    controlnet = ControlNetModel.from_pretrained(folder)
    unet = UNet2DConditionModel.from_pretrained(weights["sd14"] / "unet")
    shared = {k for k in set(controlnet.config) & set(unet.config) if not k.startswith("_")}
    assert shared >= {"block_out_channels", "cross_attention_dim", "attention_head_dim", "down_block_types"}
    assert {k: controlnet.config[k] for k in shared} == {k: unet.config[k] for k in shared}
    assert list(controlnet.config.conditioning_embedding_out_channels) == [8, 16, 32, 64]
    assert controlnet.config.controlnet_conditioning_channel_order == "rgb"
    # copied from the UNet, as ControlNet training starts; the zero convs are not zero (a trained one's aren't)
    assert torch.equal(controlnet.conv_in.weight, unet.conv_in.weight)
    assert controlnet.controlnet_mid_block.weight.abs().sum() > 0


def test_scribble_controlnet_is_the_same_architecture_by_another_name(tmp_path):
    paths = lookalike.build(tmp_path, controlnet="scribble", parts=("controlnet",))
    assert paths["controlnet"] == tmp_path / "sd-controlnet-scribble"
    assert (paths["controlnet"] / "diffusion_pytorch_model.safetensors").is_file()


def test_sam_file_is_a_state_dict_for_the_project_builder(weights):
    from tasks.segment.sam import load_sam

    path = weights["sam"]
    assert path.name == "sam_vit_b_01ec64.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert type(load_sam(path, "tiny")).__name__ == "Sam"


def test_open_clip_checkpoint_loads_in_another_process_by_local_dir(weights):
    folder = weights["clip"]
    assert sorted(os.listdir(folder)) == ["open_clip_config.json", "open_clip_pytorch_model.bin"]
    # the call of the evaluate stage (and of base.sd14), in a fresh process: no config registered beforehand
    script = f"""
import open_clip, torch
from PIL import Image
name, checkpoint = "local-dir:{folder}", "{folder / lookalike.CLIP_FILE}"
model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=checkpoint)
state = torch.load(checkpoint, map_location="cpu", weights_only=True)
assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items()), "weights not loaded"
text = model.encode_text(open_clip.get_tokenizer(name)(["a red fox"]))
image = model.encode_image(preprocess(Image.new("RGB", (64, 64))).unsqueeze(0))
print(tuple(text.shape), tuple(image.shape))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "(1, 32) (1, 32)"


def test_full_size_configs_have_sd14_parameter_counts():
    """The real architectures, built on the meta device (nothing allocated)."""
    import open_clip
    from accelerate import init_empty_weights

    def count(model):
        return sum(p.numel() for p in model.parameters())

    with init_empty_weights():
        unet = lookalike.build_unet("full")
        counts = {
            "unet": count(unet),
            "vae": count(lookalike.build_vae("full")),
            "text_encoder": count(lookalike.build_text_encoder("full")),
            "controlnet": count(lookalike.build_controlnet(unet, "full")),
        }
    assert counts == {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480, "controlnet": 361_279_120}
    assert lookalike.open_clip_model_config("full") == open_clip.get_model_config("ViT-L-14-quickgelu")
    assert lookalike.controlnet_options("full")["conditioning_embedding_out_channels"] == [16, 32, 96, 256]


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(weights, tmp_path):
    again = lookalike.build(tmp_path / "again", size="tiny", seed=0)
    for part, path in weights.items():
        if path.is_dir():
            assert file_bytes(again[part]) == file_bytes(path), part
        else:
            assert again[part].read_bytes() == path.read_bytes(), part
    other = lookalike.build(tmp_path / "other", seed=1, parts=("sam",))
    assert other["sam"].read_bytes() != weights["sam"].read_bytes()


def test_refuses_to_overwrite_unless_forced(tmp_path):
    sam = tmp_path / lookalike.SAM_FILE
    sam.write_bytes(b"a real download")
    with pytest.raises(FileExistsError, match="--force"):
        lookalike.build(tmp_path, parts=("clip", "sam"))
    assert not (tmp_path / lookalike.CLIP_DIR).exists(), "nothing is written when a target is taken"
    assert lookalike.main(["--out", str(tmp_path), "--parts", "sam"]) == 2
    lookalike.build(tmp_path, parts=("sam",), force=True)
    assert sam.read_bytes() != b"a real download"
    assert sorted(os.listdir(tmp_path)) == [lookalike.SAM_FILE], "no temp folder left behind"


def test_cli_writes_and_prints_the_settings(tmp_path, capsys):
    assert lookalike.main(["--out", str(tmp_path), "--parts", "clip,sam", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert f"evaluate.clip_model: local-dir:{tmp_path / lookalike.CLIP_DIR}" in printed
    assert "masks.sam_model_type: tiny" in printed
    with pytest.raises(SystemExit):
        lookalike.main(["--out", str(tmp_path), "--size", "huge"])
