"""Table I side by side (ours, LAMP-like, Tune-A-Video-like, Text2Video-Zero x2, ControlVideo): its own command.

python -m flows.compare            # or: make compare (after make demo)
"""

from flows.common import run_stage, table_flow
from tasks.compare import CompareConfig, run_compare

compare_flow = table_flow("compare", CompareConfig, run_compare, "Table I side by side (toy world)")


if __name__ == "__main__":
    run_stage(compare_flow)
