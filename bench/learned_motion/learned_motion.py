"""Learned motion inside a drawn mask: held-out sets of coarse, rigid masks on new paths, and their scores.

The paper's use (supplement, section I): a person draws ONE mask and moves it along a path; the motion
a mask cannot show (a turn, a squash) must come from the few-shot clips. For each motion that lives
inside the object (``spin``, ``squash``), ``sets`` writes sequences made from specs in the project's
spec format (``tasks/masks/sequences.py``, which the studio loads too): one coarse mask (the shape
unturned and grown, an ellipse or a box, larger than the object) moved along a path the training
clips never took (right to left, diagonal, an arc, a zigzag). Beside each: the prompt, the true video
(the object moving along the same path with the motion's pattern inside), its true silhouettes and
first frame, in a sequences manifest that ``generate.sequences`` reads.

``score`` scores videos (a generate stage's outputs folder) on such a set, and ``truth`` scores the
true videos through a checkpoint's VAE: the ceiling every figure is read against. Columns: motion
fidelity (``tasks/evaluate/motion.py``), placement (centroid error against the drawn mask's, px),
containment (share of the object inside the drawn mask) and IoU against the true silhouettes; the
object is found by its colour, never from the input mask.

    python bench/learned_motion/learned_motion.py sets --out data/learned_motion
    python bench/learned_motion/learned_motion.py truth --sets data/learned_motion/spin --base base/toy
    python bench/learned_motion/learned_motion.py score --sets data/learned_motion/spin --outputs data/outputs
    python bench/learned_motion/learned_motion.py source --sets data/learned_motion/spin \
        --training data/variants/spin/raw
    python bench/learned_motion/learned_motion.py training --clips data/variants/spin/clips \
        --out data/learned_motion/spin-training

``training`` writes the few-shot clips themselves as such a set (their own paths, one rigid mask each):
whether a model turns the object where it was trained at all.

``source`` writes the set again (same ids, prompts, first frames) with each sequence's masks replaced by
a training clip's own silhouettes: how the paper's comparison fed the training-free peers, which copy
a source video's motion, and its place. Score such videos with ``--sets`` the drawn set: placement is
read against the drawn masks, the motion against the truth.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tasks.common.io import atomic_dir, read_mask_pngs, write_mask_pngs, write_rgb_png  # noqa: E402
from tasks.common.toy import (  # noqa: E402
    GROUNDS,
    ToyObject,
    pattern_params,
    random_motion_params,
    render_objects,
)
from tasks.common.toy_palette import detect_object  # noqa: E402
from tasks.evaluate.motion import drawn_mask_scores, fidelity, motion_series, reference  # noqa: E402
from tasks.masks.sequences import SequenceSpec, build_sequence, path_centres  # noqa: E402

SIZE, FRAMES = 64, 16
# (colour, shape, ground) of each held-out sequence, and how its mask is drawn and moved: paths the
# training clips (left to right, level or hopping) never took
HELD_OUT = {
    "spin": [
        (
            ("orange", "square", "sand"),
            {"mask": "toy:square", "grow": 2},
            {"type": "line", "start": [52, 24], "end": [12, 24]},
        ),
        (
            ("purple", "triangle", "grass"),
            {"mask": "toy:ellipse", "scale": 1.35},
            {"type": "line", "start": [12, 12], "end": [50, 50]},
        ),
        (
            ("pink", "star", "water"),
            {"mask": "toy:box", "scale": 1.3},
            {"type": "arc", "center": [32, 32], "radius": 18, "start_deg": 90, "end_deg": 270},
        ),
        (
            ("yellow", "diamond", "rock"),
            {"mask": "toy:diamond", "grow": 3},
            {"type": "keyframes", "points": [[0, 52, 48], [5, 36, 20], [10, 24, 46], [15, 12, 22]]},
        ),
    ],
    "squash": [
        (
            ("red", "circle", "sand"),
            {"mask": "toy:circle", "grow": 2},
            {"type": "line", "start": [52, 52], "end": [12, 52]},
        ),
        (
            ("purple", "square", "water"),
            {"mask": "toy:ellipse", "scale": 1.35},
            {"type": "line", "start": [14, 40], "end": [50, 52]},
        ),
        (
            ("orange", "diamond", "grass"),
            {"mask": "toy:box", "scale": 1.3},
            {"type": "line", "start": [50, 44], "end": [14, 36]},
        ),
        (
            ("pink", "star", "rock"),
            {"mask": "toy:star", "grow": 3},
            {"type": "keyframes", "points": [[0, 14, 50], [8, 40, 50], [15, 28, 50]]},
        ),
    ],
}
RADIUS = 8.5  # the objects' half-size, pixels (the toy world draws 6.4-10.9)
HOP = {"height": 14.0, "count": 2}  # squash: the pattern's two hops, drawn on the mask's path


def spec_of(motion: str, mask: dict, path: dict) -> dict:
    """The spec (``tasks.masks.sequences``) of one drawn sequence: one rigid, coarse mask along ``path``."""
    scale = mask.get("scale", 1.0)
    obj = {"mask": mask["mask"], "radius": RADIUS * scale, "grow": mask.get("grow", 0), "path": path}
    if motion == "squash":
        obj["hop"] = HOP
    return {"size": [SIZE, SIZE], "n_frames": FRAMES, "objects": [obj]}


def write_sequence(
    folder: Path, sid: str, prompt: str, drawn: np.ndarray, truth: np.ndarray, frames: np.ndarray, **fields
) -> dict:
    """One sequence of a drawn set in ``folder``: its drawn masks, true silhouettes, true video and first
    frame; returns its manifest row (``fields`` appended: colour, shape, ground, motion, ...)."""
    write_mask_pngs(drawn, folder / sid)
    write_mask_pngs(truth, folder / "truth" / sid)
    (folder / "first_frames").mkdir(exist_ok=True)
    write_rgb_png(folder / "first_frames" / f"{sid}.png", frames[0])
    np.save(folder / "truth" / f"{sid}.npy", frames)
    return {
        "id": sid,
        "prompt": prompt,
        "masks": sid,
        "first_frame": f"first_frames/{sid}.png",
        "truth_masks": f"truth/{sid}",
        "truth_frames": f"truth/{sid}.npy",
        **fields,
    }


def write_sets(out: Path, seed: int = 7) -> None:
    """Every motion's held-out set under ``out/<motion>/``: spec, drawn masks, truth, first frame, manifest."""
    for motion, rows in HELD_OUT.items():
        with atomic_dir(out / motion) as folder:
            manifest = []
            for i, ((colour, shape, ground), mask, path) in enumerate(rows):
                sid = f"drawn-{motion}-{i:03d}"
                spec = spec_of(motion, mask, path)
                (folder / "specs").mkdir(exist_ok=True)
                (folder / "specs" / f"{sid}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
                drawn = build_sequence(SequenceSpec.model_validate(spec))
                rng = np.random.default_rng([seed, i, len(motion)])
                params = pattern_params(motion, random_motion_params(motion, rng))
                centres = path_centres(SequenceSpec.model_validate(spec).objects[0].path, FRAMES)
                if motion == "squash":  # the hop as the spec draws it (tasks.masks.sequences.render_object)
                    u = np.linspace(0.0, 1.0, FRAMES)
                    centres[:, 1] -= HOP["height"] * np.abs(np.sin(np.pi * HOP["count"] * u))
                obj = ToyObject(colour, shape, RADIUS, motion, params)
                frames, truth = render_objects([obj], ground, SIZE, FRAMES, rng, paths=[centres])
                manifest.append(
                    write_sequence(
                        folder,
                        sid,
                        obj.prompt(ground),
                        drawn,
                        truth[0],
                        frames,
                        spec=f"specs/{sid}.yaml",
                        colour=colour,
                        shape=shape,
                        ground=ground,
                        motion=motion,
                    )  # fmt: skip
                )
            (folder / "manifest.yaml").write_text(yaml.safe_dump({"sequences": manifest}, sort_keys=False))
        print(f"{out / motion}: {len(rows)} drawn sequences")


def write_source_set(sets: Path, training: Path) -> Path:
    """``sets`` again beside it (``<sets>-source``), each sequence's masks a training clip's silhouettes
    (``training``: a toyworld folder; clip i mod n for sequence i)."""
    clips = yaml.safe_load((training / "manifest.yaml").read_text())["videos"]
    out = sets.parent / f"{sets.name}-source"
    with atomic_dir(out) as folder:
        rows = []
        for i, row in enumerate(read_set(sets)):
            clip = clips[i % len(clips)]
            write_mask_pngs(read_mask_pngs(training / clip["truth_masks"])[:FRAMES], folder / row["id"])
            (folder / "first_frames").mkdir(exist_ok=True)
            (folder / row["first_frame"]).write_bytes((sets / row["first_frame"]).read_bytes())
            rows.append({**{k: row[k] for k in ("id", "prompt", "masks", "first_frame")}, "source_clip": clip["id"]})
        (folder / "manifest.yaml").write_text(yaml.safe_dump({"sequences": rows}, sort_keys=False))
    return out


def write_training_set(clips_dir: Path, out: Path, seed: int = 0) -> Path:
    """The few-shot clips themselves as a drawn set (``out``): each clip's frame 1 and true video, its masks
    replaced by one rigid coarse mask carried along the clip's own path (``tasks.train.coarse``'s
    ``rigid``, what the coarse-mask training windows show). A model that cannot turn the object here,
    where it was trained, has not learnt the turn; one that turns it here but not on a new path has not
    learnt to carry it elsewhere."""
    from tasks.contract import read_clip_manifest
    from tasks.train.coarse import coarsen

    rng = np.random.default_rng(seed)
    with atomic_dir(out) as folder:
        rows = []
        for clip in read_clip_manifest(clips_dir).itertuples():
            data = np.load(clips_dir / clip.clip)
            frames, truth = data["frames"][:FRAMES], data["truth_masks"][:FRAMES] > 0
            fields = {k: getattr(clip, k) for k in ("colour", "shape", "ground", "motion")}
            drawn = coarsen(truth, "rigid", rng)
            rows.append(write_sequence(folder, f"training-{clip.id}", clip.prompt, drawn, truth, frames, **fields))
        (folder / "manifest.yaml").write_text(yaml.safe_dump({"sequences": rows}, sort_keys=False))
    return out


def training_reference(motion: str, n: int = 6, seed: int = 0) -> float:
    """The motion's figure on training-like clips (the pattern's, as the toyworld stage renders them)."""
    rng = np.random.default_rng(seed)
    shapes = ["square", "triangle", "star", "diamond"]
    clips = []
    for i in range(n):
        shape = shapes[i % len(shapes)]
        params = pattern_params(motion, random_motion_params(motion, rng))
        obj = ToyObject("red", shape, float(rng.uniform(6.4, 10.9)), motion, params)
        clips.append((render_objects([obj], list(GROUNDS)[i % 4], SIZE, FRAMES, rng)[1][0], shape))
    return reference(clips, motion)


def references(rows: list[dict]) -> dict[str, float]:
    """Each motion of ``rows``' training figure, measured once."""
    return {m: training_reference(m) for m in {r["motion"] for r in rows}}


def score_video(frames: np.ndarray, row: dict, folder: Path, ref: float) -> dict:
    """The learned-motion columns of one video on a drawn sequence: frames uint8 (F, H, W, 3)."""
    colour, shape, motion = row["colour"], row["shape"], row["motion"]
    detected = [detect_object(f) for f in frames]
    found = np.stack([region & (name == colour) for name, region in detected])
    drawn, truth = read_mask_pngs(folder / row["masks"]), read_mask_pngs(folder / row["truth_masks"])
    truth_series = motion_series(truth, shape, motion)
    errors = [
        np.hypot(*(np.argwhere(f).mean(0) - np.argwhere(d).mean(0)))
        for f, d in zip(found, drawn)
        if f.any() and d.any()
    ]
    return {
        "sequence": row["id"],
        "motion": motion,
        "fidelity": fidelity(motion_series(found, shape, motion), shape, motion, ref, truth_series),
        "centroid_error_px": float(np.mean(errors)) if errors else float("nan"),
        **drawn_mask_scores(found, drawn, truth),
    }


def read_set(sets: Path) -> list[dict]:
    return yaml.safe_load((sets / "manifest.yaml").read_text())["sequences"]


def truth_rows(sets: Path, base: Path | None) -> list[dict]:
    """Scores of the true videos as rendered and, with a base folder, through its VAE (``D(E(x))``,
    the posterior's mode): what a right frame can score once decoded."""
    import torch

    vae = None
    if base is not None:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(base / "vae", dtype=torch.float32).eval()
    out = []
    rows = read_set(sets)
    refs = references(rows)
    for row in rows:
        frames = np.load(sets / row["truth_frames"])
        ref = refs[row["motion"]]
        out.append({"frames": "rendered", **score_video(frames, row, sets, ref)})
        if vae is not None:
            images = torch.as_tensor(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            with torch.no_grad():
                recon = vae.decode(vae.encode(images).latent_dist.mode()).sample.clamp(-1, 1)
            through = ((recon + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
            out.append({"frames": "through the VAE", **score_video(through, row, sets, ref)})
    return out


def output_rows(sets: Path, outputs: Path) -> list[dict]:
    """Scores of the generated videos in ``outputs`` (a generate stage's folder) on the set ``sets``."""
    from tasks.contract import read_outputs_manifest

    rows = {r["id"]: r for r in read_set(sets)}
    refs = references(list(rows.values()))
    out = []
    for video in read_outputs_manifest(outputs).itertuples():
        row = rows[video.sequence]
        frames = np.load(outputs / video.video_id / "frames.npy")
        out.append({"frames": "generated", "seed": video.seed, **score_video(frames, row, sets, refs[row["motion"]])})
    return out


COLUMNS = ["fidelity", "centroid_error_px", "containment", "iou_truth"]


def summary(rows: list[dict]) -> str:
    """A markdown table: the mean of each column per (motion, frames)."""
    import pandas as pd

    table = pd.DataFrame(rows).groupby(["motion", "frames"])[COLUMNS].mean().round(3)
    return table.to_markdown()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("sets").add_argument("--out", type=Path, default=ROOT / "data" / "learned_motion")
    truth = sub.add_parser("truth")
    truth.add_argument("--sets", type=Path, required=True)
    truth.add_argument("--base", type=Path, help="a base folder whose VAE the true videos pass through")
    score = sub.add_parser("score")
    score.add_argument("--sets", type=Path, required=True)
    score.add_argument("--outputs", type=Path, required=True)
    source = sub.add_parser("source")
    source.add_argument("--sets", type=Path, required=True)
    source.add_argument("--training", type=Path, required=True, help="the few-shot set's toyworld folder")
    training = sub.add_parser("training")
    training.add_argument("--clips", type=Path, required=True, help="the few-shot set's clips (an ingest folder)")
    training.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.command == "sets":
        write_sets(args.out)
        return
    if args.command == "training":
        print(f"{write_training_set(args.clips, args.out)}: the few-shot clips, each on one rigid mask")
        return
    if args.command == "source":
        print(f"{write_source_set(args.sets, args.training)}: the set fed the training clips' silhouettes")
        return
    rows = truth_rows(args.sets, args.base) if args.command == "truth" else output_rows(args.sets, args.outputs)
    for r in rows:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}))
    print(summary(rows))


if __name__ == "__main__":
    main()
