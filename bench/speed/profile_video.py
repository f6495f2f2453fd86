"""Where the seconds of one video go: frame 1, each window, each kind of UNet pass, the VAE, AdaIN.

    HF_HUB_OFFLINE=1 python bench/speed/profile_video.py                      # after make demo
    HF_HUB_OFFLINE=1 python bench/speed/profile_video.py --set mask_guidance_scale=0 --label "no mask guidance"

Loads the train stage's latest checkpoint as the generate stage does (``MaskMotionPipeline.from_pretrained``:
the project's sampler settings, the trained window), generates the first held-out sequence ``--repeats`` times
after one warm-up, and times every call of each network with forward hooks (this process, one thread per
``--threads``, the CPU clock ``time.perf_counter``). A video UNet call is named by what it is: the guided
pass (``2 x B`` rows, the masks on both halves), the mask-guidance pass (``B`` rows without masks), or the
passes batched into one call (``3 x B``). AdaIN and the noise arithmetic are timed by wrapping the sampler's
functions; what is left (the scheduler's step, tensor copies, Python) is "other". Each window is timed from
its first UNet call to its last step.

Appends one record per run to ``bench/speed/profile_results.jsonl`` and rewrites ``profile_results.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).parent
RESULTS = HERE / "profile_results.jsonl"


class Clock:
    """Seconds and calls per label, summed over a run."""

    def __init__(self):
        self.seconds, self.calls = defaultdict(float), defaultdict(int)

    @contextmanager
    def timing(self, label: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(label, time.perf_counter() - t0)

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] += seconds
        self.calls[label] += 1


def video_unet_label(args, kwargs, batch: int) -> str:
    """What a video UNet call is, from its rows (B = videos) and the rows its masks cover."""
    rows = args[0].shape[0] // batch
    masks = args[3] if len(args) > 3 else kwargs.get("masks")
    masked = 0 if masks is None else masks.shape[0] // batch
    kind = {
        (3, 2): "both guidance halves + rows without masks",
        (2, 2): "classifier-free guidance's two halves",
        (2, 1): "mask guidance: rows with and without masks",
        (1, 1): "one row set, no guidance",
        (1, 0): "rows without masks (a call of their own)",
    }.get((rows, masked), f"{masked} of {rows} row sets with masks")
    return f"video UNet: {kind} ({rows}B)"


class Windows:
    """Seconds of each motion window: from its first video UNet call to the end of its last step."""

    def __init__(self):
        self.seconds, self.open_since = defaultdict(float), None

    def unet_called(self) -> None:
        if self.open_since is None:
            self.open_since = time.perf_counter()

    def on_step(self, info: dict) -> None:  # the pipeline's callback
        if info["step"] == info["num_steps"] - 1:
            self.seconds[info["chunk"]] += time.perf_counter() - self.open_since
            self.open_since = None


def instrument(pipe, clock: Clock, windows: Windows, batch: int) -> None:
    """Forward hooks that time every call of each network of ``pipe`` into ``clock``."""
    started = {}

    def hook(module, label):
        def pre(mod, args, kwargs):
            if mod is pipe.video_unet:
                windows.unet_called()
            started[id(mod)] = (time.perf_counter(), label(args, kwargs) if callable(label) else label)

        def post(mod, args, kwargs, out):
            t0, name = started.pop(id(mod))
            clock.add(name, time.perf_counter() - t0)

        module.register_forward_pre_hook(pre, with_kwargs=True)
        module.register_forward_hook(post, with_kwargs=True)

    hook(pipe.video_unet, lambda args, kwargs: video_unet_label(args, kwargs, batch))
    hook(pipe.text_encoder, "text encoder")
    hook(pipe.vae.encoder, "VAE encode")
    hook(pipe.vae.decoder, "VAE decode")
    if pipe.base_unet is not None:
        hook(pipe.base_unet, "frame 1: 2-D UNet")
    if pipe.controlnet is not None:
        hook(pipe.controlnet, "frame 1: ControlNet")


def wrap_sampler_functions(clock: Clock) -> None:
    """Time the sampler's pure-tensor pieces (AdaIN, noise mixing) where ``model.windows`` calls them."""
    import model.windows as windows

    for name, label in (
        ("adain_match", "AdaIN"),
        ("regional_adain", "AdaIN"),
        ("mix_shared_noise", "noise"),
        ("randn", "noise"),
    ):
        function = getattr(windows, name)

        def timed(*args, _function=function, _label=label, **kwargs):
            with clock.timing(_label):
                return _function(*args, **kwargs)

        setattr(windows, name, timed)


