"""Table I of the paper, side by side: ours, the trained baselines and the training-free peers in one harness.

Systems (``tasks.systems.TABLE_I``, each called through the registry as the ablations are) share the base
models a run trained on (``train.base_dir``, the ControlNet of ``generate``), the sequences, prompts, seeds,
DDIM steps and the evaluate stage's metrics:

- ``ours``, ``LAMP-like``, ``Tune-A-Video-like``: trained; the train stage's checkpoint for ours, the
  ablations' own trained weights for the other two (reused when ``make ablations`` already trained them,
  trained there otherwise);
- ``Text2Video-Zero`` (text only), ``Text2Video-Zero + ControlNet`` and ``ControlVideo``: training-free,
  ``tasks.peer_videos`` over ``model.peers``.

Two sequence sets: the held-out set ``generate.sequences`` and the toy world rendered with another
seed (``compare.unseen_seed``), nothing tuned on. Each system runs in a process of its own, so its
cost is its own: seconds per video (models loaded first; writing the video's files counted, for every
system alike) and the peak memory while a video is made (CUDA: the allocator's peak; CPU: the process's
resident set, sampled). Outputs under ``out_dir``::

    <out_dir>/<system>/<set>/outputs/ eval/    videos (as the generate stage writes them) and their report
    <out_dir>/sheets/<set>-<sequence>.png      a row per system (seed 0), the mask outlined
    <out_dir>/table.md  table.csv              Table I form plus IoU and cost columns; ``metrics`` (JSON)

Run: ``make compare`` (``python -m flows.compare``) after ``make demo``.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from tasks.common.io import atomic_write_text, read_mask_pngs, write_json, write_rgb_png
from tasks.common.params import StageConfig, load_stage_config
from tasks.common.visualize import contact_sheet
from tasks.costs import Costs
from tasks.systems import SYSTEMS, TABLE_I, make_videos, slug, system_settings, system_weights

log = logging.getLogger(__name__)

# the paper's Table I (consistency, alignment; CLIP ViT-L/14 on SD1.4 videos); ours is "Ours"
PAPER_TABLE_I = {
    "Tune-A-Video-like": (95.4, 30.9),
    "Text2Video-Zero": (97.0, 32.6),
    "ControlVideo": (97.1, 32.1),
    "LAMP-like": (95.1, 32.3),
    "ours": (97.4, 33.0),
}
SETS = ("held-out", "unseen")


class CompareConfig(StageConfig):
    systems: list[str] = Field(list(TABLE_I), description=f"any of {list(TABLE_I)}")
    seeds: list[int] = Field([0, 1, 2], min_length=1)
    unseen_seed: int = Field(
        1, description="toy world seed of the second sequence set (the held-out set uses toyworld.seed)"
    )
    out_dir: str = "data/compare"
    metrics: str = "metrics/compare.json"


# ---------------------------------------------------------------------------------------------
# one system, in its own process


def sequence_sets(cfg: CompareConfig, params: str) -> dict[str, str]:
    """Set name -> sequences manifest: the held-out set, and the toy world at ``unseen_seed``."""
    from tasks.generate.config import GenerateConfig
    from tasks.generate.jobs import sequences_manifest
    from tasks.toyworld.stage import ToyWorldConfig, render_toyworld

    held = sequences_manifest(load_stage_config(GenerateConfig, "generate", params).sequences)
    unseen = Path(cfg.out_dir) / "sets" / f"toy-seed-{cfg.unseen_seed}"
    if not (unseen / "heldout" / "manifest.yaml").is_file():
        toy = load_stage_config(ToyWorldConfig, "toyworld", params, {"seed": cfg.unseen_seed, "out_dir": str(unseen)})
        render_toyworld(toy.model_copy(update={"n_train": 1}))
    return {"held-out": str(held), "unseen": str(unseen / "heldout" / "manifest.yaml")}


def run_system(name: str, cfg: CompareConfig, params: str) -> dict:
    """One system over both sequence sets through the registry (``tasks.systems``), each video timed; the
    harness runs this in a process of its own. Returns each set's costs."""
    from tasks.ablations import AblationsConfig

    torch.manual_seed(0)
    sets = sequence_sets(cfg, params)
    system = SYSTEMS[name]
    # the ablations' own weights folder: what `make ablations` trained is reused, and the other way round
    weights_root = Path(load_stage_config(AblationsConfig, "ablations", params).out_dir) / "weights"
    checkpoint_dir = system_weights(system, params, weights_root)
    result = {}
    for set_name, sequences in sets.items():
        out = Path(cfg.out_dir) / slug(name) / set_name / "outputs"
        # every video is made afresh: ours keeps a video already made for the same inputs, and the harness
        # would then time that (0 s) as a generation
        shutil.rmtree(out, ignore_errors=True)
        settings = system_settings(
            system, params, checkpoint_dir, sequences=sequences, seeds=cfg.seeds, out_dir=str(out)
        )
        costs = Costs()
        make_videos(system, settings, costs)
        result[set_name] = costs.summary()
    return result


