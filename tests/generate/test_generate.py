"""Generate: videos a person can open, deterministic by seed, not redone, bad input refused by name."""

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from tasks.common.io import read_mask_pngs, write_mask_pngs
from tasks.generate.jobs import plan_jobs
from tasks.generate.stage import generate
from tests.tiny_world import tiny_generate_config


def test_videos_and_manifest(tiny_world, tiny_run, tmp_path):
    cfg = tiny_generate_config(tiny_world, tiny_run, out_dir=str(tmp_path / "out"), seeds=[0, 1])
    table = generate(cfg)
    assert table["video_id"].tolist() == ["heldout-000-s0", "heldout-000-s1"]
    for vid in table["video_id"]:
        folder = tmp_path / "out" / vid
        frames = np.load(folder / "frames.npy")
        assert frames.dtype == np.uint8 and frames.shape == (6, 32, 32, 3)  # 6 masks -> 6 frames, 2 chunks
        for name in ("video.mp4", "video.gif", "sheet.png", "meta.json"):
            assert (folder / name).stat().st_size > 0, name
        np.testing.assert_array_equal(
            read_mask_pngs(folder / "masks"), read_mask_pngs(tiny_world / "data/raw/toy/heldout/heldout-000")
        )
    a, b = (np.load(tmp_path / "out" / v / "frames.npy") for v in table["video_id"])
    assert not np.array_equal(a, b)  # another seed, another video


def test_same_seed_same_video_and_done_work_is_kept(tiny_world, tiny_run, tmp_path, monkeypatch):
    first = tiny_generate_config(tiny_world, tiny_run, out_dir=str(tmp_path / "a"))
    generate(first)
    generate(tiny_generate_config(tiny_world, tiny_run, out_dir=str(tmp_path / "b")))
    np.testing.assert_array_equal(
        np.load(tmp_path / "a/heldout-000-s0/frames.npy"), np.load(tmp_path / "b/heldout-000-s0/frames.npy")
    )
    # meta.json and the manifest are DVC-cached: made again, they are the same bytes (no timings)
    written = {p: (tmp_path / "a" / p).read_bytes() for p in ("heldout-000-s0/meta.json", "manifest.csv")}
    shutil.rmtree(tmp_path / "a")
    generate(first)
    assert {p: (tmp_path / "a" / p).read_bytes() for p in written} == written

    from model.pipeline import MaskVideoPipeline

    def refuse(*args, **kwargs):
        raise AssertionError("regenerated a video that was already made with the same key")

    monkeypatch.setattr(MaskVideoPipeline, "__call__", refuse)
    generate(first)  # same checkpoint and params: nothing to do
    with pytest.raises(AssertionError, match="regenerated"):
        generate(tiny_generate_config(tiny_world, tiny_run, out_dir=str(tmp_path / "a"), alpha=0.5))


def test_prompts_cross_sequences_and_seeds(tiny_world, tiny_run):
    cfg = tiny_generate_config(tiny_world, tiny_run, prompts=["a red star", "a black square"], seeds=[3, 4])
    ids = [j.video_id for j in plan_jobs(cfg)]
    assert ids == ["heldout-000-p0-s3", "heldout-000-p0-s4", "heldout-000-p1-s3", "heldout-000-p1-s4"]


def test_long_prompt_is_truncated_with_a_warning(tiny_world, tiny_run, tmp_path, caplog):
    cfg = tiny_generate_config(tiny_world, tiny_run, out_dir=str(tmp_path / "o"), prompts=["a red star " * 20])
    with caplog.at_level(logging.WARNING, logger="tasks.generate.stage"):
        generate(cfg)
    assert "the text encoder reads 16; the rest is ignored" in caplog.text


