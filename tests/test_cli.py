"""The `maskmotion` command: every verb has help with an example; generate gives the generate stage's video."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from maskmotion.cli import VERBS, main
from tasks.generate.config import GenerateConfig
from tasks.generate.jobs import plan_jobs

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_the_command_lists_its_verbs(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(verb in out for verb in VERBS) and "maskmotion generate" in out
    assert main(["draw"]) == 2 and "unknown verb 'draw'" in capsys.readouterr().err


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_has_help_with_an_example(verb, capsys):
    with pytest.raises(SystemExit) as done:
        main([verb, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert f"maskmotion {verb}" in out and "example" in out


def stage_video_in_a_process_of_its_own(tiny_world: Path, tiny_run: Path, out: Path) -> tuple[dict, np.ndarray]:
    """``stage_video`` as the generate stage runs under make demo: in a fresh process. (In the process that
    trained the model, frames come out up to 1 level apart: torch's CPU kernels after a backward pass.)"""
    code = (
        "import json, sys; from pathlib import Path; from tests.test_maskmotion import stage_video; "
        f"row, _ = stage_video(Path({str(tiny_world)!r}), Path({str(tiny_run)!r}), Path({str(out)!r})); "
        "print(json.dumps(row))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout.strip().splitlines()[-1])
    return row, np.load(out / row["video_id"] / "frames.npy")


def test_generate_from_a_shell_gives_the_generate_stages_video(tiny_world, tiny_run, tmp_path):
    row, frames = stage_video_in_a_process_of_its_own(tiny_world, tiny_run, tmp_path / "outputs")
    command = [str(BIN / "maskmotion"), "generate", row["prompt"], "--masks", row["masks_dir"]]
    command += ["--model", str(tiny_run / "checkpoints"), "--seed", str(row["seed"]), "--steps", "4"]
    command += ["--out", "video", "--formats", "npy,mp4,gif,sheet"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.load(tmp_path / "video/frames.npy"), frames)
    assert {p.name for p in (tmp_path / "video").iterdir()} == {"frames.npy", "video.mp4", "video.gif", "sheet.png"}
    assert "generate" in done.stderr  # the progress bar


def test_masks_lists_each_sequence_in_the_manifest_generate_reads(tmp_path):
    sequences = tmp_path / "data/sequences"
    main(["masks", str(REPO / "examples/two_objects.yaml"), "--out", str(sequences / "two")])
    main(
        ["masks", str(REPO / "examples/two_prompts.yaml"), "--out", str(sequences / "prompts"), "--prompt", "a field"]
    )
    main(["masks", str(REPO / "examples/two_objects.yaml"), "--out", str(sequences / "two")])  # again: one row
    rows = yaml.safe_load((sequences / "manifest.yaml").read_text())["sequences"]
    assert [r["id"] for r in rows] == ["prompts", "two"] and rows[0]["prompt"] == "a field"
    jobs = plan_jobs(GenerateConfig(sequences=str(sequences), prompts=["a red star"], seeds=[0, 1]))
    assert len(jobs) == 4 and {Path(j.masks_dir).name for j in jobs} == {"two", "prompts"}
    assert all(len(list(Path(j.masks_dir).glob("*.png"))) == 16 for j in jobs)
    assert jobs[0].object_masks and all(Path(m).is_dir() for m in jobs[0].object_masks)


def test_apply_profile_merges_and_names_a_bad_key(tmp_path, capsys):
    params, profile = tmp_path / "params.yaml", tmp_path / "p.yaml"
    params.write_text("train:\n  steps: 300\n")
    profile.write_text("train:\n  steps: 4\n")
    assert main(["apply-profile", str(profile), "--params", str(params)]) == 0
    assert yaml.safe_load(params.read_text()) == {"train": {"steps": 4}}
    profile.write_text("train:\n  stepz: 4\n")
    assert main(["apply-profile", str(profile), "--params", str(params)]) == 2
    assert "train.stepz is not a key" in capsys.readouterr().err
