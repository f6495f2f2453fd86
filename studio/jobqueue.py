"""The studio's job queue: videos run one after another on one worker thread, a few wait their turn
(``--max-queued``), any of them can be cancelled, and finished jobs stay readable by id.

A request the queue refuses writes nothing: the run folder is made under the queue's lock, only once
there is room. A cancelled job leaves nothing either: its run folder (inputs and any partial output)
is removed, so "Saved motions" lists only finished videos.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path

from studio.jobs import Busy, Cancelled, Job, job_config, segmenter
from studio.runs import score, video_folder, write_meta
from studio.spec import PageState
from tasks.evaluate.stage import EvaluateConfig
from tasks.generate.stage import GenerateConfig, resolve_checkpoint

log = logging.getLogger(__name__)
FINISHED = ("done", "failed", "cancelled")
KEEP_FINISHED = 50  # finished jobs kept readable by id; older ones are forgotten (their runs stay on disk)


class Generator:
    """A FIFO of jobs and the one thread that runs them."""

    def __init__(self, runner, generate_cfg: GenerateConfig, evaluate_cfg: EvaluateConfig, max_queued: int = 4):
        self.runner, self.generate_cfg, self.evaluate_cfg = runner, generate_cfg, evaluate_cfg
        self.max_queued = max_queued
        self.jobs: dict[str, Job] = {}
        self._waiting: deque[tuple[Job, Path, PageState]] = deque()
        self._running: Job | None = None
        self._lock = threading.Condition()
        self._worker: threading.Thread | None = None
        self._segmenter = None

    def warm_up(self) -> threading.Thread:
        """Load the model on a thread while the page opens (a Generate meanwhile waits for the same load)."""

        def load():
            try:
                self.runner.warm_up(self.generate_cfg)
            except Exception as err:  # the first Generate will meet and show the same error
                log.warning("studio: could not load the model ahead: %s", err)

        thread = threading.Thread(target=load, name="studio-warm-up", daemon=True)
        thread.start()
        return thread

    def busy(self) -> bool:
        with self._lock:
            return self._running is not None or bool(self._waiting)

    def submit(self, make_folder: Callable[[], Path], state: PageState) -> Job:
        """Queue a job; ``make_folder()`` writes its run folder, called only when the queue has room."""
        with self._lock:
            held = len(self._waiting) + (self._running is not None)
            if held >= self.max_queued:
                raise Busy(f"{held} videos are queued or generating, the most the studio holds (--max-queued)")
            folder = make_folder()
            job = Job(secrets.token_hex(8), folder.name, self.runner.mode)
            job.message = f"queued: {len(self._waiting) + (self._running is not None)} ahead"
            self.jobs[job.id] = job
            self._waiting.append((job, folder, state))
            self._forget_old()
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._drain, name="studio-jobs", daemon=True)
                self._worker.start()
            self._lock.notify()
        return job

    def queue(self) -> list[dict]:
        """What is running and what waits, in order."""
        with self._lock:
            held = ([self._running] if self._running else []) + [j for j, _, _ in self._waiting]
            return [{**j.snapshot(), "position": k} for k, j in enumerate(held)]

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a waiting job now, a running one at its next step; None when there is no such job."""
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job.state in FINISHED:
                return job
            job.cancel_requested = True
            for entry in list(self._waiting):
                if entry[0] is job:
                    self._waiting.remove(entry)
                    _discard(entry[1])
                    job.state, job.message = "cancelled", "cancelled before it started; nothing was kept"
                    return job
            job.state, job.message = "cancelling", "cancelling at the next denoising step"
            return job

    def _forget_old(self) -> None:
        finished = [k for k, j in self.jobs.items() if j.state in FINISHED]
        for k in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.jobs[k]

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._waiting:
                    self._worker = None
                    return
                job, folder, state = self._waiting.popleft()
                self._running = job
            try:
                self._work(job, folder, state)
            finally:
                with self._lock:
                    self._running = None

    def _work(self, job: Job, folder: Path, state: PageState) -> None:
        try:
            cfg = job_config(self.generate_cfg, folder, state)
            t0 = time.perf_counter()
            self.runner.run(job, cfg)
            generated_s = time.perf_counter() - t0
            job.check_cancelled()
            job.state, job.message = "scoring", "IoU of the result against the drawn masks"
            job.result = self._result(job, folder, state, cfg, generated_s)
            write_meta(folder, job.result)
            job.state, job.message = "done", f"done in {job.seconds:.1f} s"
        except Cancelled:
            _discard(folder)
            job.state, job.message = "cancelled", "cancelled; its run folder was removed (no partial output)"
        except Exception as err:  # any failure is the job's answer, shown on the page
            log.error("studio job %s failed:\n%s", job.id, traceback.format_exc())
            job.state, job.error, job.message = "failed", f"{type(err).__name__}: {err}", "failed"

    def _result(self, job: Job, folder: Path, state: PageState, cfg: GenerateConfig, generated_s: float) -> dict:
        if self._segmenter is None:
            self._segmenter = segmenter(self.evaluate_cfg)
        segment, segmenter_name = self._segmenter
        scores = score(folder, segment)
        video = video_folder(folder).relative_to(folder)
        job.seconds = round(time.time() - job.started, 2)
        return {
            "run": job.run,
            "prompt": state.prompt,
            "seed": state.seed,
            "steps": cfg.num_inference_steps,
            "checkpoint": resolve_checkpoint(cfg).name,
            "mode": job.mode,
            "video": f"{video}/video.mp4",
            **scores,
            "segmenter": segmenter_name,
            "seconds": {"generate": round(generated_s, 2), "total": job.seconds},
        }


def _discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
