"""Batch generation: one mapped Prefect task per (sequence x prompt x seed)."""

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from flows.common import publish_summary, run_stage, stage_config, task_runner_from_env
from tasks.generate import GenerateConfig, generate_one, plan_jobs, resolve_checkpoint, write_outputs_manifest

# The job key in each video's meta.json already skips finished work; Prefect's own cache would
# have to hash the config and checkpoint path, which says less than that key.
generate_video = task(generate_one, name="generate-video", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
                      # a bad sequence or prompt is not transient: never retry those
                      retry_condition_fn=lambda t, r, state: not isinstance(state.result(raise_on_failure=False),
                                                                            (ValueError, FileNotFoundError)))


@flow(name="generate", log_prints=True)
def generate_flow(params_path: str = "params.yaml", overrides: dict | None = None) -> list[dict]:
    cfg = stage_config(GenerateConfig, "generate", params_path)
    if overrides:
        cfg = GenerateConfig(**{**cfg.model_dump(), **overrides})
    checkpoint = resolve_checkpoint(cfg)
    jobs = plan_jobs(cfg)
    futures = generate_video.map(jobs, unmapped(cfg), unmapped(checkpoint))
    rows = [f.result() for f in futures]
    table = write_outputs_manifest(cfg, rows)
    publish_summary("generate-outputs", "Generated videos", {"videos": table["video_id"].tolist()})
    return rows


if __name__ == "__main__":  # the guard also keeps Dask's spawned workers from re-running the flow
    run_stage(generate_flow.with_options(task_runner=task_runner_from_env()))
