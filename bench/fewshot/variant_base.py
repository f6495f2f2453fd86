"""Another toy base for the sweeps, built beside the pipeline's ``base/toy`` with other settings.

    HF_HUB_OFFLINE=1 python bench/fewshot/variant_base.py --multi-object-share 0.3   # -> data/variants/base-multi0.3
    HF_HUB_OFFLINE=1 python bench/fewshot/variant_base.py --overlay bench/fewshot/base_posed.yaml  # -> .../base_posed

On a 2-core machine the build goes faster in two parts, one a core (a torch thread each), merged after:

    python bench/fewshot/variant_base.py --overlay X.yaml --part generators   # UNet, text encoder, ControlNet
    python bench/fewshot/variant_base.py --overlay X.yaml --part vae-clip     # VAE with its decoder step, CLIP
    python bench/fewshot/variant_base.py --overlay X.yaml --merge             # -> data/variants/X, measured
                                                                  # (--no-measure: each part's own figures)

Each part builds a whole base with the other part's models cut to one step; both train the same VAE (same
pool, seed and schedule), so the merge checks their encoders are equal (the generators learnt from its
latents) and takes the VAE and CLIP of one, the rest of the other. Every model is seeded where it is
built and every loss draws from its own generator, so the merged base is the one-process build weight for
weight (tests/base/test_base_flow.py); the text-to-image UNet, the longest training, just runs beside the
VAE's decoder step and CLIP instead of after them.

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


# What each part cuts to one step: the models the other part trains
PARTS = {
    "generators": {"vae": {"decoder_train": None}, "clip": {"train": {"steps": 1}}},
    "vae-clip": {"unet": {"train": {"steps": 1}}, "controlnet": {"train": {"steps": 1}}},
}
FROM_VAE_CLIP = ("vae", "clip")  # the merged base's folders taken from the vae-clip part; the rest from generators


def merge_parts(cfg, out: Path, measure: bool = True) -> dict:
    """The base in ``out`` from its two parts ``out``-generators and ``out``-vae-clip (``PARTS``), measured
    again; unmeasured, its ``base.json`` holds each part's own figures (the UNet's and the ControlNet's read
    through the generators' VAE, before the decoder step)."""
    import json
    import shutil

    from tasks.base.saved import measure_saved_base
    from tasks.common.io import atomic_dir

    gen, vc = (out.with_name(f"{out.name}-{part}") for part in PARTS)
    encoders = [_vae_encoder(part / "vae" / "diffusion_pytorch_model.safetensors") for part in (gen, vc)]
    if encoders[0].keys() != encoders[1].keys() or any(not encoders[0][k].equal(encoders[1][k]) for k in encoders[0]):
        raise ValueError(f"the VAE encoders of {gen} and {vc} differ: the generators learnt from other latents")
    report, other = (json.loads((part / "base.json").read_text()) for part in (gen, vc))
    report |= {key: other[key] for key in ("clip", "vae_decoder") if key in other}
    report["built_in_parts"] = {
        "generators_minutes": report["wall_minutes"],
        "vae_clip_minutes": other["wall_minutes"],
    }
    with atomic_dir(out) as tmp:
        shutil.copytree(gen, tmp, dirs_exist_ok=True)
        for name in FROM_VAE_CLIP:
            shutil.rmtree(tmp / name)
            shutil.copytree(vc / name, tmp / name)
        for log in (vc / "logs").glob("*.csv"):
            if log.stem.startswith(FROM_VAE_CLIP):
                shutil.copy(log, tmp / "logs" / log.name)
        (tmp / "base.json").write_text(json.dumps(report, indent=2))
    if not measure:
        return report
    cfg = cfg.model_copy(update={"out_dir": str(out), "metrics": str(out / "base.json")})
    return measure_saved_base(cfg)


def _vae_encoder(path: Path) -> dict:
    """The encoder's tensors of a saved VAE (all but the decoder's): what the latents depend on."""
    from safetensors.torch import load_file

    return {k: v for k, v in load_file(path).items() if not k.startswith(("decoder.", "post_quant_conv."))}


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
    ap.add_argument("--part", choices=list(PARTS), help="build one part of the base (the other's models cut)")
    ap.add_argument("--merge", action="store_true", help="merge the two parts built into the base's folder")
    ap.add_argument("--no-measure", action="store_true", help="--merge: copy the parts together, measure nothing")
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
    if args.merge:
        cfg = load_stage_config(BaseConfig, "base", args.params, merged(base, overlay))
        merge_parts(cfg, out, measure=not args.no_measure)
        print(f"{out}: merged from its parts; quality in {out / 'base.json'}")
        return
    if args.part:
        overlay, out = merged(overlay, PARTS[args.part]), out.with_name(f"{out.name}-{args.part}")
    overrides = {**merged(base, overlay), "out_dir": str(out), "metrics": f"{out}.json", "logs_dir": f"{out}-logs"}
    cfg = load_stage_config(BaseConfig, "base", args.params, overrides)
    report = build_toy_base(cfg)
    Path(cfg.metrics).replace(out / "base.json")
    print(f"{out}: built in {report['wall_minutes']} min; quality in {out / 'base.json'}")


if __name__ == "__main__":
    main()