def test_first_frame_from_the_manifest(tiny_world, tiny_run, tmp_path):
    from tasks.generate.stage import load_pipeline, resolve_checkpoint

    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    seqs = sequence_set(tmp_path, moving_square(), first_frame=image)
    cfg = tiny_generate_config(
        tiny_world, tiny_run, sequences=seqs, out_dir=str(tmp_path / "o"), first_frame_source="manifest"
    )
    generate(cfg)
    frames = np.load(tmp_path / "o/s-s0/frames.npy")
    # exactly the pipeline run from that image (the PNG round trip is lossless)
    pipe, config = load_pipeline(resolve_checkpoint(cfg), cfg)
    expected = pipe(
        "a red star",
        moving_square(),
        first_frame=image,
        generator=torch.Generator().manual_seed(0),
        **cfg.sampler(config["window"]).to_dict(),
    ).frames
    np.testing.assert_array_equal(frames, expected)
    assert json.loads((tmp_path / "o/s-s0/meta.json").read_text())["first_frame"].endswith("first.png")
    # another picture in the same file (same size) is another video, not a kept one
    cv2.imwrite(str(tmp_path / "seq/first.png"), cv2.cvtColor(255 - image, cv2.COLOR_RGB2BGR))
    generate(cfg)
    assert not np.array_equal(np.load(tmp_path / "o/s-s0/frames.npy"), frames)


# ---------------------------------------------------------------------------------------------
# bad input


def sequence_set(
    tmp_path: Path, masks: np.ndarray, prompt: str = "a red star", first_frame: np.ndarray | None = None
) -> str:
    write_mask_pngs(masks, tmp_path / "seq" / "s")
    row = {"id": "s", "prompt": prompt, "masks": "s"}
    if first_frame is not None:
        cv2.imwrite(str(tmp_path / "seq" / "first.png"), cv2.cvtColor(first_frame, cv2.COLOR_RGB2BGR))
        row["first_frame"] = "first.png"
    (tmp_path / "seq" / "manifest.yaml").write_text(yaml.safe_dump({"sequences": [row]}))
    return str(tmp_path / "seq" / "manifest.yaml")


def moving_square(n: int = 6, size: int = 32) -> np.ndarray:
    masks = np.zeros((n, size, size), bool)
    for i in range(n):
        masks[i, 10:18, 2 + 3 * i : 10 + 3 * i] = True
    return masks


def refused(cfg, *phrases):
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        generate(cfg)
    for phrase in phrases:
        assert phrase in str(info.value), str(info.value)
    out = Path(cfg.out_dir)
    assert not out.exists() or not [p for p in out.iterdir() if p.name != "manifest.csv"]


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt(tiny_world, tiny_run, tmp_path, prompt):
    seqs = sequence_set(tmp_path, moving_square(), prompt)
    refused(
        tiny_generate_config(tiny_world, tiny_run, sequences=seqs, out_dir=str(tmp_path / "o")),
        "(id 's'): empty prompt",
    )


@pytest.mark.parametrize("fill, word", [(False, "all background"), (True, "all foreground")])
def test_all_zero_or_all_one_masks(tiny_world, tiny_run, tmp_path, fill, word):
    masks = moving_square()
    masks[2] = fill
    seqs = sequence_set(tmp_path, masks)
    refused(
        tiny_generate_config(tiny_world, tiny_run, sequences=seqs, out_dir=str(tmp_path / "o")),
        "sequence 's'",
        f"frame 2 is {word}",
    )


def test_output_size_follows_the_masks_or_the_setting(tiny_world, tiny_run, tmp_path, caplog):
    # the tiny base: VAE factor 4 x two UNet levels -> sides must divide by 8; trained at 32x32
    seqs = sequence_set(tmp_path, moving_square(size=36))
    refused(
        tiny_generate_config(tiny_world, tiny_run, sequences=seqs, out_dir=str(tmp_path / "o")),
        "the masks' height (generate.sequences): 36 px is not a multiple of 8",
    )
    refused(
        tiny_generate_config(tiny_world, tiny_run, sequences=seqs, out_dir=str(tmp_path / "o"), height=36, width=40),
        "generate.height: 36 px is not a multiple of 8",
    )
    cfg = tiny_generate_config(tiny_world, tiny_run, sequences=seqs, out_dir=str(tmp_path / "o"), height=24, width=40)
    with caplog.at_level("WARNING"):
        (row,) = generate(cfg).to_dict("records")
    frames = np.load(tmp_path / "o" / row["video_id"] / "frames.npy")
    assert frames.shape[1:] == (24, 40, 3)  # the 36x36 masks resized to 40x24 (W x H)
    assert "generating 40x24 (W x H) but the base model was trained at 32x32" in caplog.text


