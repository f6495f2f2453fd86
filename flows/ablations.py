"""The ablation table (paper Table II + baselines): its own command, outside the main DAG.

python -m flows.ablations          # or: make ablations
"""

from flows.common import run_stage, table_flow
from tasks.ablations import AblationsConfig, run_ablations

ablations_flow = table_flow("ablations", AblationsConfig, run_ablations, "Ablations (toy world)")


if __name__ == "__main__":
    run_stage(ablations_flow)
