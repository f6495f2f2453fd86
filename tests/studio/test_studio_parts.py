"""The studio's parts that need no browser: the cut-out methods, the deployment route, the layout rule."""

from pathlib import Path

import numpy as np
import torch

from studio.cutout import Cutter
from studio.jobs import Deployment, Job, job_config
from studio.spec import parse_state
from tasks.generate.config import GenerateConfig
from tasks.masks.stage import MasksConfig
from tests.studio.conftest import REPO
from tests.test_layout import imported_modules


def test_a_click_cuts_the_toy_object_out_without_sam():
    from tasks.common.toy import render_object_mask

    rng = np.random.default_rng(0)
    frame = np.clip(rng.normal((70, 140, 55), 12, (64, 64, 3)), 0, 255).astype(np.uint8)  # a grassy ground
    truth = render_object_mask("star", 30, 34, 9, 64) >= 0.5
    frame[truth] = (245, 135, 20)
    cutter = Cutter(MasksConfig())
    assert "GrabCut" in cutter.describe()
    mask = cutter.cut(frame, 30, 34)
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9


def test_with_a_sam_checkpoint_the_click_prompts_sam(tmp_path):
    from tasks.segment.sam import build_tiny_sam

    torch.manual_seed(0)
    torch.save(build_tiny_sam().state_dict(), tmp_path / "sam.pt")
    cutter = Cutter(MasksConfig(sam_checkpoint=str(tmp_path / "sam.pt"), sam_model_type="tiny"))
    assert cutter.describe().startswith("SAM (tiny")
    mask = cutter.cut(np.zeros((32, 48, 3), np.uint8), 10, 12)
    assert mask.shape == (32, 48) and mask.dtype == bool  # untrained weights: only the plumbing is checked


def test_through_the_deployment_a_job_is_a_generate_batch_run_with_the_same_settings(tmp_path):
    state = parse_state(
        {
            "size": [64, 64],
            "n_frames": 16,
            "prompt": "a red circle",
            "seed": 4,
            "steps": 7,
            "objects": [
                {"mask": {"source": "toy", "shape": "circle"}, "path": {"type": "line", "start": [1, 1], "speed": 1}}
            ],
        }
    )
    cfg = job_config(GenerateConfig(shared_noise="paper"), tmp_path / "run", state)
    started, states = [], iter([("Scheduled", False, False, None), ("Running", False, False, None)])

    def start(name, parameters):
        started.append((name, parameters))
        return "id-1", "crimson-fox"

    def read_state(run_id):
        return next(states, ("Completed", True, True, None))

    job = Job("j", "run", "deployment")
    Deployment("generate/batch", poll_s=0, start=start, read_state=read_state).run(job, cfg)
    [(name, params)] = started
    assert name == "generate/batch"
    assert params["sequences"] == str((tmp_path / "run/sequences").resolve())
    assert params["out_dir"] == str((tmp_path / "run/outputs").resolve()) and params["seeds"] == [4]
    assert params["overrides"]["num_inference_steps"] == 7 and params["overrides"]["shared_noise"] == "paper"
    assert "prompts" not in params["overrides"] and "generate/batch flow run 'crimson-fox': Completed" == job.message

    failing = Deployment("generate/batch", poll_s=0, start=start, read_state=lambda _: ("Failed", True, False, "boom"))
    try:
        failing.run(Job("k", "run", "deployment"), cfg)
        raise AssertionError("a failed flow run must fail the job")
    except RuntimeError as err:
        assert "ended Failed: boom" in str(err)


def test_no_stage_flow_or_model_module_imports_the_studio():
    offending = [
        f"{path.relative_to(REPO)} imports {module}"
        for root in ("tasks", "model", "flows")
        for path in sorted((REPO / root).rglob("*.py"))
        for module in imported_modules(path)
        if module.split(".")[0] == "studio"
    ]
    assert not offending, "the studio is a client of the stages, never the other way:\n" + "\n".join(offending)
    assert Path(REPO / "studio/static/index.html").is_file()
