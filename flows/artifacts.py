"""Prefect artifacts of the generate and evaluate flows: links to the videos, the report with thumbnails.

The Markdown is built by plain functions (tested without a server); ``publish_*`` hand it to Prefect.
Links are ``file://`` URIs of absolute paths: the Prefect UI shows them (a browser may refuse to
open local files from a web page; copy the link then), and they say exactly where the file is.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

from PIL import Image
from prefect.artifacts import create_markdown_artifact

MAX_THUMBS = 8
THUMB_MAX_SIZE = (1024, 256)  # (width, height): a toy contact sheet keeps its 64-pixel frames
IMAGE_LINE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)\s*$")


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def output_links_markdown(rows: list[dict], out_dir: str | Path, limit: int = 100) -> str:
    """A table of the generated videos with links to each one's mp4, gif and contact sheet."""
    out = Path(out_dir).resolve()
    lines = [
        "# Generated videos",
        "",
        f"{len(rows)} video(s) in `{out}` ([manifest.csv]({(out / 'manifest.csv').as_uri()})).",
        "",
        "| video | prompt | seed | files |",
        "|---|---|---|---|",
    ]
    for row in rows[:limit]:
        folder = out / row["video_id"]
        files = " · ".join(f"[{name}]({(folder / name).as_uri()})" for name in ("video.mp4", "video.gif", "sheet.png"))
        lines.append(f"| {_cell(row['video_id'])} | {_cell(row['prompt'])} | {row['seed']} | {files} |")
    if len(rows) > limit:
        lines += ["", f"... and {len(rows) - limit} more (see manifest.csv)."]
    return "\n".join(lines) + "\n"


def png_data_uri(path: Path, max_size: tuple[int, int] = THUMB_MAX_SIZE) -> str:
    """A PNG, shrunk to fit ``max_size`` (never enlarged), as a ``data:image/png;base64,`` URI."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail(max_size, Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        image.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def report_markdown(report_path: str | Path, max_thumbs: int = MAX_THUMBS) -> str:
    """The evaluate stage's ``report.md`` with its first ``max_thumbs`` images embedded (the rest
    become links), and a link to the report itself at the end."""
    report = Path(report_path).resolve()
    lines, embedded = [], 0
    for line in report.read_text().splitlines():
        match = IMAGE_LINE.match(line)
        if match is None:
            lines.append(line)
            continue
        image = (report.parent / match["src"]).resolve()
        if embedded < max_thumbs and image.is_file():
            lines.append(f"![{match['alt']}]({png_data_uri(image)})")
            embedded += 1
        else:
            lines.append(f"[{match['alt']} (contact sheet)]({image.as_uri()})")
    lines += ["", f"Full report: [{report.name}]({report.as_uri()})"]
    return "\n".join(lines) + "\n"


def publish_output_links(rows: list[dict], out_dir: str | Path, key: str = "generate-outputs") -> None:
    create_markdown_artifact(
        key=key, markdown=output_links_markdown(rows, out_dir), description=f"Generated videos in {out_dir}"
    )


def publish_report(report_path: str | Path, key: str = "eval-report") -> None:
    create_markdown_artifact(
        key=key, markdown=report_markdown(report_path), description="Evaluation report (first thumbnails embedded)"
    )