def test_sequence_shorter_than_two_frames(tiny_world, tiny_run, tmp_path):
    seqs = sequence_set(tmp_path, moving_square(n=1))
    refused(
        tiny_generate_config(tiny_world, tiny_run, sequences=seqs, out_dir=str(tmp_path / "o")),
        "1 mask frame(s); a video needs at least 2",
    )


def test_bad_first_frames(tiny_world, tiny_run, tmp_path):
    seqs = sequence_set(tmp_path, moving_square())
    manifest = dict(first_frame_source="manifest", out_dir=str(tmp_path / "o"))
    refused(
        tiny_generate_config(tiny_world, tiny_run, sequences=seqs, **manifest),
        "(id 's'): no first_frame",
        "first_frame_source=manifest",
    )
    seqs = sequence_set(tmp_path, moving_square(), first_frame=np.zeros((48, 48, 3), np.uint8))
    refused(
        tiny_generate_config(tiny_world, tiny_run, sequences=seqs, **manifest),
        "first.png (sequence 's')",
        "first frame is 48x48, the model generates 32x32",
    )
    (tmp_path / "seq/first.png").unlink()
    refused(tiny_generate_config(tiny_world, tiny_run, sequences=seqs, **manifest), "first.png", "not found")


def test_missing_checkpoint(tiny_world, tmp_path):
    refused(
        tiny_generate_config(tiny_world, tmp_path / "never-trained", out_dir=str(tmp_path / "o")),
        "generate.checkpoint_dir: no checkpoint",
        "run the train stage",
    )


def test_mismatched_checkpoint(tiny_world, tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run / "checkpoints", run / "checkpoints")
    ckpt = next((run / "checkpoints").glob("ckpt-*"))
    weights = load_file(str(ckpt / "trainable.safetensors"))
    name = next(iter(weights))
    weights[name] = weights[name][..., :1].contiguous()  # as if trained on another base's widths
    save_file(weights, str(ckpt / "trainable.safetensors"))
    refused(tiny_generate_config(tiny_world, run, out_dir=str(tmp_path / "o")), "does not fit the base")


def test_retrained_checkpoint_of_the_same_size_is_not_taken_for_done(tiny_world, tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run / "checkpoints", run / "checkpoints")
    cfg = tiny_generate_config(tiny_world, run, out_dir=str(tmp_path / "o"))
    generate(cfg)
    before = np.load(tmp_path / "o/heldout-000-s0/frames.npy")
    ckpt = next((run / "checkpoints").glob("ckpt-*"))
    weights = load_file(str(ckpt / "trainable.safetensors"))
    size = (ckpt / "trainable.safetensors").stat().st_size
    save_file({k: v + 0.05 for k, v in weights.items()}, str(ckpt / "trainable.safetensors"))  # same names, same size
    assert (ckpt / "trainable.safetensors").stat().st_size == size
    generate(cfg)
    assert not np.array_equal(np.load(tmp_path / "o/heldout-000-s0/frames.npy"), before)


def test_counting_prompt_tokens_beside_encoding_on_another_thread(tiny_world, tiny_run):
    """Mapped videos share one pipeline: counting a prompt's tokens on one worker thread while another
    thread encodes prompts (padded, truncated) must leave both answers right."""
    import threading

    from tasks.contract import latest_checkpoint
    from tasks.generate.stage import load_pipeline, warn_if_truncated

    cfg = tiny_generate_config(tiny_world, tiny_run)
    pipe, _ = load_pipeline(latest_checkpoint(Path(cfg.checkpoint_dir)), cfg)
    prompt = "a red star runs across a blue lake"
    expected = warn_if_truncated(pipe, prompt, "alone")
    errors, counts = [], []

    def encode():
        try:
            for _ in range(300):
                pipe.encode_prompt([prompt, "a cat"], None)
        except Exception as err:  # noqa: BLE001 - any failure is the finding
            errors.append(err)

    worker = threading.Thread(target=encode)
    worker.start()
    while worker.is_alive():
        counts.append(warn_if_truncated(pipe, prompt, "beside"))
    worker.join()
    assert not errors, errors[0]
    assert set(counts) == {expected}


