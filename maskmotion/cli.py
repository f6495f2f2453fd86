"""The ``maskmotion`` command: ``maskmotion <verb> [options]``; ``maskmotion <verb> --help`` for each.

generate       a prompt and a mask folder (or a motion spec) -> video.mp4, video.gif, sheet.png
masks          a motion spec (YAML) -> mask PNGs, listed in a sequences manifest
studio         the motion studio web page (127.0.0.1:7860)
apply-profile  merge a profile (profiles/*.yaml) over params.yaml
lookalike      download-lookalike SD1.4 / ControlNet / open_clip / SAM folders (random weights)
"""

from __future__ import annotations

import flows  # noqa: F401  (the project's environment defaults, set before torch loads)

# isort: split
import argparse
import sys
from pathlib import Path

VERBS = {
    "generate": ("maskmotion.cli:generate_main", "a prompt and a mask folder (or a motion spec) -> a video"),
    "masks": ("tasks.masks.sequences:main", "a motion spec (YAML) -> mask PNGs + a sequences manifest"),
    "studio": ("maskmotion.cli:studio_main", "the motion studio web page (127.0.0.1:7860)"),
    "apply-profile": ("maskmotion.cli:apply_profile_main", "merge a profile over params.yaml (in place)"),
    "lookalike": ("maskmotion.tools.lookalike:main", "download-lookalike weight folders, random weights"),
}
EXAMPLES = """\
examples (after make demo, from the repository root):
  maskmotion masks examples/two_objects.yaml --out data/sequences/two --gif two.gif
  maskmotion generate "a red circle runs across a green meadow" --masks data/sequences/two --out my-video
  maskmotion generate --spec examples/two_prompts.yaml --seed 1 --out my-video
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in VERBS:
        lines = ["usage: maskmotion <verb> [options]   (maskmotion <verb> --help)", "", "verbs:"]
        lines += [f"  {verb:<14} {text}" for verb, (_, text) in VERBS.items()]
        print("\n".join([*lines, "", EXAMPLES]), file=sys.stdout if argv[:1] in (["-h"], ["--help"]) else sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"maskmotion: unknown verb {argv[0]!r}", file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    module, _, function = VERBS[argv[0]][0].partition(":")
    entry = getattr(__import__(module, fromlist=[function]), function)
    return entry(argv[1:]) or 0


# ---- generate ----------------------------------------------------------------------------------


def generate_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="maskmotion generate",
        description="Generate a video whose moving object follows a mask sequence, with a trained model and the "
        "settings it records (the generate stage's: the same prompt, masks and seed give make demo's video).",
        epilog="examples:\n"
        '  maskmotion generate "a red circle runs across a green meadow" --masks data/raw/toy/heldout/heldout-000\n'
        "  maskmotion generate --spec examples/two_prompts.yaml --seed 1 --out two --formats mp4,sheet",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("prompt", nargs="?", help="the prompt (the scene's); default: the spec's prompt")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--masks", type=Path, help="a folder of mask PNGs (0000.png, 0001.png, ...)")
    source.add_argument("--spec", type=Path, help="a motion spec (YAML, tasks/masks/sequences.py), drawn first")
    parser.add_argument(
        "--model",
        default="data/checkpoints",
        help="a checkpoint, the train stage's folder, or a folder save_pretrained wrote (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument("--out", type=Path, default=Path("video"), help="folder to write into (default: %(default)s)")
    parser.add_argument(
        "--formats", default="mp4,gif,sheet", help="any of mp4, gif, sheet, npy (default: %(default)s)"
    )
    parser.add_argument("--steps", type=int, help="denoising steps (default: the model's settings)")
    parser.add_argument("--fps", type=float, default=8.0, help="default: %(default)s")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args(argv)
    formats = {f.strip() for f in args.formats.split(",") if f.strip()}
    if not formats or formats - {"mp4", "gif", "sheet", "npy"}:
        parser.error(f"--formats: any of mp4, gif, sheet, npy, got {args.formats!r}")
    prompt, masks, object_prompts, object_masks = generation_inputs(args)
    if not prompt:
        parser.error("no prompt: give one, or a spec with a prompt")
    frames = generate_video(args, prompt, masks, object_prompts, object_masks)
    written = write_outputs(args.out, frames, masks, formats, args.fps)
    print(f"{args.out}: {len(frames)} frames of {frames.shape[2]}x{frames.shape[1]}: {', '.join(written)}")
    return 0


def generation_inputs(args) -> tuple[str | None, object, list[str] | None, object]:
    """The prompt, the masks bool (F, H, W) and, for a spec whose objects carry prompts, theirs and each
    object's masks (K, F, H, W)."""
    import numpy as np

    from tasks.common.io import read_mask_pngs
    from tasks.masks.sequences import build_objects, load_spec

    if args.masks is not None:
        return args.prompt, read_mask_pngs(args.masks), None, None
    spec = load_spec(args.spec)
    objects = build_objects(spec, args.spec.parent)
    object_prompts = list(spec.object_prompts) if spec.object_prompts is not None else None
    return (
        args.prompt or spec.prompt,
        np.logical_or.reduce(objects),
        object_prompts,
        objects if object_prompts else None,
    )


