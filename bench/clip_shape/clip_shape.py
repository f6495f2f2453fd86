"""What the toy CLIP needs to read shapes: it alone, trained as the base stage trains it, per variant.

Every figure of text alignment is read through the toy CLIP, so what it cannot tell apart the
Alignment column cannot see: ``base/toy``'s CLIP names the colour and ground of every held-out frame
and the shape of 29% (chance 20%). Each variant of the spec (``base`` keys merged over params.yaml's)
trains a CLIP on the base stage's single-object pool and is scored zero-shot on the held-out combos,
upright and posed, as ``metrics/base.json`` scores it (``tasks.base.quality_run.clip_zero_shot``).

    HF_HUB_OFFLINE=1 python bench/clip_shape/clip_shape.py bench/clip_shape/clip_shape.yaml [--only NAME ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
sys.path.insert(0, str(ROOT))

from bench.fewshot.variant_base import run_spec, variant_config  # noqa: E402
from tasks.base.build import train_clip  # noqa: E402
from tasks.base.clip import save_clip  # noqa: E402
from tasks.base.pools import pools, posed_eval_pool, toy_tokenizer  # noqa: E402
from tasks.base.quality_run import clip_zero_shot  # noqa: E402


def run_variant(name: str, overlay: dict, params: Path, work: Path, threads: int | None = None) -> dict:
    cfg = variant_config(params, overlay, "clip", work / name, threads)
    _, clip_pool, eval_pool, _ = pools(cfg)
    tokenizer = toy_tokenizer(cfg)
    t0 = time.perf_counter()
    model, model_cfg, report = train_clip(cfg, clip_pool, tokenizer)
    seconds = time.perf_counter() - t0
    save_clip(model, model_cfg, tokenizer, work / name / "clip")
    upright = clip_zero_shot(work / name / "clip", eval_pool, cfg.data.motions)
    posed = clip_zero_shot(work / name / "clip", posed_eval_pool(cfg), cfg.data.motions)
    return {
        "variant": name,
        "steps": report["steps"],
        "train_s": round(seconds, 1),
        "last_loss": report["last_loss"],
        "shape_upright": upright["shape_accuracy"],
        "shape_posed": posed["shape_accuracy"],
        "colour_upright": upright["colour_accuracy"],
        "ground_upright": upright["ground_accuracy"],
    }


def main(argv: list[str] | None = None) -> None:
    run_spec(argv, __doc__.split("\n\n")[0], HERE / "clip_shape_results.jsonl", run_variant)


if __name__ == "__main__":
    main()
