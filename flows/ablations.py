"""The ablation table (paper Table II + baselines): its own command, outside the main DAG.

python -m flows.ablations          # or: make ablations
"""

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from flows.common import run_stage, stage_config
from tasks.ablations import AblationsConfig, run_ablations

ablations_task = task(run_ablations, name="run-ablations")


@flow(name="ablations", log_prints=True)
def ablations_flow(params_path: str = "params.yaml") -> list[dict]:
    cfg = stage_config(AblationsConfig, "ablations", params_path)
    rows = ablations_task(cfg, params_path).to_dict(orient="records")
    create_table_artifact(key="ablations", table=rows, description="Ablations (toy world)")
    return rows


if __name__ == "__main__":
    run_stage(ablations_flow)
