"""The DVC pipeline on a copy of this working tree: the whole DAG, a no-op second repro, push, pull."""

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tasks.common.params import apply_profile
from tests.project_copy import QUERY_STAGE_RUNS, copy_working_tree, run


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


STAGES = ["toyworld", "ingest", "masks", "train", "generate", "evaluate"]
PIPELINE_RUN = """
from flows.pipeline import pipeline_flow
state = pipeline_flow(return_state=True)
print("PIPELINE-RUN-ID", state.state_details.flow_run_id)
print(state.result())
"""
OUTPUTS = ["data/raw/toy", "data/clips", "data/masks", "data/checkpoints", "data/outputs", "data/eval"]


def check_ablations(project: Path, eval_metrics: dict) -> None:
    """`make ablations` on two variants: "full" reads the train stage's finished checkpoint (and so
    scores what the main job scored), "w/o mask" trains its own weights; `dvc metrics show` prints
    the table."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["ablations"]["variants"] = ["full", "w/o mask"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["python", "-m", "flows.ablations"], project)
    table = json.loads((project / "metrics" / "ablations.json").read_text())
    assert list(table) == ["full", "w/o mask"]
    # same checkpoint, seed and settings as the generate stage; worker threads may move a pixel level
    assert table["full"]["iou"] == pytest.approx(eval_metrics["iou"], abs=0.02)
    weights = project / "data" / "ablations" / "weights"
    assert not (weights / "full").exists() and (weights / "no-mask" / "checkpoints" / "latest").is_file()
    assert "w/o mask" in (project / "data" / "ablations" / "table.md").read_text()
    shown = run(["dvc", "metrics", "show"], project)
    assert "metrics/ablations.json" in shown and "w/o mask" in shown


def check_readme_blocks(project: Path) -> None:
    """Every README command block that runs on a CPU, as written (scripts/readme_blocks.py), after the DAG;
    then the README's generate/batch parameters find the manifest `maskmotion masks` wrote."""
    out = run(["python", "scripts/readme_blocks.py"], project, timeout=1800)
    assert out.count(": ran") == 3 and "failed" not in out, out  # the Python example and two shell blocks
    assert (project / "my-video" / "video.mp4").is_file() and (project / "my-model" / "config.json").is_file()
    from tasks.generate.config import GenerateConfig
    from tasks.generate.jobs import plan_jobs

    jobs = plan_jobs(GenerateConfig(sequences=str(project / "data/sequences"), prompts=["a red star"], seeds=[0, 1]))
    assert [job.sequence for job in jobs] == ["two", "two"]


@pytest.mark.slow
def test_whole_dag_on_the_ci_profile_then_push_and_pull(tmp_path):
    """The README's main job on the ci profile: every stage runs, a second repro does nothing,
    and `dvc push` / `dvc pull` carry every output into a fresh clone."""
    project, remote, clone = tmp_path / "project", tmp_path / "remote", tmp_path / "clone"
    copy_working_tree(project)
    apply_profile(project / "params.yaml", project / "profiles" / "ci.yaml")

    # through the pipeline flow (what `pipeline/default` runs): dvc repro, each stage a flow run of its own
    out = run(["python", "-c", PIPELINE_RUN], project)
    for stage in STAGES:
        assert f"Running stage '{stage}'" in out, stage
    pipeline_id = out.split("PIPELINE-RUN-ID ")[1].split()[0]
    tagged = run(["python", "-c", QUERY_STAGE_RUNS, f"pipeline:{pipeline_id}"], project)
    found = json.loads(next(line for line in reversed(tagged.splitlines()) if line.startswith("{")))
    assert found == dict.fromkeys(STAGES, "COMPLETED")  # every stage's flow run carries the pipeline tag
    assert "Running stage 'base'" not in out  # the shipped base models are up to date
    metrics = json.loads((project / "metrics" / "eval.json").read_text())
    assert metrics["n_videos"] == 1 and 0.0 <= metrics["iou"] <= 1.0
    assert (project / "data" / "outputs" / "heldout-000-s0" / "video.mp4").stat().st_size > 0

    again = run(["dvc", "repro"], project)
    assert "Running stage" not in again, again

    check_ablations(project, metrics)
    check_readme_blocks(project)

    run(["dvc", "remote", "add", "-f", "-d", "--local", "test", str(remote)], project)
    run(["dvc", "push"], project)
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "lock"], project)

    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    assert not (clone / "data" / "clips").exists()
    run(["dvc", "remote", "add", "-f", "-d", "--local", "test", str(remote)], clone)
    run(["dvc", "pull"], clone)
    for folder in OUTPUTS:
        assert tree_digest(clone / folder) == tree_digest(project / folder), folder
    assert "up to date" in run(["dvc", "status"], clone)
