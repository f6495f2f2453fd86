"""Ours and the peers side by side in one run, at equal steps: seconds per video, their ratio to
Text2Video-Zero + ControlNet, and the quality beside each (no speed figure without its quality figure).

    HF_HUB_OFFLINE=1 python bench/speed/side_by_side.py                        # after make demo
    HF_HUB_OFFLINE=1 python bench/speed/side_by_side.py --ours "cfg-half: video_guidance_interval=[0, 0.5]"

Every system samples the held-out set (``generate.sequences``, ``generate.seeds``) with ``params.yaml``'s
steps, through the registry's one call (``tasks.systems``: ``system(job, settings)``), in this process, one
system after another with its models loaded before its first video; then its videos are scored as the
evaluate stage scores them. ``--rounds 2`` runs the whole order twice (the machine is shared: a figure that
moves between rounds was noise). The trained baselines (LAMP-like, Tune-A-Video-like) run when ``make
ablations`` or ``make compare`` has trained their weights. Peak memory is left to ``make compare``, which
gives each system a process of its own.

Appends one record per run to ``side_by_side_results.jsonl`` and rewrites ``side_by_side_results.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).parent
RESULTS = HERE / "side_by_side_results.jsonl"
YARDSTICK = "Text2Video-Zero + ControlNet"
PEERS = ("Text2Video-Zero + ControlNet", "Text2Video-Zero", "ControlVideo")
TRAINED_BASELINES = ("LAMP-like", "Tune-A-Video-like")


def ours_variant(text: str):
    """``"name: key=value, key=value"`` -> ours with those generate overrides, under that name."""
    from tasks.systems import SYSTEMS

    name, _, settings = text.partition(":")
    overrides = {}
    for pair in filter(None, (p.strip() for p in settings.split(";"))):
        key, _, value = pair.partition("=")
        overrides[key.strip()] = yaml.safe_load(value)
    return replace(SYSTEMS["ours"], name=f"ours ({name.strip()})", generate={**SYSTEMS["ours"].generate, **overrides})


def trained_weights(system, params: str) -> str | None:
    """Where a trained system's weights are, without training: the train stage's run, else the ablations'
    folder; None when neither holds them."""
    from tasks.ablations import AblationsConfig
    from tasks.common.params import load_stage_config
    from tasks.train.config import TrainConfig
    from tasks.train.resume import finished_run

    run = load_stage_config(TrainConfig, "train", params, system.train)
    if finished_run(run):
        return run.out_dir
    folder = Path(load_stage_config(AblationsConfig, "ablations", params).out_dir) / "weights" / system.weights
    return str(folder / "checkpoints") if (folder / "checkpoints").is_dir() else None


def run_system(system, params: str, work: Path, round_: int) -> dict:
    """``system`` over the held-out set, each video timed; its videos scored."""
    from tasks.ablations import evaluate_folder
    from tasks.costs import Costs
    from tasks.systems import make_videos, slug, system_settings

    # ``--ours "...: checkpoint_dir=..."`` samples other weights of ours (bench/speed/window16.yaml's)
    weights = system.generate.get("checkpoint_dir") or (trained_weights(system, params) if system.weights else None)
    out = work / f"round-{round_}" / slug(system.name)
    shutil.rmtree(out, ignore_errors=True)  # generate keeps a video made before with the same key: time fresh ones
    settings = system_settings(system, params, weights, out_dir=str(out / "outputs"))
    costs = Costs()
    make_videos(system, settings, costs)
    scores = evaluate_folder(out, params)  # as make ablations scores a variant's videos
    keep = ("iou", "centroid_error_px", "text_alignment", "consistency_adjacent")
    return {
        "system": system.name,
        "round": round_,
        "seconds": costs.seconds,
        "seconds_per_video": round(statistics.median(costs.seconds), 2),
        **{k: round(scores[k], 4) for k in keep},
    }


def summary(rows: list[dict]) -> list[dict]:
    """Per system: the median seconds over every round's videos, its ratio to the yardstick's, the scores."""
    out = []
    yardstick = [s for r in rows if r["system"] == YARDSTICK for s in r["seconds"]]
    for name in dict.fromkeys(r["system"] for r in rows):
        mine = [r for r in rows if r["system"] == name]
        seconds = statistics.median(s for r in mine for s in r["seconds"])
        row = {"system": name, "seconds_per_video": round(seconds, 2)}
        row["ratio"] = round(seconds / statistics.median(yardstick), 2) if yardstick else None
        row.update({k: mine[0][k] for k in ("iou", "centroid_error_px", "text_alignment", "consistency_adjacent")})
        row["rounds"] = [r["seconds_per_video"] for r in mine]
        out.append(row)
    return out


def write_markdown(records: list[dict]) -> None:
    lines = [
        "# Ours and the peers side by side, at equal steps",
        "",
        "Written by `python bench/speed/side_by_side.py` (its docstring: what runs and how it is timed). One table",
        "per run, newest first: seconds per video (median over the set's videos and the rounds), its ratio to",
        f"{YARDSTICK}'s in the same run, and the evaluate stage's scores of the same videos (the first round's).",
        "",
    ]
    for r in reversed(records):
        lines += [
            f"## {r['date']}, {r['machine']}, {r['steps']} steps, {r['videos']} videos each, {r['rounds']} round(s)",
            "",
            "| system | s / video | x T2V-Zero + CN | IoU | centroid px | Text | Frame (adj.) | s / video by round |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in r["systems"]:
            lines.append(
                f"| {s['system']} | {s['seconds_per_video']} | {s['ratio']} | {s['iou']} | {s['centroid_error_px']} "
                f"| {s['text_alignment']} | {s['consistency_adjacent']} | {' / '.join(map(str, s['rounds']))} |"
            )
        lines.append("")
    (HERE / "side_by_side_results.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ours", action="append", default=[], help='ours with other settings: "name: key=value; ..."')
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers (default: all three)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--work", type=Path, default=ROOT / "data" / "bench" / "side_by_side")
    args = ap.parse_args(argv)
    import torch

    from tasks.common.params import load_stage_config
    from tasks.generate.config import GenerateConfig
    from tasks.systems import SYSTEMS

    if args.threads:
        torch.set_num_threads(args.threads)
    systems = [SYSTEMS["ours"], *(ours_variant(text) for text in args.ours)]
    systems += [SYSTEMS[name] for name in TRAINED_BASELINES if trained_weights(SYSTEMS[name], args.params)]
    systems += [SYSTEMS[name.strip()] for name in args.peers.split(",") if name.strip()]
    rows = []
    for round_ in range(args.rounds):
        for system in systems:
            rows.append(run_system(system, args.params, args.work, round_))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "seconds"}), flush=True)
    gen = load_stage_config(GenerateConfig, "generate", args.params)
    record = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s)",
        "steps": gen.num_inference_steps,
        "videos": len(rows[0]["seconds"]),
        "rounds": args.rounds,
        "systems": summary(rows),
    }
    with RESULTS.open("a") as f:
        f.write(json.dumps(record) + "\n")
    write_markdown([json.loads(line) for line in RESULTS.read_text().splitlines()])
    print((HERE / "side_by_side_results.md").read_text())


if __name__ == "__main__":
    main()