# ---------------------------------------------------------------------------------------------
# the harness


def run_compare(cfg: CompareConfig, params: str = "params.yaml") -> pd.DataFrame:
    """Every system in a process of its own, then the evaluation of each (system, set), the table, the sheets."""
    from tasks.ablations import evaluate_folder
    from tasks.evaluate.stage import SUMMARY

    unknown = [s for s in cfg.systems if s not in TABLE_I]
    if unknown:
        raise ValueError(f"compare.systems: unknown {unknown}; choose from {list(TABLE_I)}")
    out = Path(cfg.out_dir)
    sets = sequence_sets(cfg, params)  # rendered once, before the systems run side by side
    rows = []
    for system in cfg.systems:
        log.info("compare: %s", system)
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "tasks.compare", system, "--params", params]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"compare: {system} failed:\n{done.stderr[-3000:]}")
        costs = json.loads(done.stdout.strip().splitlines()[-1])
        for set_name in sets:
            metrics = evaluate_folder(out / slug(system) / set_name, params)
            rows.append(
                {
                    "system": system,
                    "set": set_name,
                    **{k: metrics[k] for k in SUMMARY},
                    "n_videos": metrics["n_videos"],
                    **costs[set_name],
                    "wall_seconds": round(time.perf_counter() - t0, 1),
                }  # fmt: skip
            )
    table = pd.DataFrame(rows)
    table.to_csv(out / "table.csv", index=False)
    atomic_write_text(out / "table.md", table_i(table) + "\n")
    write_sheets(cfg, sets, out / "sheets")
    write_json(
        cfg.metrics, {f"{r['system']} | {r['set']}": {k: r[k] for k in r if k not in ("system", "set")} for r in rows}
    )
    return table


MEANS = ("consistency_adjacent", "consistency_all_pairs", "text_alignment", "centroid_error_px", "seconds_per_video")


def table_i(table: pd.DataFrame) -> str:
    """The paper's Table I form (consistency, alignment) per system over both sets, then IoU per set and cost."""
    lines = [
        "| method | consistency (adjacent) | all pairs | alignment | IoU held-out | IoU unseen | centroid error px "
        "| s/video | peak memory MB | paper: consistency | paper: alignment |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for system, rows in table.groupby("system", sort=False):
        mean = {k: float(np.average(rows[k], weights=rows["n_videos"])) for k in MEANS}
        iou = {s: float(v) for s, v in zip(rows["set"], rows["iou"])}
        paper = PAPER_TABLE_I.get(system, ("", ""))
        lines.append(
            f"| {system} | {mean['consistency_adjacent']:.1f} | {mean['consistency_all_pairs']:.1f} "
            f"| {mean['text_alignment']:.1f} | {iou.get('held-out', float('nan')):.3f} "
            f"| {iou.get('unseen', float('nan')):.3f} | {mean['centroid_error_px']:.2f} "
            f"| {mean['seconds_per_video']:.2f} | {rows['peak_memory_mb'].max():.0f} | {paper[0]} | {paper[1]} |"
        )
    return "\n".join(lines)


def write_sheets(cfg: CompareConfig, sets: dict[str, str], folder: Path) -> None:
    """One picture per sequence: a row per system (seed ``seeds[0]``), the drawn mask outlined."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    seed = cfg.seeds[0]
    for set_name, manifest in sets.items():
        for row in yaml.safe_load(Path(manifest).read_text())["sequences"]:
            vid = f"{row['id']}-s{seed}"
            videos, masks, names = [], [], []
            for system in cfg.systems:
                video = Path(cfg.out_dir) / slug(system) / set_name / "outputs" / vid
                if (video / "frames.npy").is_file():
                    videos.append(np.load(video / "frames.npy"))
                    masks.append(read_mask_pngs(video / "masks"))
                    names.append(system)
            if videos:
                sheet = contact_sheet(videos, masks=masks, max_frames=8)
                write_rgb_png(folder / f"{set_name}-{row['id']}.png", name_rows(sheet, names))


def name_rows(sheet: np.ndarray, names: list[str], width: int = 230) -> np.ndarray:
    """The sheet with a white margin on the left naming each row (rows of equal height)."""
    import cv2

    margin = np.full((sheet.shape[0], width, 3), 255, np.uint8)
    row_height = sheet.shape[0] / len(names)
    for r, name in enumerate(names):
        y = int((r + 0.5) * row_height) + 5
        cv2.putText(margin, name, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([margin, sheet], axis=1)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="run one system of the comparison (the harness calls this)")
    parser.add_argument("system", choices=TABLE_I)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = load_stage_config(CompareConfig, "compare", args.params)
    print(json.dumps(run_system(args.system, cfg, args.params)))


if __name__ == "__main__":
    main()
