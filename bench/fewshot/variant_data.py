"""Another toy world for the sweeps, ingested and masked: more training clips, or other sequences.

    HF_HUB_OFFLINE=1 python bench/fewshot/variant_data.py --n-train 8   # -> data/variants/n8/{raw,clips,masks}
    HF_HUB_OFFLINE=1 python bench/fewshot/variant_data.py --seed 1      # -> data/variants/seed1/...
    HF_HUB_OFFLINE=1 python bench/fewshot/variant_data.py --n-multi 4   # -> data/variants/multi4/...
    HF_HUB_OFFLINE=1 python bench/fewshot/variant_data.py --motion spin # -> data/variants/spin/...

Every other setting comes from params.yaml. The toy world draws its held-out sequences from their
own stream of its seed, so ``--n-train`` keeps the main job's held-out sequences (point a sweep
variant's ``train.clips_dir`` and ``train.masks_dir`` at the new clips), and ``--seed`` gives new
ones (point ``generate.sequences`` at ``raw/heldout/manifest.yaml``): mask sequences no default
was tuned on. ``--n-multi`` adds training clips of 2-3 objects, each with its own prompt and masks
(per-object prompts, ``bench/fewshot/per_object_training.yaml``); the other clips stay as they were.
``--motion`` gives the few-shot set another motion pattern (spin, squash: ``bench/learned_motion/``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, help="few-shot training clips (default: params.yaml)")
    ap.add_argument("--seed", type=int, help="the toy world's seed (default: params.yaml)")
    ap.add_argument("--n-multi", type=int, help="multi-object training clips (toyworld.n_multi_train)")
    ap.add_argument("--motion", help="the few-shot set's motion pattern (toyworld.motion)")
    args = ap.parse_args()
    given = (("n_train", args.n_train), ("seed", args.seed), ("n_multi_train", args.n_multi), ("motion", args.motion))
    changes = {k: v for k, v in given if v is not None}
    if not changes:
        ap.error("give --n-train, --seed, --n-multi and/or --motion")
    sys.path.insert(0, str(ROOT))
    from tasks.common.params import load_stage_config
    from tasks.ingest.stage import IngestConfig, ingest
    from tasks.masks.stage import MasksConfig, run_masks
    from tasks.toyworld.stage import ToyWorldConfig, render_toyworld

    name = "-".join(
        {"n_train": "n{}", "seed": "seed{}", "n_multi_train": "multi{}", "motion": "{}"}[k].format(v)
        for k, v in changes.items()
    )
    params, out = ROOT / "params.yaml", ROOT / "data" / "variants" / name
    render_toyworld(load_stage_config(ToyWorldConfig, "toyworld", params, {**changes, "out_dir": str(out / "raw")}))
    ingest(
        load_stage_config(
            IngestConfig,
            "ingest",
            params,
            {
                "manifest": str(out / "raw" / "manifest.yaml"),
                "input_dir": str(out / "raw"),
                "out_dir": str(out / "clips"),
            },
        )
    )
    m = run_masks(
        load_stage_config(
            MasksConfig,
            "masks",
            params,
            {"clips_dir": str(out / "clips"), "out_dir": str(out / "masks"), "metrics": str(out / "masks.json")},
        )
    )
    print(f"{out}: {m['n_videos']} clips, mask IoU against the truth {m['mean_iou']:.3f}")


if __name__ == "__main__":
    main()
