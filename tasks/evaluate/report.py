"""A Markdown report page: the summary table, then one row per video with its contact sheet."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from tasks.common.io import atomic_write_text

COLUMNS = [
    ("text_alignment", "Text"),
    ("consistency_adjacent", "Frame (adj.)"),
    ("consistency_all_pairs", "Frame (all pairs)"),
    ("iou", "IoU"),
    ("centroid_error_px", "Centroid err. px"),
]


def _fmt(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def markdown_table(rows: list[dict], label_key: str, label: str) -> str:
    head = f"| {label} | " + " | ".join(name for _, name in COLUMNS) + " |"
    rule = "|---" * (len(COLUMNS) + 1) + "|"
    body = [f"| {r[label_key]} | " + " | ".join(_fmt(r.get(k)) for k, _ in COLUMNS) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def object_table(per_object: pd.DataFrame) -> str:
    """One row per object of every video with per-object prompts."""
    lines = ["| video | object | prompt | IoU (own mask) | colour accuracy |", "|---|---|---|---|---|"]
    for r in per_object.to_dict(orient="records"):
        lines.append(
            f"| {r['video_id']} | {r['object']} | {r['prompt']} | {_fmt(r['iou'])} | {_fmt(r['colour_accuracy'])} |"
        )
    return "\n".join(lines)


def write_report(
    path: Path, per_video: pd.DataFrame, summary: dict, outputs_dir: Path, per_object: pd.DataFrame | None = None
) -> None:
    """``path``'s folder gets ``thumbs/<video>.png`` copies so the page stands on its own."""
    thumbs = path.parent / "thumbs"
    thumbs.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Evaluation",
        "",
        "Mean over videos (Text and Frame are 100 x CLIP cosine; IoU of the generated "
        "foreground with the input mask):",
        "",
        markdown_table([{"run": "all", **summary}], "run", "run"),
        "",
    ]
    if per_object is not None and len(per_object):
        lines += [
            "## Objects",
            "",
            "Each object's own prompt: IoU of its prompted colour with its own masks, and the fraction of frames "
            "whose object-coloured pixels inside its mask are mostly its colour (tasks/evaluate/objects.py):",
            "",
            object_table(per_object),
            "",
        ]
    lines += [
        "## Videos",
        "",
    ]
    for row in per_video.to_dict(orient="records"):
        sheet = outputs_dir / row["video_id"] / "sheet.png"
        if sheet.is_file():
            shutil.copyfile(sheet, thumbs / f"{row['video_id']}.png")
        lines += [
            f'### {row["video_id"]}: "{row["prompt"]}" (seed {row["seed"]})',
            "",
            markdown_table([row], "video_id", "video"),
            "",
            f"![{row['video_id']}](thumbs/{row['video_id']}.png)",
            "",
        ]
    atomic_write_text(path, "\n".join(lines))
