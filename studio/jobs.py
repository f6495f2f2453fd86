"""Generating a drawn motion: one job at a time, its progress polled by the page.

In-process (the default) a job runs the generate loop (``tasks.generate.stage.generate``) over the
run's sequences manifest, with ``generate_one`` reporting every denoising step (chunk k of n, step i
of m). It does not start the generate *flow*: Prefect's temporary server would add its start-up
(10-20 s on two cores) to every video and a flow's parameters cannot carry a progress callback.
With ``PREFECT_API_URL`` set, a job is a run of the ``generate/batch`` deployment with the same
parameters, so it queues with the other GPU work on the work pool; its progress is the flow run's
state. Either way the run folder ends up the same (``studio.runs``), then scored: IoU of the result
against the drawn masks, with the evaluate stage's segmenter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from studio.spec import PageState
from tasks.common.params import validate_config
from tasks.evaluate.stage import EvaluateConfig
from tasks.generate.stage import GenerateConfig, generate, generate_one, load_pipeline, resolve_checkpoint

log = logging.getLogger(__name__)


class Busy(RuntimeError):
    """The queue is full (one model, two cores: jobs run one after another, and only so many wait)."""


class Cancelled(RuntimeError):
    """A job cancelled from the page or the API, raised at its next denoising step."""


@dataclass
class Job:
    id: str
    run: str
    mode: str
    # queued | loading | frame 1 | denoising | writing | scoring | done | failed | cancelling | cancelled
    state: str = "queued"
    message: str = "waiting to start"
    chunk: int = 0
    num_chunks: int = 0
    step: int = 0
    num_steps: int = 0
    started: float = field(default_factory=time.time)
    seconds: float | None = None
    result: dict | None = None
    error: str | None = None
    cancel_requested: bool = False

    def snapshot(self) -> dict:
        return asdict(self)

    def check_cancelled(self) -> None:
        if self.cancel_requested:
            raise Cancelled("cancelled")


def job_config(base: GenerateConfig, folder: Path, state: PageState) -> GenerateConfig:
    """The generate settings of one studio video: the run's manifest, its seed and steps, its first frame."""
    source = base.first_frame_source if base.first_frame_source != "manifest" else "controlnet"
    changes = {
        "sequences": str((folder / "sequences").resolve()),
        "out_dir": str((folder / "outputs").resolve()),
        "prompts": None,
        "seeds": [state.seed],
        "first_frame_source": "manifest" if state.first_frame.source == "image" else source,
    }
    if state.steps:
        changes["num_inference_steps"] = state.steps
    return validate_config(GenerateConfig, {**base.model_dump(), **changes}, "generate")


def segmenter(cfg: EvaluateConfig) -> tuple[Callable, str]:
    """The evaluate stage's segmenter of generated frames, and its name for the page."""
    from tasks.evaluate.stage import sam_segmenter, toy_segmenter

    if cfg.segmenter == "toy":
        return toy_segmenter(cfg.min_object_pixels), "toy palette segmenter (evaluate.segmenter: toy)"
    return sam_segmenter(cfg.sam_checkpoint, cfg.sam_model_type), f"SAM {cfg.sam_model_type} (evaluate.segmenter: sam)"


class InProcess:
    """Runs the generate loop in this process, reporting each denoising step to the job."""

    mode = "in-process"

    def warm_up(self, cfg: GenerateConfig) -> None:
        """Load the model now (generate's cache keeps it), so the first Generate does not wait for it."""
        load_pipeline(resolve_checkpoint(cfg), cfg)

    def run(self, job: Job, cfg: GenerateConfig) -> None:
        def progress(info: dict) -> None:
            job.check_cancelled()  # the only place a running generate loop can stop: between two steps
            job.state, job.chunk, job.num_chunks = "denoising", info["chunk"], info["num_chunks"]
            job.step, job.num_steps = info["step"] + 1, info["num_steps"]
            job.message = f"chunk {job.chunk + 1} of {job.num_chunks}: denoising step {job.step} of {job.num_steps}"
            if job.chunk + 1 == job.num_chunks and job.step == job.num_steps:
                job.state, job.message = "writing", "decoding the frames, writing video.mp4, video.gif, sheet.png"

        def run_jobs(jobs, cfg, checkpoint):
            job.state, job.message = "loading", f"loading {checkpoint.name}"
            load_pipeline(checkpoint, cfg)  # cached after the first time
            job.check_cancelled()
            job.state = "frame 1"
            job.message = (
                "frame 1 from the ControlNet (eq. 3)" if cfg.first_frame_source == "controlnet" else "frame 1"
            )
            return [generate_one(j, cfg, checkpoint, progress=progress) for j in jobs]

        generate(cfg, run_jobs=run_jobs)


class Deployment:
    """Runs ``generate/batch`` on the Prefect server at ``PREFECT_API_URL`` and follows its state."""

    mode = "deployment"

    def __init__(self, name: str, poll_s: float = 2.0, start=None, read_state=None, cancel=None):
        self.name, self.poll_s = name, poll_s
        self._start, self._read_state = start or _run_deployment, read_state or _flow_run_state
        self._cancel = cancel or _cancel_flow_run

    def warm_up(self, cfg: GenerateConfig) -> None:
        pass  # the worker loads the model

    def parameters(self, cfg: GenerateConfig) -> dict:
        named = ("prompts", "sequences", "seeds", "out_dir")
        # every other setting travels too, so the worker generates what this page was set up with (a profile)
        overrides = {k: v for k, v in cfg.model_dump().items() if k not in named}
        return {"sequences": cfg.sequences, "seeds": cfg.seeds, "out_dir": cfg.out_dir, "overrides": overrides}

    def run(self, job: Job, cfg: GenerateConfig) -> None:
        run_id, run_name = self._start(self.name, self.parameters(cfg))
        job.state, cancelling = "queued", False
        while True:
            state_name, final, completed, message = self._read_state(run_id)
            job.message = f"{self.name} flow run '{run_name}': {state_name}"
            if state_name == "Running":
                job.state = "denoising"
            if job.cancel_requested and not cancelling:
                self._cancel(run_id)  # the worker stops the flow run; once it has, the run folder is removed
                cancelling = True
            if final:
                job.check_cancelled()
                if not completed:
                    raise RuntimeError(f"flow run '{run_name}' ended {state_name}: {message or 'no message'}")
                return
            time.sleep(self.poll_s)


def _run_deployment(name: str, parameters: dict) -> tuple[str, str]:
    from prefect.deployments import run_deployment

    flow_run = run_deployment(name=name, parameters=parameters, timeout=0)  # 0: return once it is queued
    return str(flow_run.id), flow_run.name


def _cancel_flow_run(run_id: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Cancelling(message="cancelled in the studio"), force=True)


def _flow_run_state(run_id: str) -> tuple[str, bool, bool, str | None]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    return state.name, state.is_final(), state.is_completed(), state.message
