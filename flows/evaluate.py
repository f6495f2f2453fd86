"""Evaluate the generated videos; publish the metrics table as a Prefect artifact."""

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from flows.common import run_stage, stage_config
from tasks.evaluate import SUMMARY, EvaluateConfig, evaluate

evaluate_task = task(evaluate, name="evaluate-videos")


@flow(name="evaluate", log_prints=True)
def evaluate_flow(params_path: str = "params.yaml") -> dict:
    cfg = stage_config(EvaluateConfig, "evaluate", params_path)
    metrics = evaluate_task(cfg)
    rows = [{"video": vid, **{k: v[k] for k in SUMMARY}} for vid, v in metrics["videos"].items()]
    rows.append({"video": "mean", **{k: metrics[k] for k in SUMMARY}})
    create_table_artifact(key="eval-metrics", table=rows, description="Evaluation metrics per video")
    return metrics


if __name__ == "__main__":
    run_stage(evaluate_flow)
