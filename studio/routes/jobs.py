"""The video queue: submit a checked page state, list the queue, follow or cancel one job."""

from __future__ import annotations

from fastapi import APIRouter

from studio.core import Studio
from studio.jobs import Busy
from studio.routes.refusals import refuse
from studio.runs import write_inputs
from studio.spec import Problems, problem


def router(studio: Studio) -> APIRouter:
    routes = APIRouter()

    @routes.post("/api/generate")
    def generate(body: dict):
        checked = studio.check(body, for_generate=True)
        if checked.errors:
            raise Problems(checked.errors)
        state = checked.state
        try:  # the run folder is written only once the queue has room: a refusal leaves nothing
            job = studio.generator.submit(lambda: write_inputs(studio.runs_dir, state, studio.uploads), state)
        except Busy as err:
            raise Problems([problem("generate", str(err))]) from None
        return {"job": job.id, "run": job.run, "queue": studio.generator.queue()}

    @routes.get("/api/jobs")
    def job_queue():
        return studio.generator.queue()

    @routes.get("/api/jobs/{job_id}")
    def job_status(job_id: str):
        job = studio.generator.jobs.get(job_id)
        if job is None:
            raise FileNotFoundError(f"no job {job_id[:20]}")
        return job.snapshot()

    @routes.post("/api/jobs/{job_id}/cancel")
    def job_cancel(job_id: str):
        job = studio.generator.cancel(job_id)
        if job is None:
            raise FileNotFoundError(f"no job {job_id[:20]}")
        if job.state in ("done", "failed"):
            ended = "finished" if job.state == "done" else "failed"
            return refuse(409, problem("generate", f"job {job.id} has already {ended}: nothing to cancel"))
        return job.snapshot()

    return routes