# ---------------------------------------------------------------------------------------------
# per-object prompts


def crossing_sequence(tmp_path: Path) -> str:
    """Two prompted objects crossing, written by the masks CLI (its own manifest.yaml)."""
    from tasks.masks.sequences import main

    spec = {
        "size": [32, 32],
        "n_frames": 6,
        "prompt": "a red star runs across a grassy meadow",
        "objects": [
            {
                "mask": "toy:circle",
                "radius": 4,
                "prompt": "a red circle",
                "path": {"type": "line", "start": [6, 10], "end": [26, 10]},
            },
            {
                "mask": "toy:square",
                "radius": 4,
                "prompt": "a yellow square",
                "path": {"type": "line", "start": [26, 22], "end": [6, 22]},
            },
        ],
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    main([str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "crossing")])
    return str(tmp_path / "crossing")


def test_object_prompts_from_the_manifest_reach_the_pipeline(tiny_world, tiny_run, tmp_path):
    from tasks.generate.stage import load_pipeline, resolve_checkpoint

    cfg = tiny_generate_config(
        tiny_world, tiny_run, sequences=crossing_sequence(tmp_path), out_dir=str(tmp_path / "o")
    )
    (job,) = plan_jobs(cfg)
    assert job.object_prompts == ("a red circle", "a yellow square")
    generate(cfg)
    folder = tmp_path / "o/crossing-s0"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["object_prompts"] == ["a red circle", "a yellow square"]
    objects = np.stack([read_mask_pngs(folder / f"objects/{k}") for k in (0, 1)])
    np.testing.assert_array_equal(objects[1], read_mask_pngs(tmp_path / "crossing/objects/1"))
    pipe, config = load_pipeline(resolve_checkpoint(cfg), cfg)
    kwargs = cfg.sampler(config["window"]).to_dict()
    masks = read_mask_pngs(tmp_path / "crossing")
    expected = pipe(
        job.prompt,
        masks,
        object_prompts=list(job.object_prompts),
        object_masks=objects,
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    ).frames
    np.testing.assert_array_equal(np.load(folder / "frames.npy"), expected)
    plain = pipe(job.prompt, masks, generator=torch.Generator().manual_seed(0), **kwargs).frames
    assert not np.array_equal(expected, plain)


def test_a_job_without_object_prompts_keeps_its_key_and_record(tiny_world, tiny_run, tmp_path):
    import hashlib

    from tasks.common.io import content_digest
    from tasks.generate.config import SAMPLER_FIELDS
    from tasks.generate.stage import job_key, resolve_checkpoint

    cfg = tiny_generate_config(tiny_world, tiny_run)
    (job,) = plan_jobs(cfg)
    masks = read_mask_pngs(job.masks_dir)
    checkpoint, base = resolve_checkpoint(cfg), str(tiny_world / "base")
    # the key as it was computed before per-object prompts
    weights = content_digest(checkpoint / "trainable.safetensors", checkpoint / "config.json", base)
    keyed = [cfg.model_dump(include=SAMPLER_FIELDS), job.prompt, job.seed, checkpoint.name, weights]
    h = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode())
    h.update(np.packbits(masks).tobytes())
    assert job_key(job, masks, checkpoint, cfg, base) == h.hexdigest()[:16]
    per_object_off = cfg.model_copy(update={"adain_per_object": False, "decode_per_object": False})
    assert job_key(job, masks, checkpoint, per_object_off, base) == h.hexdigest()[:16]  # settings for objects only
    assert list(job.record()) == ["video_id", "sequence", "prompt", "masks_dir", "seed", "first_frame"]


def test_bad_object_entries_are_named(tiny_world, tiny_run, tmp_path):
    folder = Path(crossing_sequence(tmp_path))
    manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
    manifest["sequences"][0]["objects"][1] = {"prompt": " ", "masks": "objects/1"}
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    cfg = tiny_generate_config(tiny_world, tiny_run, sequences=str(folder), out_dir=str(tmp_path / "o"))
    refused(cfg, "id 'crossing'", "objects[1] needs a prompt")
