"""How OpenMP's waiting and the thread a video runs on change the generate stage's seconds.

    HF_HUB_OFFLINE=1 python bench/speed/omp_threads.py                 # after make demo; ~10 min on 2 cores
    HF_HUB_OFFLINE=1 python bench/speed/omp_threads.py --cases flow:passive flow:default --beside

torch's CPU kernels run on OpenMP (libgomp). How an idle OpenMP thread waits is set once per process,
before torch loads: it spins for a while (``GOMP_SPINCOUNT`` iterations; 300,000 when nothing is set), or
sleeps at once (``OMP_WAIT_POLICY=PASSIVE``). And every OS thread that runs a parallel region gets a team
of its own; when the process holds more OpenMP threads than it has CPUs, libgomp cuts every team's spin
to a few hundred iterations. A Prefect flow runs its mapped tasks on a worker thread, beside the flow's
main thread.

Each case is a fresh process (the environment must be set before torch loads) that generates the first
held-out sequences of ``params.yaml`` at ``--seeds`` (0: four videos; the train stage's latest checkpoint) into a
temporary folder and reports each video's sampling seconds (the generate stage's own ``pipe()`` timer,
read from its log). A case is ``WHERE:WAIT``: WHERE is ``main`` (the stage called on the main thread),
``worker`` (on a new thread, after one parallel torch op on the main thread, as a flow that touches torch
before mapping its tasks), ``worker-only`` (on a new thread, the main thread never touching torch) or
``flow`` (``flows.generate``'s flow, Prefect's thread pool, an ephemeral server); WAIT is ``default``
(libgomp's), ``passive``, ``project`` (whatever ``flows/__init__.py`` sets) or ``spin=N``.
``--beside`` runs a 2-thread torch loop in another process throughout (a shared machine).

Appends one record per run to ``omp_threads_results.jsonl`` and rewrites ``omp_threads_results.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).parent
RESULTS = HERE / "omp_threads_results.jsonl"
TIMER = re.compile(r": (\d+) frames in ([\d.]+) s")
OMP_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
DEFAULT_CASES = ["main:default", "main:passive", "worker:default", "worker-only:default", "flow:project"]


def apply_wait(wait: str) -> None:
    """Set this process's OpenMP waiting to ``wait``; before torch loads (libgomp reads it once, at load)."""
    import flows  # noqa: F401  the project's environment defaults, as every `python -m flows.<stage>` has them

    if wait == "project":
        return
    for key in OMP_KEYS:
        os.environ.pop(key, None)
    if wait == "passive":
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    elif wait.startswith("spin="):
        os.environ["GOMP_SPINCOUNT"] = wait.split("=", 1)[1]
    elif wait != "default":
        raise SystemExit(f"unknown wait '{wait}': default, passive, project or spin=N")


def child(where: str, wait: str, seeds: list[int], out_dir: str) -> None:
    """In the case's process: generate the videos, print each one's seconds as one JSON line."""
    apply_wait(wait)
    import logging
    import threading

    seconds: list[float] = []

    class Timer(logging.Handler):
        def emit(self, record):
            found = TIMER.search(record.getMessage())
            if found:
                seconds.append(float(found.group(2)))

    logging.getLogger("tasks.generate.stage").addHandler(Timer())
    logging.getLogger("tasks.generate.stage").setLevel(logging.INFO)
    if where == "flow":
        from flows.generate import generate_flow

        generate_flow(seeds=seeds, out_dir=out_dir)
        print(json.dumps({"seconds": seconds}))
        return
    import torch

    from tasks.common.params import load_stage_config
    from tasks.generate.config import GenerateConfig
    from tasks.generate.jobs import plan_jobs
    from tasks.generate.stage import generate

    cfg = load_stage_config(GenerateConfig, "generate", str(ROOT / "params.yaml"))
    cfg = cfg.model_copy(update={"seeds": seeds, "out_dir": out_dir})
    jobs = plan_jobs(cfg)
    if where == "main":
        generate(cfg, jobs)
    else:
        if where == "worker":
            torch.randn(512, 512) @ torch.randn(512, 512)  # one parallel region: the main thread's team
        worker = threading.Thread(target=generate, args=(cfg, jobs))
        worker.start()
        worker.join()
    print(json.dumps({"seconds": seconds}))


BESIDE = "import torch\ntorch.set_num_threads(2)\nx = torch.randn(256, 256)\nwhile True:\n    x = torch.tanh(x @ x)\n"


def run_case(case: str, seeds: list[int], threads: int) -> list[float]:
    where, wait = case.split(":", 1)
    if where not in ("main", "worker", "worker-only", "flow"):
        raise SystemExit(f"unknown place '{where}' in case '{case}': main, worker, worker-only or flow")
    with tempfile.TemporaryDirectory() as out_dir:
        cmd = [sys.executable, __file__, "--child", case, "--seeds", *map(str, seeds), "--out", out_dir]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
        done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"case {case} failed:\n{done.stderr[-3000:]}")
    seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    if not seconds:
        raise SystemExit(f"case {case}: no video timings in its log")
    return seconds


def labelled(case: str) -> str:
    """``case`` as recorded: a ``project`` wait names what ``flows/__init__.py`` set when it ran."""
    if not case.endswith(":project"):
        return case
    from flows import DEFAULTS

    set_here = [f"{k}={DEFAULTS[k]}" for k in OMP_KEYS if k in DEFAULTS]
    return f"{case} ({', '.join(set_here) or 'nothing set'})"


def cpu_name() -> str:
    """The CPU's model name (libgomp's spinning costs differ across CPUs), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{platform.machine()} CPU"


def write_markdown() -> None:
    lines = [
        "# OpenMP's waiting and the thread a video runs on",
        "",
        "Written by `python bench/speed/omp_threads.py` (module docstring: the cases and how they are timed).",
        "One table per run, newest first: the generate stage's sampling seconds per video (median; first video",
        "apart: it pays the first calls), each case a fresh process, the cases one after another.",
    ]
    records = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    for rec in reversed(records):
        beside = ", a 2-thread torch loop beside" if rec["beside"] else ", nothing else running"
        lines += ["", f"## {rec['date']}, {rec['machine']}, {rec['threads']} thread(s){beside}", ""]
        lines += ["| case | s / video (median) | first video | videos |", "|---|---|---|---|"]
        for case, secs in rec["cases"].items():
            lines.append(f"| {case} | {statistics.median(secs):.2f} | {secs[0]:.2f} | {len(secs)} |")
    (HERE / "omp_threads_results.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, help="WHERE:WAIT (module docstring)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beside", action="store_true", help="a 2-thread torch loop in another process")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child.split(":", 1), args.seeds, args.out)
    loop = subprocess.Popen([sys.executable, "-c", BESIDE]) if args.beside else None
    try:
        cases = {}
        for case in args.cases:
            name = labelled(case)
            cases[name] = run_case(case, args.seeds, args.threads)
            print(f"{name}: {statistics.median(cases[name]):.2f} s / video {cases[name]}", flush=True)
    finally:
        if loop:
            loop.kill()
    record = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores",
        "threads": args.threads,
        "beside": args.beside,
        "seeds": args.seeds,
        "cases": cases,
    }
    with RESULTS.open("a") as f:
        f.write(json.dumps(record) + "\n")
    write_markdown()


if __name__ == "__main__":
    main()
