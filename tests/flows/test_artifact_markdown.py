"""The artifacts' Markdown: links to every output file; the report with at most 8 small thumbnails."""

import base64
import io
import re

import numpy as np
from PIL import Image

from flows.artifacts import MAX_THUMBS, output_links_markdown, report_markdown


def test_links_to_each_videos_files(tmp_path):
    rows = [
        {"video_id": "seq-p0-s0", "prompt": "a red | star", "seed": 0},
        {"video_id": "seq-p0-s1", "prompt": "a red | star", "seed": 1},
    ]
    md = output_links_markdown(rows, tmp_path / "out")
    for vid in ("seq-p0-s0", "seq-p0-s1"):
        for name in ("video.mp4", "video.gif", "sheet.png"):
            assert f"]({(tmp_path / 'out' / vid / name).as_uri()})" in md
    assert "a red \\| star" in md  # a pipe in a prompt does not break the table
    assert (tmp_path / "out" / "manifest.csv").as_uri() in md


def test_report_embeds_the_first_thumbnails_small(tmp_path):
    (tmp_path / "thumbs").mkdir()
    lines = ["# Evaluation", "", "| run | IoU |", "|---|---|", "| all | 0.5 |"]
    for i in range(MAX_THUMBS + 2):
        sheet = np.random.default_rng(i).integers(0, 255, (132, 2080, 3), dtype=np.uint8)  # a 16-frame sheet
        Image.fromarray(sheet).save(tmp_path / "thumbs" / f"v{i}.png")
        lines += [f"### v{i}", "", f"![v{i}](thumbs/v{i}.png)", ""]
    (tmp_path / "report.md").write_text("\n".join(lines))
    md = report_markdown(tmp_path / "report.md")
    uris = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", md)
    assert len(uris) == MAX_THUMBS
    for data in uris:
        w, h = Image.open(io.BytesIO(base64.b64decode(data))).size
        assert w <= 1024 and h <= 256
    for i in (MAX_THUMBS, MAX_THUMBS + 1):  # the rest are links to the files
        assert f"]({(tmp_path / 'thumbs' / f'v{i}.png').as_uri()})" in md
    assert "| all | 0.5 |" in md and (tmp_path / "report.md").as_uri() in md
