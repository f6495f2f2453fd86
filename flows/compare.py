"""Table I side by side (ours, LAMP-like, Tune-A-Video-like, Text2Video-Zero x2, ControlVideo): its own command.

python -m flows.compare            # or: make compare (after make demo)
"""

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from flows.common import run_stage, stage_config
from tasks.compare import CompareConfig, run_compare

compare_task = task(run_compare, name="run-compare")


@flow(name="compare", log_prints=True)
def compare_flow(params_path: str = "params.yaml") -> list[dict]:
    cfg = stage_config(CompareConfig, "compare", params_path)
    rows = compare_task(cfg, params_path).to_dict(orient="records")
    create_table_artifact(key="compare", table=rows, description="Table I side by side (toy world)")
    return rows


if __name__ == "__main__":
    run_stage(compare_flow)
