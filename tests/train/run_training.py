"""Run the train stage in a child process for the kill tests.

    python -m tests.train.run_training config.json [--die-in-checkpoint N]

Prints ``step N`` after every optimizer step (the parent kills it at a step it picks).
With ``--die-in-checkpoint N`` the process SIGKILLs itself in the middle of writing the N-th
checkpoint: after the weights file, before the state file — a real kill, not an exception.
"""

import argparse
import json
import os
import signal
import sys

import torch

import tasks.contract
from tasks.train.config import TrainConfig
from tasks.train.stage import train

torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--die-in-checkpoint", type=int, default=0)
    args = parser.parse_args()
    cfg = TrainConfig(**json.loads(open(args.config).read()))
    if args.die_in_checkpoint:
        real_save, calls = torch.save, {"n": 0}

        def dying_save(obj, path, *a, **kw):
            calls["n"] += 1
            if calls["n"] == args.die_in_checkpoint:
                with open(path, "wb") as f:
                    f.write(b"half a state file")
                os.kill(os.getpid(), signal.SIGKILL)
            return real_save(obj, path, *a, **kw)

        tasks.contract.torch.save = dying_save
    train(cfg, progress=lambda step, total, loss: print(f"step {step}", flush=True))
    sys.exit(0)


if __name__ == "__main__":
    main()