def generate_video(args, prompt: str, masks, object_prompts, object_masks):
    """The model's video, uint8 (F, H, W, 3), a progress bar over chunks x steps."""
    from tqdm import tqdm

    from maskmotion import MaskMotionPipeline
    from tasks.common.device import resolve_device

    pipe = MaskMotionPipeline.from_pretrained(args.model, device=resolve_device(args.device, "--device"))
    overrides = {} if args.steps is None else {"num_inference_steps": args.steps}
    bar = tqdm(desc="generate", unit="step")

    def progress(state: dict) -> None:
        bar.total = state["num_chunks"] * state["num_steps"]
        bar.update(1)
        bar.set_postfix(chunk=f"{state['chunk'] + 1}/{state['num_chunks']}")

    try:
        return pipe(
            prompt,
            masks,
            seed=args.seed,
            object_prompts=object_prompts,
            object_masks=object_masks,
            callback=progress,
            **overrides,
        ).frames
    finally:
        bar.close()


def write_outputs(folder: Path, frames, masks, formats: set[str], fps: float) -> list[str]:
    """``video.mp4``, ``video.gif``, ``sheet.png`` (the mask outlined), ``frames.npy`` as asked; their names."""
    import numpy as np

    from tasks.common.io import write_rgb_png
    from tasks.common.video import write_gif, write_mp4
    from tasks.common.visualize import contact_sheet

    folder.mkdir(parents=True, exist_ok=True)
    writers = {
        "mp4": ("video.mp4", lambda path: write_mp4(path, frames, fps)),
        "gif": ("video.gif", lambda path: write_gif(path, frames, fps)),
        "sheet": (
            "sheet.png",
            lambda path: write_rgb_png(path, contact_sheet([frames], masks=[masks], max_frames=len(frames))),
        ),
        "npy": ("frames.npy", lambda path: np.save(path, frames)),
    }
    written = []
    for kind in ("mp4", "gif", "sheet", "npy"):
        if kind in formats:
            name, write = writers[kind]
            write(folder / name)
            written.append(name)
    return written


# ---- studio -------------------------------------------------------------------------------------


def studio_main(argv: list[str] | None = None) -> int:
    """``python -m studio`` (its options: studio/settings.py), under this command's name."""
    from studio.__main__ import main as serve

    if {"-h", "--help"} & set(argv or []):
        print(
            "maskmotion studio [options]: serve the motion studio (draw a mask motion, generate it, watch it) with "
            "the latest checkpoint\nexamples:\n  maskmotion studio\n  maskmotion studio --profile profiles/sd14.yaml "
            "--port 7861\n"
        )
    return serve(argv) or 0


# ---- apply-profile -----------------------------------------------------------------------------


def apply_profile_main(argv: list[str] | None = None) -> int:
    from tasks.common.params import DEFAULT_PARAMS, ConfigError, apply_profile

    parser = argparse.ArgumentParser(
        prog="maskmotion apply-profile",
        description="Merge a profile's sections key by key over params.yaml, in place (a key params.yaml lacks is "
        "refused); `git restore params.yaml` undoes it.",
        epilog="example:\n  maskmotion apply-profile profiles/sd14.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("profile", type=Path)
    parser.add_argument("--params", type=Path, default=Path(DEFAULT_PARAMS), help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        apply_profile(args.params, args.profile)
    except ConfigError as err:
        print(f"apply-profile: {err}", file=sys.stderr)
        return 2
    print(f"{args.params}: {args.profile} applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
