"""The Table I harness on the tiny world: every system's videos, the evaluation, the table, the sheets, the costs."""

import json
from pathlib import Path

import pytest
import yaml

from tasks.compare import CompareConfig, run_compare
from tests.tiny_world import tiny_generate_config, tiny_train_config

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_harness_runs_ours_and_every_training_free_peer_side_by_side(tiny_world, tiny_run, tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["toyworld"].update(size=32, heldout_frames=6, n_heldout=1)
    # ours = the tiny run's finished checkpoint (the train section is that run's); the peers use its base
    params["train"] = tiny_train_config(tiny_world, tiny_run, steps=4, checkpoint_every=4).model_dump()
    params["generate"] = tiny_generate_config(tiny_world, tiny_run, num_inference_steps=4).model_dump()
    params["evaluate"]["clip_weights"] = str(REPO / "base" / "toy" / "clip")
    params["ablations"]["out_dir"] = str(tmp_path / "ablations")
    systems = ["ours", "Text2Video-Zero", "Text2Video-Zero + ControlNet", "ControlVideo"]
    params["compare"].update(systems=systems, seeds=[0], out_dir=str(tmp_path / "compare"))
    params["compare"]["metrics"] = str(tmp_path / "compare.json")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))

    table = run_compare(CompareConfig(**params["compare"]), str(path))

    assert list(table["system"].unique()) == systems and set(table["set"]) == {"held-out", "unseen"}
    assert (table["n_videos"] >= 1).all() and (table["n_generated"] == table["n_videos"]).all()
    assert (table["seconds_per_video"] > 0).all() and (table["peak_memory_mb"] > 100).all()
    assert table[["text_alignment", "consistency_adjacent", "iou", "centroid_error_px"]].notna().all().all()
    text = (tmp_path / "compare" / "table.md").read_text()
    assert all(f"| {s} |" in text for s in systems) and "| 97.4 | 33.0 |" in text  # the paper's row for ours
    sheets = sorted(p.name for p in (tmp_path / "compare" / "sheets").iterdir())
    assert sheets == ["held-out-heldout-000.png", "unseen-heldout-000.png"]
    metrics = json.loads((tmp_path / "compare.json").read_text())
    assert "ControlVideo | unseen" in metrics and metrics["ours | held-out"]["n_videos"] == 1
    assert not (tmp_path / "ablations" / "weights").exists()  # ours reused the train stage's checkpoint
    # run again over the videos of the first run: every video is generated and timed again, none kept
    again = run_compare(CompareConfig(**params["compare"]), str(path))
    assert (again["seconds_per_video"] > 0).all() and (again["n_generated"] == again["n_videos"]).all()
