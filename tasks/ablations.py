"""Table II of the paper as runs of the same code: the full model, its ablations and two baselines.

Each variant is a set of overrides on the ``train`` / ``generate`` / ``evaluate`` sections of
``params.yaml``. Variants that only change sampling reuse the full model's weights, which are the
train stage's checkpoint when that run is finished and made with the same settings; variants that
change the network train their own (once: training resumes or skips by fingerprint, generation
skips videos already made). Everything lands under ``out_dir``::

    <out_dir>/weights/<weights name>/      checkpoints, train.json, loss.csv
    <out_dir>/<variant>/outputs/ eval/      videos and the evaluation report
    <out_dir>/table.csv  table.md  iou.png  and ``metrics`` (a DVC-style JSON of every row)
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from pydantic import Field  # noqa: E402

from tasks.common.io import atomic_write_text, write_json  # noqa: E402
from tasks.common.params import StageConfig, load_stage_config  # noqa: E402
from tasks.evaluate.report import markdown_table  # noqa: E402
from tasks.evaluate.stage import SUMMARY, EvaluateConfig, evaluate  # noqa: E402
from tasks.systems import ABLATIONS, SYSTEMS, make_videos, slug, system_settings, system_weights  # noqa: E402


class AblationsConfig(StageConfig):
    variants: list[str] = Field(list(ABLATIONS), description=f"any of {list(ABLATIONS)}")
    out_dir: str = "data/ablations"
    metrics: str = "metrics/ablations.json"


def run_variant(name: str, params: str, out: Path) -> dict:
    """Train (if its weights need it), generate and evaluate one variant through the registry
    (``tasks.systems``); returns its metrics row."""
    system = SYSTEMS[name]
    t0 = time.perf_counter()
    checkpoint_dir = system_weights(system, params, out / "weights")
    vdir = out / slug(name)
    make_videos(system, system_settings(system, params, checkpoint_dir, out_dir=str(vdir / "outputs")))
    metrics = evaluate_folder(vdir, params)
    return {
        "variant": name,
        "weights": checkpoint_dir,
        **{k: metrics[k] for k in SUMMARY},
        "n_videos": metrics["n_videos"],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def evaluate_folder(vdir: Path, params: str, overrides: dict | None = None) -> dict:
    """The evaluate stage over ``vdir/outputs``, its report, metrics and frame log beside them in ``vdir``
    (``overrides``: other keys of the evaluate section, e.g. the drawn set's ``sequences``)."""
    return evaluate(
        load_stage_config(
            EvaluateConfig,
            "evaluate",
            params,
            {
                **(overrides or {}),
                "outputs_dir": str(vdir / "outputs"),
                "report_dir": str(vdir / "eval"),
                "metrics": str(vdir / "eval.json"),
                "frame_log": str(vdir / "eval_frames.csv"),
            },
        )
    )


def run_ablations(cfg: AblationsConfig, params: str = "params.yaml") -> pd.DataFrame:
    unknown = [v for v in cfg.variants if v not in ABLATIONS]
    if unknown:
        raise ValueError(f"ablations.variants: unknown {unknown}; choose from {list(ABLATIONS)}")
    out = Path(cfg.out_dir)
    rows = [run_variant(name, params, out) for name in cfg.variants]
    table = pd.DataFrame(rows)
    table.to_csv(out / "table.csv", index=False)
    atomic_write_text(out / "table.md", markdown_table(rows, "variant", "variant") + "\n")
    plot_iou(table, out / "iou.png")
    write_json(cfg.metrics, {r["variant"]: {k: r[k] for k in [*SUMMARY, "seconds"]} for r in rows})
    return table


def plot_iou(table: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(table["variant"], table["iou"], color="#3b7dd8")
    ax.set_ylabel("foreground IoU")
    ax.set_ylim(0, 1)
    ax.set_title("Ablations on the toy world (held-out masks)")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