def profile(args) -> dict:
    import torch

    from maskmotion import MaskMotionPipeline
    from tasks.train.validation import first_sequence

    torch.set_num_threads(args.threads)
    pipe = MaskMotionPipeline.from_pretrained(args.checkpoint)
    overrides = dict(parse_setting(s) for s in args.set)
    prompt, masks = first_sequence(args.manifest)
    clock, windows = Clock(), Windows()
    instrument(pipe, clock, windows, batch=1)
    wrap_sampler_functions(clock)
    pipe(prompt, masks, seed=args.seed, **overrides)  # warm-up: allocator, oneDNN kernels
    clock.seconds.clear(), clock.calls.clear()
    windows.open_since = None  # the warm-up has no callback: its windows never closed
    totals = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        pipe(prompt, masks, seed=args.seed, callback=windows.on_step, **overrides)
        totals.append(time.perf_counter() - t0)
    n = args.repeats
    parts = {label: round(s / n, 3) for label, s in sorted(clock.seconds.items(), key=lambda kv: -kv[1])}
    parts["other (scheduler, copies, Python)"] = round(statistics.mean(totals) - sum(parts.values()), 3)
    return {
        "label": args.label,
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} CPU, {args.threads} thread(s)",
        "checkpoint": os.path.relpath(pipe.checkpoint.resolve(), ROOT),  # no machine's path in the results
        "frames": int(masks.shape[0]),
        "size": list(masks.shape[1:]),
        "settings": {**pipe.sampler.to_dict(), **overrides},
        "seconds_per_video": round(statistics.median(totals), 3),
        "seconds_runs": [round(t, 3) for t in totals],
        "parts": parts,
        "calls": {label: clock.calls[label] // n for label in clock.calls},
        "windows": {str(k): round(s / n, 3) for k, s in sorted(windows.seconds.items())},
    }


def parse_setting(text: str) -> tuple[str, object]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--set {text!r}: write KEY=VALUE (a SamplerSettings field)")
    return key, yaml.safe_load(value)


def write_markdown(records: list[dict], path: Path) -> None:
    lines = [
        "# Where the seconds of one video go",
        "",
        "Written by `python bench/speed/profile_video.py` (module docstring: what is timed and how). One table per",
        "run, newest first: seconds per video (median of the runs after a warm-up) and each part's mean seconds",
        "per video, with its calls.",
        "",
    ]
    for r in reversed(records):
        lines += [
            f"## {r['label']} ({r['date']}, {r['machine']})",
            "",
            f"{r['frames']} frames at {r['size'][0]}x{r['size'][1]}, {r['settings']['num_inference_steps']} steps, "
            f"window {r['settings']['window']}, mask guidance {r['settings']['mask_guidance_scale']}: "
            f"**{r['seconds_per_video']} s per video** (runs: {', '.join(map(str, r['seconds_runs']))}); "
            f"windows: {', '.join(f'{s} s' for s in r['windows'].values())}.",
            "",
            "| part | s / video | share | calls |",
            "|---|---|---|---|",
        ]
        total = sum(r["parts"].values())
        for label, seconds in r["parts"].items():
            lines.append(f"| {label} | {seconds} | {100 * seconds / total:.0f}% | {r['calls'].get(label, '')} |")
        lines.append("")
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "data" / "checkpoints")
    ap.add_argument("--manifest", type=Path, default=ROOT / "data" / "raw" / "toy" / "heldout" / "manifest.yaml")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE: a sampler setting for this run")
    ap.add_argument("--label", default="defaults")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-save", action="store_true", help="print only")
    args = ap.parse_args(argv)
    record = profile(args)
    print(json.dumps(record, indent=1))
    if not args.no_save:
        with RESULTS.open("a") as f:
            f.write(json.dumps(record) + "\n")
        write_markdown([json.loads(line) for line in RESULTS.read_text().splitlines()], HERE / "profile_results.md")


if __name__ == "__main__":
    main()
