"""The flows behind generate/batch and scheduled-evaluation/nightly, on stand-ins for the model.

The toy world's base models are not in this branch yet, so generation and scoring are stand-ins
here: a ``generate_one`` that writes a video folder, an ``evaluate`` that writes a report and
returns fixed metrics. What is tested is the flows' own work: parameters, output folders, the
history, skipping, artifacts, and that a failed run leaves nothing behind.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from prefect import task
from prefect.artifacts import Artifact

import flows.generate as generate_flows
import flows.scheduled_evaluation as evaluate_flows
from tasks.common.io import write_json, write_mask_pngs
from tasks.common.params import ConfigError
from tasks.evaluate.history import read_history
from tasks.evaluate.stage import SUMMARY


@pytest.fixture
def project(tmp_path):
    """A checkpoint, two held-out mask sequences and a params file pointing at them."""
    ckpt = tmp_path / "checkpoints" / "ckpt-000004"
    ckpt.mkdir(parents=True)
    (ckpt / "trainable.safetensors").write_bytes(b"weights v1")
    (ckpt / "config.json").write_text("{}")
    (tmp_path / "checkpoints" / "latest").write_text("ckpt-000004\n")
    masks = np.zeros((4, 16, 16), bool)
    masks[:, 4:8, 4:8] = True
    rows = []
    for sid in ("seq-a", "seq-b"):
        write_mask_pngs(masks, tmp_path / "heldout" / sid)
        rows.append({"id": sid, "prompt": f"a red star ({sid})", "masks": sid})
    (tmp_path / "heldout" / "manifest.yaml").write_text(yaml.safe_dump({"sequences": rows}))
    params = {
        "generate": {
            "checkpoint_dir": str(tmp_path / "checkpoints"),
            "out_dir": str(tmp_path / "outputs"),
            "sequences": str(tmp_path / "heldout" / "manifest.yaml"),
            "seeds": [0],
        },
        "evaluate": {
            "outputs_dir": str(tmp_path / "outputs"),
            "report_dir": str(tmp_path / "eval"),
            "metrics": str(tmp_path / "eval.json"),
            "frame_log": str(tmp_path / "frames.csv"),
        },
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def fake_generate_one(job, cfg, checkpoint, progress=None) -> dict:
    folder = Path(cfg.out_dir) / job.video_id
    folder.mkdir(parents=True)
    Image.new("RGB", (64, 16), "red").save(folder / "sheet.png")
    meta = {
        "video_id": job.video_id,
        "sequence": job.sequence,
        "prompt": job.prompt,
        "seed": job.seed,
        "checkpoint": checkpoint.name,
    }
    write_json(folder / "meta.json", meta)
    return meta


def fake_evaluate(cfg) -> dict:
    if getattr(fake_evaluate, "fail", False):
        raise ValueError("the segmenter found no object")
    import pandas as pd

    table = pd.read_csv(Path(cfg.outputs_dir) / "manifest.csv")
    report = Path(cfg.report_dir)
    (report / "thumbs").mkdir(parents=True)
    lines = ["# Evaluation", ""]
    for vid in table["video_id"]:
        Image.open(Path(cfg.outputs_dir) / vid / "sheet.png").save(report / "thumbs" / f"{vid}.png")
        lines += [f"### {vid}", "", f"![{vid}](thumbs/{vid}.png)", ""]
    (report / "report.md").write_text("\n".join(lines))
    scores = {k: 0.5 for k in SUMMARY}
    metrics = {**scores, "n_videos": len(table), "videos": {vid: scores for vid in table["video_id"]}}
    write_json(cfg.metrics, metrics)
    return metrics


@pytest.fixture
def stand_ins(monkeypatch):
    fast = {"retry_delay_seconds": 0}
    monkeypatch.setattr(
        generate_flows,
        "generate_video",
        task(fake_generate_one, name="generate-video", **{**generate_flows.VIDEO_TASK_OPTIONS, **fast}),
    )
    monkeypatch.setattr(
        evaluate_flows,
        "evaluate_task",
        task(fake_evaluate, name="evaluate-videos", **{**evaluate_flows.EVALUATE_TASK_OPTIONS, **fast}),
    )
    fake_evaluate.fail = False


def markdown_of(key: str) -> str:
    return Artifact.get(key).data


def test_batch_generation_from_parameters(project, stand_ins, prefect_harness):
    rows = generate_flows.generate_flow(
        params_path=str(project / "params.yaml"),
        prompts=["a red star", "a blue disc"],
        seeds=[0, 1],
        out_dir=str(project / "batches" / "{run}"),
    )
    assert [r["video_id"] for r in rows] == [f"seq-{s}-p{p}-s{seed}" for s in "ab" for p in (0, 1) for seed in (0, 1)]
    (batch,) = (project / "batches").iterdir()
    assert re.fullmatch(r"\d{8}T\d{6}Z-[a-z]+-[a-z]+", batch.name)  # UTC time, then the run's name
    assert sorted(p.name for p in batch.iterdir()) == sorted(["manifest.csv", *(r["video_id"] for r in rows)])
    assert not (project / "outputs").exists()  # the DVC stage's folder is left alone
    links = markdown_of("generate-outputs")
    assert (batch / "seq-b-p1-s1" / "video.mp4").as_uri() in links


def test_batch_generation_refuses_a_misspelt_setting(project, stand_ins, prefect_harness):
    with pytest.raises(ConfigError, match="generate.num_inference_stpes"):
        generate_flows.generate_flow(params_path=str(project / "params.yaml"), overrides={"num_inference_stpes": 5})


def test_scheduled_evaluation_history_skip_and_failure(project, stand_ins, prefect_harness):
    params, root = str(project / "params.yaml"), project / "scheduled"
    first = evaluate_flows.scheduled_evaluation_flow(params_path=params, root=str(root))
    assert not first["skipped"] and first["iou"] == 0.5
    run = root / first["run"]
    assert (run / "metrics.json").is_file() and (run / "eval" / "report.md").is_file()
    assert (run / "outputs" / "manifest.csv").is_file()
    assert not (project / "outputs").exists() and not (project / "eval.json").exists()  # DVC outputs untouched
    history = read_history(root / "history.parquet")
    assert history["run"].tolist() == [first["run"]] and history["checkpoint"].tolist() == ["ckpt-000004"]
    assert history["n_videos"].tolist() == [2] and history["folder"].tolist() == [str(run)]
    assert "data:image/png;base64," in markdown_of("eval-report")
    assert json.loads(markdown_of("eval-history"))[0]["run"] == first["run"]

    # the same checkpoint, sequences and settings: nothing to do
    again = evaluate_flows.scheduled_evaluation_flow(params_path=params, root=str(root))
    assert again == {"skipped": True, "key": first["key"], "run": first["run"]}
    # new weights: evaluated again, one more row
    (project / "checkpoints" / "ckpt-000004" / "trainable.safetensors").write_bytes(b"weights v2")
    second = evaluate_flows.scheduled_evaluation_flow(params_path=params, root=str(root))
    assert not second["skipped"] and second["key"] != first["key"]
    assert read_history(root / "history.parquet")["run"].tolist() == [first["run"], second["run"]]

    # a run that fails half way leaves no folder, no temp folder and no history row
    fake_evaluate.fail = True
    before = sorted(p.name for p in root.iterdir())
    with pytest.raises(ValueError, match="no object"):
        evaluate_flows.scheduled_evaluation_flow(params_path=params, root=str(root), skip_unchanged=False)
    assert sorted(p.name for p in root.iterdir()) == before
    assert len(read_history(root / "history.parquet")) == 2


def test_scheduled_evaluation_needs_a_checkpoint(project, stand_ins, prefect_harness):
    (project / "checkpoints" / "latest").unlink()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        evaluate_flows.scheduled_evaluation_flow(
            params_path=str(project / "params.yaml"), root=str(project / "scheduled")
        )


@pytest.mark.slow
def test_scheduled_evaluation_with_real_generation(tiny_world, tiny_run, tmp_path, monkeypatch, prefect_harness):
    """Real videos from the tiny world's checkpoint, written into the run's temp folder, then renamed;
    the scoring is still a stand-in (the toy CLIP comes with the base models)."""
    from tests.tiny_world import tiny_generate_config

    monkeypatch.setattr(evaluate_flows, "evaluate_task", task(fake_evaluate, name="evaluate-videos"))
    fake_evaluate.fail = False
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump({"generate": tiny_generate_config(tiny_world, tiny_run, seeds=[0, 1]).model_dump()})
    )
    result = evaluate_flows.scheduled_evaluation_flow(params_path=str(params), root=str(tmp_path / "scheduled"))
    outputs = tmp_path / "scheduled" / result["run"] / "outputs"
    for vid in ("heldout-000-s0", "heldout-000-s1"):
        assert np.load(outputs / vid / "frames.npy").shape == (6, 32, 32, 3)
        assert json.loads((outputs / vid / "meta.json").read_text())["video"] == f"{vid}/video.mp4"
    assert {p.name for p in (tmp_path / "scheduled").iterdir()} == {
        ".history.parquet.lock",
        "history.parquet",
        result["run"],
    }  # no temp folder left
