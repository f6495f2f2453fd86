"""Ingest videos + manifest into fixed-size clips."""

from prefect import flow, task

from flows.common import publish_summary, run_stage, stage_config
from tasks.ingest.stage import IngestConfig, ingest

# Bad input is not transient: no retries here; a failure leaves the previous clips untouched.
ingest_task = task(ingest, name="ingest-videos")


@flow(name="ingest", log_prints=True)
def ingest_flow(params_path: str = "params.yaml") -> dict:
    cfg = stage_config(IngestConfig, "ingest", params_path)
    report = ingest_task(cfg)
    publish_summary("ingest-report", "Ingest report", report)
    return report


if __name__ == "__main__":
    run_stage(ingest_flow)
