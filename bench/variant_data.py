"""Another few-shot training set for the sweeps: the toy world with ``n_train`` clips, ingested and masked.

    HF_HUB_OFFLINE=1 python bench/variant_data.py 8     # -> data/variants/n8/{raw,clips,masks}

Every other setting comes from params.yaml, so the held-out sequences (drawn from their own seed)
are the ones the main job evaluates on. Point a sweep variant's ``train.clips_dir`` and
``train.masks_dir`` at the result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n_train", type=int)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from tasks.ingest import IngestConfig, ingest
    from tasks.masks import MasksConfig, run_masks
    from tasks.params import load_stage_config
    from tasks.toyworld import ToyWorldConfig, render_toyworld

    params, out = ROOT / "params.yaml", ROOT / "data" / "variants" / f"n{args.n_train}"
    render_toyworld(load_stage_config(ToyWorldConfig, "toyworld", params, {
        "n_train": args.n_train, "out_dir": str(out / "raw")}))
    ingest(load_stage_config(IngestConfig, "ingest", params, {
        "manifest": str(out / "raw" / "manifest.yaml"), "input_dir": str(out / "raw"), "out_dir": str(out / "clips")}))
    m = run_masks(load_stage_config(MasksConfig, "masks", params, {
        "clips_dir": str(out / "clips"), "out_dir": str(out / "masks"), "metrics": str(out / "masks.json")}))
    print(f"{out}: {m['n_videos']} clips, mask IoU against the truth {m['mean_iou']:.3f}")


if __name__ == "__main__":
    main()
