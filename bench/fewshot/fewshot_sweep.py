"""Few-shot sweep: train -> generate -> evaluate for several variants of params.yaml, in parallel.

Run from the repository root (CPU: one variant per two cores is about all it takes; a GPU takes
several at once, each process alone being launch-bound on the toy model):

    HF_HUB_OFFLINE=1 python bench/fewshot/fewshot_sweep.py bench/fewshot/fewshot_sweep.yaml \
        [--parallel N] [--device cuda]

The YAML names variants, each with ``train`` overrides and a list of ``evals``: the checkpoint step
to evaluate and the ``generate`` overrides to sample it with. Everything else comes from
params.yaml (the held-out sequences and seeds of the ``generate`` section, the ``evaluate``
section). One JSON line per evaluation is appended to the results file (``results:`` in the YAML);
``--table`` prints the results as a markdown table. Work lands in ``--work`` (default
/tmp/fewshot_sweep), one folder per variant; a variant that already finished its training is
not trained again (the train stage resumes or skips by fingerprint).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = ["iou", "text_alignment", "consistency_adjacent", "consistency_all_pairs", "centroid_error_px"]


def params_version() -> str:
    """The commit whose params.yaml the overrides apply to ("+edited" when the working copy differs):
    a row's {} means that commit's defaults."""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    edited = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "params.yaml"]).returncode != 0
    return head + ("+edited" if edited else "")


def folder_name(variant: str) -> str:
    return variant.replace("/", "_")


def run_variant(
    name: str, spec: dict, work: Path, device: str, results: Path, eval_only: bool = False, train_only: bool = False
) -> None:
    """One variant, in this process: train to the largest step named, then every evaluation.
    ``eval_only`` samples the checkpoints already in the variant's folder and never trains (a run
    whose settings no longer match the code's would otherwise be cleared and trained again);
    ``train_only`` trains and samples nothing (checkpoints for another benchmark)."""
    sys.path.insert(0, str(ROOT))
    from tasks.ablations import evaluate_folder
    from tasks.common.io import content_digest
    from tasks.common.params import load_stage_config
    from tasks.generate.config import GenerateConfig
    from tasks.generate.stage import generate
    from tasks.train.config import TrainConfig
    from tasks.train.stage import train

    params = ROOT / "params.yaml"
    evals = spec["evals"]
    steps = max(e["step"] for e in evals)
    every = math.gcd(*(e["step"] for e in evals))  # a checkpoint at every step named
    out = work / folder_name(name)
    t0 = time.time()
    train_cfg = load_stage_config(
        TrainConfig,
        "train",
        params,
        {
            "device": device,
            "mixed_precision": "no",
            "validation": False,
            **spec.get("train", {}),
            "steps": steps,
            "checkpoint_every": every,
            "keep_last": 1000,
            "out_dir": str(out / "checkpoints"),
            "metrics": str(out / "train.json"),
            "loss_log": str(out / "loss.csv"),
        },
    )
    # rows from different base builds must not be compared as one: each row names its base by content
    base = content_digest(*(Path(train_cfg.base_dir) / p for p in ("vae", "text_encoder", "unet", "controlnet")))[:10]
    if eval_only:
        missing = [e["step"] for e in evals if not (out / "checkpoints" / f"ckpt-{e['step']:06d}").is_dir()]
        if missing:
            raise SystemExit(f"{name}: --eval-only, but {out / 'checkpoints'} has no checkpoint for steps {missing}")
    else:
        train(train_cfg)
    train_seconds = None if eval_only else round(time.time() - t0)
    if train_only:
        print(f"{name}: trained in {train_seconds} s, {out / 'checkpoints'}", flush=True)
        return
    for i, e in enumerate(evals):
        t1 = time.time()
        # generate reads the checkpoint that ``latest`` names: give each evaluation its own view
        view = out / f"view-{e['step']}"
        name_ = f"ckpt-{e['step']:06d}"
        view.mkdir(exist_ok=True)
        if not (view / name_).exists():
            os.symlink((out / "checkpoints" / name_).resolve(), view / name_)
        (view / "latest").write_text(name_)
        run = out / f"eval-{i}"
        generate(
            load_stage_config(
                GenerateConfig,
                "generate",
                params,
                {
                    "device": device,
                    **e.get("generate", {}),
                    "checkpoint_dir": str(view),
                    "out_dir": str(run / "outputs"),
                },
            )
        )
        # as make ablations evaluates a variant (the frame log: eval_frames.csv); videos of a drawn set of a
        # motion inside the object (bench/learned_motion) get its columns, against the variant's own clips
        sequences = e.get("generate", {}).get("sequences")
        motion = {"sequences": sequences, "clips_dir": train_cfg.clips_dir, "masks_dir": train_cfg.masks_dir}
        m = evaluate_folder(run, params, motion if sequences else None)
        row = {
            "variant": name,
            "train": spec.get("train", {}),
            "step": e["step"],
            "generate": e.get("generate", {}),
            "params": params_version(),
            "device": device,
            "base": base,
            "train_seconds": train_seconds,
            "eval_seconds": round(time.time() - t1),
            **{k: round(m[k], 4) for k in SUMMARY},
            **({"learned_motion": m["learned_motion"]} if "learned_motion" in m else {}),
            "videos": {k: round(v["iou"], 3) for k, v in m["videos"].items()},
        }
        with open(results, "a") as f:  # one short line per write: parallel variants do not interleave
            f.write(json.dumps(row) + "\n")


def table(results: Path) -> str:
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda r: -r["iou"])
    lines = [
        "| base | params | device | variant | train overrides | step | generate overrides "
        "| IoU | Text | Frame (adj.) | "
        "Frame (all) | Centroid px | IoU per sequence |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        seqs = sorted({k.rsplit("-s", 1)[0] for k in r["videos"]})
        per = " / ".join(
            f"{statistics.mean(v for k, v in r['videos'].items() if k.startswith(s + '-s')):.2f}" for s in seqs
        )
        lines.append(
            f"| {r.get('base', '-')} | {r.get('params', '-')} | {r['device']} | {r['variant']} "
            f"| {json.dumps(r['train'])} | "
            f"{r['step']} | {json.dumps(r['generate'])} | "
            f"{r['iou']:.3f} | {r['text_alignment']:.1f} | {r['consistency_adjacent']:.1f} | "
            f"{r['consistency_all_pairs']:.1f} | {r['centroid_error_px']:.1f} | {per} |"
        )
    return "\n".join(lines)


def seed_table(results: Path) -> str:
    """Rows of variants named ``<group>-s<seed>`` pooled over seeds, per (group, generate overrides,
    device): each seed's IoU, then the mean, spread and worst, and the mean text alignment and
    adjacent-frame consistency."""
    groups: dict[tuple, list[dict]] = {}
    for line in results.read_text().splitlines():
        r = json.loads(line) if line.strip() else None
        if r and "-s" in r["variant"] and r["variant"].rsplit("-s", 1)[1].isdigit():
            key = (r["variant"].rsplit("-s", 1)[0], json.dumps(r["generate"]), r["device"])
            groups.setdefault(key, []).append(r)
    lines = [
        "| variant | generate overrides | device | IoU by training seed | mean | sd | worst | Text | Frame (adj.) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (group, gen, device), rows in groups.items():
        rows.sort(key=lambda r: r["train"].get("seed", 0))
        ious = [r["iou"] for r in rows]
        sd = statistics.stdev(ious) if len(ious) > 1 else 0.0
        seeds = " / ".join(f"s{r['train'].get('seed', 0)} {r['iou']:.3f}" for r in rows)
        lines.append(
            f"| {group} | {gen} | {device} | {seeds} | {statistics.mean(ious):.3f} | {sd:.3f} | {min(ious):.3f} | "
            f"{statistics.mean(r['text_alignment'] for r in rows):.1f} | "
            f"{statistics.mean(r['consistency_adjacent'] for r in rows):.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec", type=Path)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/fewshot_sweep"))
    ap.add_argument("--only", help="run this one variant here (used by the parallel launcher)")
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--eval-only", action="store_true", help="sample the checkpoints in --work; train nothing")
    only.add_argument("--train-only", action="store_true", help="train every variant; sample nothing")
    ap.add_argument("--table", action="store_true", help="print the results file as a markdown table and stop")
    ap.add_argument("--by-seed", action="store_true", help="print variants named <group>-s<seed> pooled over seeds")
    args = ap.parse_args()
    spec = yaml.safe_load(args.spec.read_text())
    results = ROOT / spec["results"]
    if args.table or args.by_seed:
        print(seed_table(results) if args.by_seed else table(results))
        return
    if args.only:
        run_variant(
            args.only, spec["variants"][args.only], args.work, args.device, results, args.eval_only, args.train_only
        )
        return
    args.work.mkdir(parents=True, exist_ok=True)
    # CPU: share the cores out (two 2-thread processes on 2 cores ran 20-50x slower than one, the
    # OpenMP threads spinning against each other); a GPU process needs little more than its launcher
    threads = max(1, (os.cpu_count() or 1) // args.parallel) if args.device == "cpu" else 2
    pending = list(spec["variants"])
    running: dict[str, subprocess.Popen] = {}
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            log = open(args.work / f"{folder_name(name)}.log", "w")
            running[name] = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    str(args.spec),
                    "--only",
                    name,
                    "--device",
                    args.device,
                    "--work",
                    str(args.work),
                    *(["--eval-only"] if args.eval_only else []),
                    *(["--train-only"] if args.train_only else []),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "OMP_NUM_THREADS": str(threads)},
            )
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                print(
                    f"{name}: {'done' if proc.returncode == 0 else f'failed ({proc.returncode}), see its log'}",
                    flush=True,
                )
                del running[name]
        time.sleep(2)
    print(table(results))


if __name__ == "__main__":
    main()
