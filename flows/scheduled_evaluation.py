"""The scheduled evaluation of the latest checkpoint (the ``scheduled-evaluation/nightly`` deployment).

It generates the held-out sequences with the latest checkpoint and scores them into a folder of its own,
``<root>/<UTC time>-<run name>/`` (``outputs/``, ``eval/``, ``metrics.json``), built under a temp
name and renamed when complete, so a failed run leaves nothing half-written and never touches the
DVC-tracked outputs. Then it appends one row to ``<root>/history.parquet`` (tasks/evaluate/history.py).
"""

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.artifacts import publish_output_links, publish_report
from flows.common import run_label, stage_config, task_runner_from_env, transient_retries
from flows.evaluate import EVALUATE_TASK_OPTIONS, evaluate_task, publish_metrics  # noqa: F401 (tests patch them here)
from flows.generate import generate_videos
from tasks.common.io import atomic_dir, mask_png_paths
from tasks.common.params import validate_config
from tasks.evaluate.history import append_history, inputs_key, read_history, table_rows
from tasks.evaluate.stage import SUMMARY, EvaluateConfig
from tasks.generate.config import SAMPLER_FIELDS, GenerateConfig
from tasks.generate.jobs import plan_jobs, sequences_manifest
from tasks.generate.stage import resolve_checkpoint

append_history_task = task(
    append_history, name="append-history", cache_policy=NO_CACHE, **transient_retries(retries=2, first_delay_s=2)
)

# The settings that change what an evaluation measures; paths are left out (each run has its own).
GENERATE_KEY_FIELDS = SAMPLER_FIELDS | {"prompts", "seeds", "fps"}
EVALUATE_KEY_FIELDS = {
    "clip_weights",
    "clip_model",
    "segmenter",
    "sam_checkpoint",
    "sam_model_type",
    "min_object_pixels",
}


def evaluation_key(gen_cfg: GenerateConfig, eval_cfg: EvaluateConfig, checkpoint: Path, jobs) -> str:
    """What a scheduled evaluation measures: the checkpoint's files, the sequences' masks, the settings."""
    files = [checkpoint / "trainable.safetensors", checkpoint / "config.json", sequences_manifest(gen_cfg.sequences)]
    for masks_dir in sorted({job.masks_dir for job in jobs}):
        files += mask_png_paths(masks_dir)
    return inputs_key(
        files,
        {
            "generate": gen_cfg.model_dump(include=GENERATE_KEY_FIELDS),
            "evaluate": eval_cfg.model_dump(include=EVALUATE_KEY_FIELDS),
        },
    )


def publish_history(table, key: str = "eval-history") -> None:
    create_table_artifact(key=key, table=table_rows(table), description="Scheduled evaluations, newest first")


@flow(name="scheduled-evaluation", log_prints=True, task_runner=task_runner_from_env())
def scheduled_evaluation_flow(
    params_path: str = "params.yaml",
    root: str = "data/scheduled",
    sequences: str | None = None,
    seeds: list[int] | None = None,
    skip_unchanged: bool = True,
) -> dict:
    """Generate the held-out sequences with the latest checkpoint, score them, add a history row.

    Args:
        params_path: the params file; its `generate` and `evaluate` sections give the settings.
        root: runs go to `<root>/<UTC time>-<run name>/`, the history to `<root>/history.parquet`.
        sequences: a sequences manifest; none: params' `generate.sequences` (the held-out set).
        seeds: none: params' `generate.seeds`.
        skip_unchanged: do nothing when the history already has a run with the same checkpoint,
            sequences and settings (the numbers would be the same).
    """
    logger = get_run_logger()
    gen_raw = stage_config(GenerateConfig, "generate", params_path).model_dump()
    gen_raw.update({k: v for k, v in {"sequences": sequences, "seeds": seeds}.items() if v is not None})
    gen_cfg = validate_config(GenerateConfig, gen_raw, "generate")
    eval_cfg = stage_config(EvaluateConfig, "evaluate", params_path)
    checkpoint = resolve_checkpoint(gen_cfg)
    jobs = plan_jobs(gen_cfg)
    key = evaluation_key(gen_cfg, eval_cfg, checkpoint, jobs)
    history_path = Path(root) / "history.parquet"
    history = read_history(history_path)
    if skip_unchanged and not history.empty and key in set(history["key"]):
        done = history[history["key"] == key].iloc[-1]
        logger.info(
            "checkpoint %s with these sequences and settings was evaluated in run %s: skipped "
            "(skip_unchanged=false evaluates again)",
            checkpoint.name,
            done["run"],
        )
        publish_history(history)
        return {"skipped": True, "key": key, "run": done["run"]}

    started = datetime.now(UTC)
    run = run_label(started)
    final = Path(root) / run
    logger.info("evaluating checkpoint %s on %d video(s) into %s", checkpoint.name, len(jobs), final)
    with atomic_dir(final) as tmp:
        gen_cfg_run = gen_cfg.model_copy(update={"out_dir": str(tmp / "outputs")})
        rows = generate_videos(gen_cfg_run, jobs)
        metrics = evaluate_task(
            eval_cfg.model_copy(
                update={
                    "outputs_dir": str(tmp / "outputs"),
                    "report_dir": str(tmp / "eval"),
                    "metrics": str(tmp / "metrics.json"),
                    "frame_log": str(tmp / "eval_frames.csv"),
                }
            )
        )
    publish_output_links(rows, final / "outputs")
    publish_metrics(metrics)
    publish_report(final / "eval" / "report.md")
    row = {
        "time": started,
        "run": run,
        "folder": str(final),
        "flow_run_id": flow_run.get_id(),
        "checkpoint": checkpoint.name,
        "key": key,
        "n_videos": metrics["n_videos"],
        **{k: metrics[k] for k in SUMMARY},
    }
    history = append_history_task(history_path, row)
    publish_history(history)
    return {"skipped": False, "key": key, "run": run, **{k: metrics[k] for k in SUMMARY}}
