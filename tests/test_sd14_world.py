"""The sd14 world end to end, as a user meets it: download-lookalike folders, the sd14 profile, dvc repro.

The folders are ``maskmotion lookalike``'s at reduced width (SD1.4's configs and layout, CLIP's real
tokenizer, the SD folder holding only ``*.fp16.safetensors`` files, a safety checker that is never
used, a PNDM scheduler config); the profile is ``profiles/sd14.yaml`` with a small override (few
steps, 64x64 frames, the tiny SAM). Checked: every stage's outputs, the ingest warning for a prompt
past CLIP's 77 tokens, and that nothing git tracks is rewritten except params.yaml (the profile applied)
and dvc.lock (DVC's record of the run).
"""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tasks.common.params import apply_profile
from tests.project_copy import copy_working_tree, run

OVERRIDE = {
    "ingest": {"height": 64, "width": 64, "n_frames": 8},
    "masks": {"sam_model_type": "tiny", "method": "fallback"},
    "train": {"steps": 2, "window": 4, "checkpoint_every": 1, "validation_steps": 2, "batch_size": 1},
    "generate": {"num_inference_steps": 2, "seeds": [0], "window": 4},
    "evaluate": {"sam_model_type": "tiny"},
}
PROMPT = "a person walks along a road"
MASKMOTION = ["python", "-m", "maskmotion.cli"]  # the `maskmotion` command, from the copy's code
LONG_PROMPT = " ".join(["a person in a red coat walks slowly along a quiet road at dusk"] * 7)


def write_videos(project: Path) -> None:
    """Three short videos and their manifest under data/raw/videos (the toy renderer, as any footage)."""
    from tasks.toyworld.stage import ToyWorldConfig, render_toyworld

    out = project / "data" / "raw" / "videos"
    render_toyworld(ToyWorldConfig(n_train=3, n_heldout=0, n_frames=8, size=64, out_dir=str(out)))
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    manifest["videos"][0]["prompt"] = LONG_PROMPT
    (out / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))


def write_sequences(project: Path) -> None:
    """The README's way: `maskmotion masks` draws a spec and lists it, with its prompt, in the manifest."""
    out = project / "data" / "sequences" / "sd14" / "walk"
    run([*MASKMOTION, "masks", "examples/two_objects.yaml", "--out", str(out), "--prompt", PROMPT], project)
    manifest = yaml.safe_load((out.parent / "manifest.yaml").read_text())
    assert manifest == {"sequences": [{"id": "walk", "masks": "walk", "prompt": PROMPT}]}


def tracked_changes(project: Path) -> list[str]:
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=project, capture_output=True, text=True
    )
    return sorted(line[3:] for line in status.stdout.splitlines())


@pytest.mark.slow
def test_sd14_world_end_to_end_on_download_lookalikes(tmp_path):
    project = copy_working_tree(tmp_path / "project")
    run([*MASKMOTION, "lookalike", "--out", "weights", "--size", "tiny", "--variants", "fp16"], project)
    sd = project / "weights" / "stable-diffusion-v1-4"
    assert not list(sd.glob("*/diffusion_pytorch_model.safetensors")) and (sd / "safety_checker").is_dir()
    write_videos(project)
    write_sequences(project)
    run([*MASKMOTION, "apply-profile", "profiles/sd14.yaml"], project)
    (project / "override.yaml").write_text(yaml.safe_dump(OVERRIDE))
    apply_profile(project / "params.yaml", project / "override.yaml")

    log = run(["dvc", "repro"], project, timeout=1500, HF_HUB_OFFLINE="1")

    # base: the weights check, not a training, in its own folder
    report = json.loads((project / "metrics" / "sd14" / "base.json").read_text())
    assert report["world"] == "sd14" and report["controlnet"] == "ControlNetModel"
    assert report["scheduler"].startswith("DDIMScheduler")
    # ingest: the long prompt named, with the words CLIP will not read
    clips = json.loads((project / "data" / "clips" / "report.json").read_text())
    assert list(clips["prompts_cut"]) == ["toy-000"] and clips["prompts_cut"]["toy-000"].endswith("at dusk")
    assert "toy-000: prompt has" in log and "the text encoder reads 77" in log
    # train: two steps on SD1.4's architecture, its validation GIF, metrics apart from the toy world's
    train = json.loads((project / "metrics" / "sd14" / "train.json").read_text())
    assert train["steps"] == 2 and train["steps_per_second"] > 0
    assert (project / "data" / "checkpoints" / "validation" / "step-000002.gif").is_file()
    config = json.loads((project / "data" / "checkpoints" / "ckpt-000002" / "config.json").read_text())
    assert config["base_dir"] == "weights/stable-diffusion-v1-4" and config["frame_size"] == [64, 64]
    # generate: the drawn sequence, at the masks' size, its frame 1 from the seg ControlNet
    video = project / "data" / "outputs" / "walk-s0"
    assert (video / "video.mp4").is_file() and (video / "sheet.png").is_file()
    assert config["controlnet_dir"] == "weights/sd-controlnet-seg" and config["controlnet_condition"]["kind"] == "seg"
    # docs/sd14.md's Python lines, from another folder, in a fresh process (as a user runs them; in a process that
    # trained, torch's CPU kernels may round a pixel level apart): the recorded base, ControlNet and condition,
    # the project's generate settings, the stage's video
    check = (
        "import numpy as np; from maskmotion import MaskMotionPipeline, read_masks; "
        f"pipe = MaskMotionPipeline.from_pretrained({str(project / 'data' / 'checkpoints')!r}); "
        f"video = pipe({PROMPT!r}, read_masks({str(video / 'masks')!r}), seed=0); "
        f"print('SAME', np.array_equal(video.frames, np.load({str(video / 'frames.npy')!r})))"
    )
    assert "SAME True" in run(["python", "-c", check], tmp_path, HF_HUB_OFFLINE="1")
    # evaluate: every metric, with the ViT-L-14-quickgelu lookalike and SAM
    metrics = json.loads((project / "metrics" / "sd14" / "eval.json").read_text())
    assert {"iou", "text_alignment", "consistency_adjacent", "consistency_all_pairs"} <= set(metrics)
    # nothing the toy world committed was touched: base/toy, metrics/*.json, the docs
    assert tracked_changes(project) == ["dvc.lock", "params.yaml"]
