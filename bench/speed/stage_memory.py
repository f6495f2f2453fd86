"""Each stage's peak memory at SD1.4's full size on the CPU: train (with its validation video) and generate.

    HF_HUB_OFFLINE=1 python bench/speed/stage_memory.py                                   # this checkout
    git worktree add /tmp/before <commit>
    HF_HUB_OFFLINE=1 python bench/speed/stage_memory.py --code /tmp/before --label before  # another commit's code

The weights are ``maskmotion lookalike --size full`` folders (SD1.4 and its seg ControlNet at their real
sizes, random weights: they cost what real ones cost), written once under ``data/bench/sd14-full``. The
data are three 8-frame toy videos at 128 x 128, ingested and masked (fallback) as the stages do; then the
train stage runs 2 steps with its validation video (2 DDIM steps, window 8) and the generate stage makes
one 8-frame video (2 steps), each as the plain task function (``tasks.train.stage.train``,
``tasks.generate.stage.generate``) in a process of its own, under the sd14 profile's settings
(``profiles/sd14.yaml``). Peak memory: the process's peak resident set (``/usr/bin/time``'s maximum
resident set size: weights, activations, Python and libraries). Appends to ``stage_memory_results.jsonl``
and rewrites ``stage_memory_results.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
RESULTS = HERE / "stage_memory_results.jsonl"
SIZE, FRAMES = 128, 8
OVERRIDE = {
    "ingest": {"height": SIZE, "width": SIZE, "n_frames": FRAMES},
    "masks": {"method": "fallback"},
    "train": {"steps": 2, "window": FRAMES, "checkpoint_every": 2, "validation_steps": 2, "batch_size": 1},
    "generate": {"num_inference_steps": 2, "seeds": [0], "window": FRAMES},
}
STAGES = {
    "train": ("tasks.train.config", "TrainConfig", "tasks.train.stage", "train"),
    "generate": ("tasks.generate.config", "GenerateConfig", "tasks.generate.stage", "generate"),
}


def lookalike_weights(folder: Path, variants: str) -> Path:
    """SD1.4 and its seg ControlNet, full size, random weights (written once)."""
    if not (folder / "sd-controlnet-seg" / "config.json").is_file():
        cmd = [sys.executable, "-m", "maskmotion.tools.lookalike", "--out", str(folder), "--size", "full"]
        cmd += ["--variants", variants, "--parts", "sd14,controlnet", "--force"]
        subprocess.run(cmd, cwd=ROOT, check=True)
    return folder


def write_params(work: Path, weights: Path, code: Path) -> Path:
    """``code``'s params.yaml with its sd14 profile and the override applied, every path absolute."""
    from tasks.common.params import apply_profile

    params = work / "params.yaml"
    params.write_text((code / "params.yaml").read_text())
    apply_profile(params, code / "profiles" / "sd14.yaml")
    settings = yaml.safe_load(params.read_text())
    sd, cn = str(weights / "stable-diffusion-v1-4"), str(weights / "sd-controlnet-seg")
    sequences = work / "sequences"
    paths = {
        "ingest": {"manifest": str(work / "videos" / "manifest.yaml"), "input_dir": str(work / "videos")},
        "train": {"base_dir": sd, "controlnet_dir": cn, "validation_sequences": str(sequences / "manifest.yaml")},
        "generate": {"controlnet_dir": cn, "sequences": str(sequences)},
    }
    for section, values in [*OVERRIDE.items(), *paths.items()]:
        settings[section].update(values)
    settings["ingest"]["tokenizer"] = str(weights / "stable-diffusion-v1-4" / "tokenizer")
    for section in ("ingest", "masks", "train", "generate"):  # every output under work/
        for key, value in settings[section].items():
            if isinstance(value, str) and value.startswith(("data/", "metrics/")):
                settings[section][key] = str(work / value)
    params.write_text(yaml.safe_dump(settings, sort_keys=False))
    return params


