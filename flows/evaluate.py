"""Evaluate: the DVC stage; scores ``data/outputs`` into ``data/eval`` and ``metrics/``.

The nightly evaluation of the latest checkpoint is its own flow: flows/scheduled_evaluation.py.
"""

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.artifacts import publish_report
from flows.common import run_stage, stage_config, timeout_from_env, transient_retries
from tasks.evaluate.stage import SUMMARY, EvaluateConfig, evaluate

# Scoring is CLIP on every frame plus a segmenter: minutes for the toy world's held-out set on a CPU,
# longer with SAM on real videos; an hour means something hangs (MASKMOTION_EVAL_TIMEOUT_S, 0: none).
EVALUATE_TASK_OPTIONS = dict(
    cache_policy=NO_CACHE,
    timeout_seconds=timeout_from_env("MASKMOTION_EVAL_TIMEOUT_S", 3600),
    **transient_retries(retries=2, first_delay_s=10),
)
evaluate_task = task(evaluate, name="evaluate-videos", **EVALUATE_TASK_OPTIONS)


def publish_metrics(metrics: dict, key: str = "eval-metrics") -> None:
    rows = [{"video": vid, **{k: v[k] for k in SUMMARY}} for vid, v in metrics["videos"].items()]
    rows.append({"video": "mean", **{k: metrics[k] for k in SUMMARY}})
    create_table_artifact(key=key, table=rows, description="Evaluation metrics per video")


@flow(name="evaluate", log_prints=True)
def evaluate_flow(params_path: str = "params.yaml") -> dict:
    cfg = stage_config(EvaluateConfig, "evaluate", params_path)
    metrics = evaluate_task(cfg)
    publish_metrics(metrics)
    publish_report(Path(cfg.report_dir) / "report.md")
    return metrics


if __name__ == "__main__":
    run_stage(evaluate_flow)
