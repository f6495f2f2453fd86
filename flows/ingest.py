"""Ingest videos + manifest into fixed-size clips."""

from prefect import flow, task

from flows.common import run_stage, run_summarised
from tasks.ingest.stage import IngestConfig, ingest

# Bad input is not transient: no retries here; a failure leaves the previous clips untouched.
ingest_task = task(ingest, name="ingest-videos")


@flow(name="ingest", log_prints=True)
def ingest_flow(params_path: str = "params.yaml") -> dict:
    return run_summarised(ingest_task, IngestConfig, "ingest", params_path, "ingest-report", "Ingest report")


if __name__ == "__main__":
    run_stage(ingest_flow)