def write_data(work: Path, params: Path) -> None:
    """Three toy videos, ingested and masked; one held-out mask sequence (a square sliding right)."""
    import numpy as np

    from tasks.common.io import write_mask_pngs
    from tasks.common.params import load_stage_config
    from tasks.ingest.stage import IngestConfig, ingest
    from tasks.masks.stage import MasksConfig, run_masks
    from tasks.toyworld.stage import ToyWorldConfig, render_toyworld

    render_toyworld(ToyWorldConfig(n_train=3, n_heldout=0, n_frames=FRAMES, size=SIZE, out_dir=str(work / "videos")))
    ingest(load_stage_config(IngestConfig, "ingest", params))
    run_masks(load_stage_config(MasksConfig, "masks", params))
    masks = np.zeros((FRAMES, SIZE, SIZE), bool)
    for i in range(FRAMES):
        masks[i, 40:88, 8 + 8 * i : 56 + 8 * i] = True
    write_mask_pngs(masks, work / "sequences" / "slide")
    manifest = {"sequences": [{"id": "slide", "masks": "slide", "prompt": "a person walks along a road"}]}
    (work / "sequences" / "manifest.yaml").write_text(yaml.safe_dump(manifest))


def peak_gb(stage: str, params: Path, code: Path, work: Path) -> tuple[float, float]:
    """Run ``stage``'s task function in a process of its own with ``code`` first on its path; its peak
    resident set (GB) and wall seconds."""
    config_module, config_class, stage_module, function = STAGES[stage]
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(code)!r})
        from {config_module} import {config_class}
        from {stage_module} import {function}
        from tasks.common.params import load_stage_config
        t0 = time.perf_counter()
        {function}(load_stage_config({config_class}, {stage!r}, {str(params)!r}))
        print("SECONDS", time.perf_counter() - t0)
    """)
    cmd = ["/usr/bin/time", "-f", "PEAK_KB %M", sys.executable, "-c", script]
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{stage} failed:\n{done.stderr[-3000:]}")
    peak = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_KB"))
    seconds = next(float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("SECONDS"))
    return round(peak / 2**20, 2), round(seconds, 1)


def write_markdown(records: list[dict]) -> None:
    lines = [
        "# Each stage's peak memory at SD1.4's full size on the CPU",
        "",
        "Written by `python bench/speed/stage_memory.py` (its docstring: weights, data, what runs). SD1.4 and its",
        f"seg ControlNet at full size with random weights, {SIZE} x {SIZE}, {FRAMES} frames; train: 2 steps and its",
        "validation video; generate: one video, 2 steps. Peak resident set of the stage's process.",
        "",
        "| code | date | machine | weights files | train + validation GB | generate GB | train s | generate s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['label']} ({r['commit']}) | {r['date']} | {r['machine']} | {r['variants']} | {r['train_gb']} | "
            f"{r['generate_gb']} | {r['train_seconds']} | {r['generate_seconds']} |"
        )
    (HERE / "stage_memory_results.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--code", type=Path, default=ROOT, help="the checkout whose stages run (default: this one)")
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--variants", default="fp32", choices=["fp32", "fp16"], help="SD1.4's weight files")
    ap.add_argument("--work", type=Path, default=ROOT / "data" / "bench" / "stage_memory")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    weights = lookalike_weights(ROOT / "data" / "bench" / f"sd14-full-{args.variants}", args.variants)
    work = args.work / args.label.replace(" ", "-")
    work.mkdir(parents=True, exist_ok=True)
    params = write_params(work, weights, args.code)
    if not (work / "sequences" / "manifest.yaml").is_file():
        write_data(work, params)
    for folder in ("checkpoints", "outputs"):  # a fresh training (never resumed) and fresh videos
        shutil.rmtree(work / "data" / folder, ignore_errors=True)
    train_gb, train_s = peak_gb("train", params, args.code, work)
    print(f"train: {train_gb} GB, {train_s} s", flush=True)
    generate_gb, generate_s = peak_gb("generate", params, args.code, work)
    print(f"generate: {generate_gb} GB, {generate_s} s", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.code, capture_output=True, text=True)
    record = {
        "label": args.label,
        "commit": commit.stdout.strip(),
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} CPU",
        "variants": args.variants,
        "train_gb": train_gb,
        "generate_gb": generate_gb,
        "train_seconds": train_s,
        "generate_seconds": generate_s,
    }
    with RESULTS.open("a") as f:
        f.write(json.dumps(record) + "\n")
    write_markdown([json.loads(line) for line in RESULTS.read_text().splitlines()])


if __name__ == "__main__":
    main()
