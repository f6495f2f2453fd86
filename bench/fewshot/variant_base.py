"""Another toy base for the sweeps, built beside the pipeline's ``base/toy`` with other settings.

    HF_HUB_OFFLINE=1 python bench/fewshot/variant_base.py --multi-object-share 0.3   # -> data/variants/base-multi0.3
    HF_HUB_OFFLINE=1 python bench/fewshot/variant_base.py --overlay bench/fewshot/base_posed.yaml  # -> .../base_posed

About as long as the base stage (an hour on 2 CPU cores). Every other setting comes from params.yaml's
``base`` section. Point a sweep variant's ``train.base_dir`` at the folder (bench/fewshot/per_object_training.yaml):
the few-shot checkpoints trained on it name it in their config, so generation and the benchmarks that
load them use it too. The quality figures land in ``<folder>/base.json``, its loss curves in ``<folder>/logs``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def merged(params: dict, overlay: dict) -> dict:
    """``overlay`` merged over ``params``, mappings key by key at every depth."""
    out = dict(params)
    for key, value in overlay.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def variant_config(params: Path, overlay: dict, model: str, work: Path, threads: int | None):
    """The base stage's config for one bench variant: ``overlay`` over params.yaml's ``base``, loss logs
    under ``work``, ``threads`` torch threads (set here), and ``model``'s step count held whatever the
    machine's load (its ``max_minutes`` off)."""
    import torch

    sys.path.insert(0, str(ROOT))
    from tasks.base.config import BaseConfig
    from tasks.common.params import load_stage_config, read_params

    overrides = {**merged(read_params(params)["base"], overlay), "logs_dir": str(work / "logs")}
    if threads:
        overrides["threads"] = threads
    overrides[model]["train"]["max_minutes"] = None
    cfg = load_stage_config(BaseConfig, "base", params, overrides)
    torch.set_num_threads(cfg.threads)
    return cfg


def run_spec(argv: list[str] | None, description: str, results: Path, run_one) -> None:
    """The command line of the benches that train one base model alone over variants of params.yaml's ``base``
    (bench/clip_shape, bench/t2i_shape): ``spec`` names the variants (overlays), ``--only`` picks some;
    ``run_one(name, overlay, params, work, threads)`` returns a variant's row, appended to ``--results``."""
    import json
    import tempfile
    import time

    sys.path.insert(0, str(ROOT))
    from tasks.common.io import atomic_write_text
    from tasks.common.params import read_params

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("spec", type=Path)
    ap.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--threads", type=int, help="torch threads (default: base.threads); 1 on a shared machine")
    ap.add_argument("--results", type=Path, default=results)
    ap.add_argument("--keep", type=Path, help="keep each variant's models and logs under KEEP/<variant>")
    args = ap.parse_args(argv)
    variants = read_params(args.spec)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        for name in args.only or list(variants):
            row = run_one(name, dict(variants[name] or {}), args.params, work, args.threads)
            row["date"] = time.strftime("%Y-%m-%d")
            print(json.dumps(row), flush=True)
            previous = args.results.read_text() if args.results.is_file() else ""
            atomic_write_text(args.results, previous + json.dumps(row) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--multi-object-share", type=float, help="base.data.multi_object_share: frames of 2-3 objects")
    ap.add_argument("--overlay", type=Path, help="a YAML of `base` keys merged (nested) over params.yaml's")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--out", type=Path, help="the base's folder (default: data/variants/base-multi<share>)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tasks.base.build import build_toy_base
    from tasks.base.config import BaseConfig
    from tasks.common.params import load_stage_config, read_params

    if (args.multi_object_share is None) == (args.overlay is None):
        ap.error("give one of --multi-object-share and --overlay")
    base = read_params(args.params)["base"]
    if args.overlay:
        overlay = read_params(args.overlay)
        out = args.out or ROOT / "data" / "variants" / args.overlay.stem
    else:
        overlay = {"data": {"multi_object_share": args.multi_object_share}}
        out = args.out or ROOT / "data" / "variants" / f"base-multi{args.multi_object_share:g}"
    overrides = {**merged(base, overlay), "out_dir": str(out), "metrics": f"{out}.json", "logs_dir": f"{out}-logs"}
    cfg = load_stage_config(BaseConfig, "base", args.params, overrides)
    report = build_toy_base(cfg)
    Path(cfg.metrics).replace(out / "base.json")
    print(f"{out}: built in {report['wall_minutes']} min; quality in {out / 'base.json'}")


if __name__ == "__main__":
    main()
