"""The train stage: eq. 2 on real clips, checkpoints that survive kills, resume that is bit-exact."""

import json
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tasks.common.params import ConfigError, validate_config
from tasks.contract import latest_checkpoint, read_checkpoint
from tasks.train.config import TrainConfig, run_fingerprint
from tasks.train.data import ClipLatents, rotate_hue
from tasks.train.resume import finished_run
from tasks.train.stage import lr_lambda, train
from tests.tiny_world import tiny_train_config

REPO = Path(__file__).resolve().parents[2]


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(latest_checkpoint(run / "checkpoints") / "trainable.safetensors"))


def assert_bit_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        assert torch.equal(a[k], b[k]), k


def run_child(cfg, *args: str, kill_at_step: int | None = None) -> int:
    config = Path(cfg.out_dir).parent / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(cfg.model_dump_json())
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.train.run_training", str(config), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        if kill_at_step is not None and line.strip() == f"step {kill_at_step}":
            proc.send_signal(signal.SIGKILL)
            break
    return proc.wait(timeout=300)


def test_training_lowers_the_loss_and_writes_its_records(tiny_world, tmp_path):
    cfg = tiny_train_config(
        tiny_world,
        tmp_path,
        steps=40,
        checkpoint_every=20,
        lr=2e-3,
        random_start=False,
        hflip=False,
        validate_every=20,
    )
    metrics = train(cfg)
    losses = np.loadtxt(cfg.loss_log, delimiter=",", skiprows=1)
    assert losses.shape == (40, 3) and losses[:, 0].tolist() == list(range(1, 41))
    assert losses[-10:, 1].mean() < losses[:10, 1].mean()
    assert metrics["steps"] == 40 and metrics["steps_per_second"] > 0 and metrics["peak_memory_mb"] > 0
    assert json.loads(Path(cfg.metrics).read_text()) == metrics
    folders = sorted(p.name for p in Path(cfg.out_dir).glob("ckpt-*"))
    assert folders == ["ckpt-000020", "ckpt-000040"]
    gifs = sorted(p.name for p in (Path(cfg.out_dir) / "validation").iterdir())
    assert gifs == ["step-000020.gif", "step-000040.gif"]
    import imageio.v3 as iio

    first, last = (iio.imread(Path(cfg.out_dir) / "validation" / gif, index=None) for gif in gifs)
    assert last.shape[:3] == (6, 32, 32)
    # frame 1 made once, before training; frames 2..n from the same noise, by the weights of each step
    assert np.array_equal(first[0], last[0]) and not np.array_equal(first[1:], last[1:])
    weights, config, state = read_checkpoint(latest_checkpoint(Path(cfg.out_dir)))
    assert config["step"] == 40 and config["video_unet"]["self_attention"] == "first_frame"
    assert state["step"] == 40 and all(v.dtype == torch.float32 for v in weights.values())


def test_batches_flip_frames_and_masks_together(tiny_world):
    from model.pipeline import MaskVideoPipeline
    from model.video_unet import inflate_unet
    from tasks.common.pretrained import load_base

    base = load_base(tiny_world / "base")
    pipe = MaskVideoPipeline(
        base.vae, base.text_encoder, base.tokenizer, inflate_unet(base.unet), base.sample_scheduler
    )
    data = ClipLatents(pipe, str(tiny_world / "data/clips"), str(tiny_world / "data/masks"), hflip=True)
    g = torch.Generator().manual_seed(3)
    seen_flip = seen_plain = False
    for _ in range(10):
        state = g.get_state()
        lat, text, masks, *_ = data.sample(4, 4, True, g)
        g.set_state(state)  # replay the same draws to know which clip/start/flip each item got
        idx = torch.randint(data.latents.shape[0], (4,), generator=g)
        starts = torch.randint(data.latents.shape[2] - 4 + 1, (4,), generator=g)
        flips = torch.rand(4, generator=g) < 0.5
        for j in range(4):
            i, s = idx[j].item(), starts[j].item()
            src_lat = data.views[0][int(flips[j])][i, :, s : s + 4]
            src_mask = data.masks[i, s : s + 4]
            assert torch.equal(lat[j], src_lat)
            assert torch.equal(masks[j], src_mask.flip(-1) if flips[j] else src_mask)
            assert torch.equal(text[j], data.text[i])
            seen_flip |= bool(flips[j])
            seen_plain |= not bool(flips[j])
    assert seen_flip and seen_plain


def test_moved_windows_move_latents_and_masks_together_and_keep_the_object(tiny_world):
    from model.pipeline import MaskVideoPipeline
    from model.video_unet import inflate_unet
    from tasks.common.pretrained import load_base
    from tasks.train.shift import RandomShift

    base = load_base(tiny_world / "base")
    pipe = MaskVideoPipeline(
        base.vae, base.text_encoder, base.tokenizer, inflate_unet(base.unet), base.sample_scheduler
    )
    data = ClipLatents(pipe, str(tiny_world / "data/clips"), str(tiny_world / "data/masks"), hflip=True)
    moved = ClipLatents(pipe, str(tiny_world / "data/clips"), str(tiny_world / "data/masks"), hflip=True)
    moved.shift = RandomShift(3, seed=0)
    scale = data.masks.shape[-1] // data.latents.shape[-1]
    seen_moves = set()
    for seed in range(6):
        plain = data.sample(4, 4, True, torch.Generator().manual_seed(seed))
        batch = moved.sample(4, 4, True, torch.Generator().manual_seed(seed))  # the same clips, starts, flips
        for j in range(4):
            # the move that turns the plain window into the moved one, found by search
            fits = [
                (dy, dx)
                for dy in range(-3, 4)
                for dx in range(-3, 4)
                if torch.equal(batch.latents[j], plain.latents[j].roll((dy, dx), (-2, -1)))
                and torch.equal(batch.masks[j], plain.masks[j].roll((dy * scale, dx * scale), (-2, -1)))
            ]
            assert fits, "latents and masks must move by the same whole cells"
            (dy, dx), before, after = fits[0], plain.masks[j].any(0), batch.masks[j].any(0)
            for axis, d in ((1, dy), (0, dx)):  # the object's box moves whole: it never wraps round an edge
                b, a = torch.nonzero(before.any(axis)).flatten(), torch.nonzero(after.any(axis)).flatten()
                assert len(b) == 0 or (a.min() == b.min() + d * scale and a.max() == b.max() + d * scale)
            seen_moves.add((dy, dx))
    assert len(seen_moves) > 3  # it moves, and by more than one amount


def test_rotate_hue_keeps_greys_and_luma_and_composes():
    rng = np.random.default_rng(0)
    # muted colours: no channel leaves the RGB cube under rotation, so nothing is clipped
    colours = rng.integers(90, 166, size=(2, 5, 5, 3)).astype(np.uint8)
    greys = np.repeat(np.arange(0, 256, 15, dtype=np.uint8)[:, None], 3, axis=1)
    luma = np.array([0.299, 0.587, 0.114])

    assert rotate_hue(colours, 0) is colours and np.array_equal(rotate_hue(colours, 360), colours)
    assert np.array_equal(rotate_hue(greys, 123), greys)  # no chroma: nothing to turn
    turned = rotate_hue(colours, 90)
    assert np.abs(turned @ luma - colours @ luma).max() <= 1.0  # brightness kept (rounding only)
    assert np.abs(turned.astype(int) - colours).max() > 10  # colours did move
    back = rotate_hue(rotate_hue(colours, 150), 210)  # 150 + 210 = 360: back where it started
    assert np.abs(back.astype(int) - colours).max() <= 2
    # a pure red turns towards a different dominant channel after a third of a turn
    red = np.array([[200, 40, 40]], dtype=np.uint8)
    assert rotate_hue(red, 120)[0].argmax() != 0


def test_hue_views_and_prompt_dropout_draw_what_they_say(tiny_world):
    from model.pipeline import MaskVideoPipeline
    from model.video_unet import inflate_unet
    from tasks.common.pretrained import load_base

    base = load_base(tiny_world / "base")
    pipe = MaskVideoPipeline(
        base.vae, base.text_encoder, base.tokenizer, inflate_unet(base.unet), base.sample_scheduler
    )
    clips, masks = str(tiny_world / "data/clips"), str(tiny_world / "data/masks")
    plain = ClipLatents(pipe, clips, masks, hflip=True)
    tinted = ClipLatents(pipe, clips, masks, hflip=True, hue_shifts=(0.0, 120.0, 240.0))
    assert len(tinted.views) == 3 and all(len(v) == 2 for v in tinted.views)
    assert torch.equal(tinted.views[0][0], plain.latents) and torch.equal(tinted.views[0][1], plain.views[0][1])
    assert not torch.allclose(tinted.views[1][0], plain.latents, atol=1e-3)  # other colours, other latents

    # the defaults draw exactly the old draws: one extra option changes nothing until it is used
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a, b = plain.sample(4, 4, True, g1), plain.sample(4, 4, True, g2, prompt_dropout=0.0)
    assert a.object_text is None and b.object_text is None  # no object prompts in these clips
    for x, y in zip(a[:3], b[:3]):
        assert torch.equal(x, y)

    g = torch.Generator().manual_seed(7)
    hue_seen, dropped, kept = set(), 0, 0
    for _ in range(20):
        state = g.get_state()
        lat, text, *_ = tinted.sample(4, 4, True, g, prompt_dropout=0.5)
        g.set_state(state)  # replay: clip, start, flip, hue view, dropout
        idx = torch.randint(tinted.latents.shape[0], (4,), generator=g)
        starts = torch.randint(tinted.latents.shape[2] - 4 + 1, (4,), generator=g)
        flips = torch.rand(4, generator=g) < 0.5
        hues = torch.randint(3, (4,), generator=g)
        drops = torch.rand(4, generator=g) < 0.5
        for j in range(4):
            i, s, h = idx[j].item(), starts[j].item(), hues[j].item()
            assert torch.equal(lat[j], tinted.views[h][int(flips[j])][i, :, s : s + 4])
            assert torch.equal(text[j], tinted.empty_text if drops[j] else tinted.text[i])
            hue_seen.add(h)
            dropped += int(drops[j])
            kept += int(not drops[j])
    assert hue_seen == {0, 1, 2} and dropped > 10 and kept > 10
    assert not torch.equal(tinted.empty_text, tinted.text[0])


@pytest.mark.slow
def test_sigkill_at_a_random_step_then_resume_is_bit_exact(tiny_world, tmp_path):
    whole = tiny_train_config(tiny_world, tmp_path / "whole", steps=12, checkpoint_every=3)
    assert run_child(whole) == 0
    killed = tiny_train_config(tiny_world, tmp_path / "killed", steps=12, checkpoint_every=3)
    step = random.Random().randint(4, 11)
    assert run_child(killed, kill_at_step=step) == -signal.SIGKILL, f"not killed at step {step}"
    assert latest_checkpoint(Path(killed.out_dir)) is not None
    Path(killed.loss_log).unlink()  # as `dvc repro` does: it deletes the outputs it does not persist
    assert run_child(killed) == 0  # resumes from latest by itself
    # the child may run a step or two past the one it reported before the signal lands
    resumed = json.loads(Path(killed.metrics).read_text())["resumed_from_step"]
    assert resumed % 3 == 0 and (step // 3) * 3 <= resumed < 12, (step, resumed)
    assert_bit_equal(final_weights(tmp_path / "whole"), final_weights(tmp_path / "killed"))
    np.testing.assert_array_equal(
        np.loadtxt(whole.loss_log, delimiter=",", skiprows=1), np.loadtxt(killed.loss_log, delimiter=",", skiprows=1)
    )


@pytest.mark.slow
def test_kill_during_checkpoint_write_keeps_previous_checkpoint(tiny_world, tmp_path):
    whole = tiny_train_config(tiny_world, tmp_path / "whole", steps=9, checkpoint_every=3)
    assert run_child(whole) == 0
    cfg = tiny_train_config(tiny_world, tmp_path / "killed", steps=9, checkpoint_every=3)
    assert run_child(cfg, "--die-in-checkpoint", "2") == -signal.SIGKILL
    out = Path(cfg.out_dir)
    assert latest_checkpoint(out).name == "ckpt-000003"  # the complete one
    assert list(out.glob(".ckpt-000006.tmp-*")), "the half-written checkpoint should sit under a temp name"
    read_checkpoint(latest_checkpoint(out))  # loadable
    assert run_child(cfg) == 0
    assert not list(out.glob(".ckpt-*"))  # swept
    assert_bit_equal(final_weights(tmp_path / "whole"), final_weights(tmp_path / "killed"))


def test_changed_settings_start_a_new_run(tiny_world, tmp_path):
    train(tiny_train_config(tiny_world, tmp_path, steps=2, checkpoint_every=2))
    metrics = train(tiny_train_config(tiny_world, tmp_path, steps=4, checkpoint_every=2))
    assert metrics["resumed_from_step"] == 2  # same run, more steps: resumes
    metrics = train(tiny_train_config(tiny_world, tmp_path, steps=4, checkpoint_every=2, lr=5e-4))
    assert metrics["resumed_from_step"] == 0  # another learning rate is another run


def test_missing_base_names_the_setting(tiny_world, tmp_path):
    with pytest.raises(FileNotFoundError, match="train.base_dir: base weights folder '.*nowhere' not found"):
        train(tiny_train_config(tiny_world, tmp_path, base_dir=str(tmp_path / "nowhere")))


def test_finished_run_knows_its_own_checkpoint(tiny_world, tiny_run):
    done = tiny_train_config(tiny_world, tiny_run, steps=4, checkpoint_every=4)
    assert finished_run(done)
    assert finished_run(done.model_copy(update={"keep_last": 5, "metrics": "elsewhere.json"}))  # bookkeeping only
    assert not finished_run(done.model_copy(update={"steps": 6}))  # resumable, not finished
    assert not finished_run(done.model_copy(update={"lr": 5e-4}))  # another run
    assert not finished_run(done.model_copy(update={"out_dir": str(tiny_run / "nowhere")}))


def test_a_rebuilt_base_of_the_same_size_is_another_run(tiny_world, tiny_run, tmp_path):
    """Rebuilt base weights keep their architecture and so their file sizes: the run's identity
    must follow their contents, or training would 'resume' weights made for the old base."""
    from safetensors.torch import save_file

    done = tiny_train_config(tiny_world, tiny_run, steps=4, checkpoint_every=4)
    base = shutil.copytree(tiny_world / "base", tmp_path / "base")
    unet = next((base / "unet").glob("*.safetensors"))
    weights = load_file(str(unet))
    size = unet.stat().st_size
    save_file({k: v * 1.01 for k, v in weights.items()}, str(unet), metadata={"format": "pt"})
    assert unet.stat().st_size == size
    assert run_fingerprint(done) != run_fingerprint(done.model_copy(update={"base_dir": str(base)}))
    assert not finished_run(done.model_copy(update={"base_dir": str(base)}))


def test_lr_schedules_follow_their_formulas():
    def factors(**kw):
        return [lr_lambda(TrainConfig(steps=10, **kw))(s) for s in range(10)]

    assert factors(lr_schedule="constant", warmup_steps=4)[:5] == [0.25, 0.5, 0.75, 1.0, 1.0]
    # wsd: flat, then linear over the last 4 steps, never reaching 0 on a step that trains
    assert factors(lr_schedule="wsd", decay_steps=4) == [1.0] * 7 + [0.75, 0.5, 0.25]
    assert factors(lr_schedule="wsd", decay_steps=4, warmup_steps=2)[:2] == [0.5, 1.0]
    cosine = factors(lr_schedule="cosine")
    assert cosine[0] == 1.0 and cosine[5] == pytest.approx(0.5) and all(a > b for a, b in zip(cosine, cosine[1:]))
    for bad in (0, 11):
        with pytest.raises(ConfigError, match="decay_steps"):
            validate_config(TrainConfig, {"steps": 10, "lr_schedule": "wsd", "decay_steps": bad}, "params.yaml: train")


def test_a_missing_validation_set_fails_before_the_first_step(tiny_world, tmp_path):
    cfg = tiny_train_config(tiny_world, tmp_path, validation_sequences=str(tmp_path / "nope.yaml"))
    with pytest.raises(FileNotFoundError, match="train.validation_sequences: '.*nope.yaml' not found"):
        train(cfg)
    assert not Path(cfg.out_dir).exists()  # nothing trained, nothing written


def test_a_run_that_died_in_its_last_validation_writes_the_gif_when_resumed(tiny_world, tmp_path, monkeypatch):
    import tasks.train.stage as stage

    cfg = tiny_train_config(tiny_world, tmp_path, steps=2, checkpoint_every=2)
    real = stage.validation_gif

    def dies(*args, **kwargs):
        raise RuntimeError("killed while sampling")

    monkeypatch.setattr(stage, "validation_gif", dies)
    with pytest.raises(RuntimeError, match="killed while sampling"):
        train(cfg)
    assert latest_checkpoint(Path(cfg.out_dir)).name == "ckpt-000002"  # training itself had finished
    calls = []
    monkeypatch.setattr(stage, "validation_gif", lambda *a, **k: calls.append(a) or real(*a, **k))
    metrics = train(cfg)
    assert metrics["resumed_from_step"] == 2 and len(calls) == 1
    assert (Path(cfg.out_dir) / "validation" / "step-000002.gif").is_file()


def test_validation_time_stays_out_of_steps_per_second(tiny_world, tmp_path, monkeypatch):
    import time as clock

    import tasks.train.stage as stage

    real = stage.validation_gif
    monkeypatch.setattr(stage, "validation_gif", lambda *a, **k: (clock.sleep(3.0), real(*a, **k))[1])
    cfg = tiny_train_config(tiny_world, tmp_path, steps=4, checkpoint_every=4, validate_every=2)
    metrics = train(cfg)
    # 4 tiny steps take well under a second; one 3-s validation inside the loop would bring it to < 1.4 steps/s
    assert metrics["steps_per_second"] > 2.0


def test_the_validation_sample_takes_frame_1_from_the_configured_controlnet(tiny_world, tmp_path, monkeypatch):
    import shutil

    import tasks.train.validation as validation

    seen = []
    real = validation.load_controlnet
    monkeypatch.setattr(validation, "load_controlnet", lambda folder, *a: seen.append(str(folder)) or real(folder, *a))
    elsewhere = shutil.copytree(tiny_world / "base" / "controlnet", tmp_path / "my-controlnet")
    cfg = tiny_train_config(
        tiny_world, tmp_path, steps=1, controlnet_dir=str(elsewhere), controlnet_condition="scribble"
    )
    loaded = []
    real_unet = validation.MaskVideoPipeline.__init__
    monkeypatch.setattr(
        validation.MaskVideoPipeline,
        "__init__",
        lambda self, *a, **k: loaded.append(k.get("base_unet")) or real_unet(self, *a, **k),
    )
    train(cfg)
    assert seen == [str(elsewhere)]
    assert loaded[0] is not None and len(loaded) > 1 and not any(loaded[1:])  # 2-D UNet: frame 1 before training only
    typo = tiny_train_config(tiny_world, tmp_path / "b", steps=1, controlnet_dir=str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match="train.controlnet_dir: '.*typo' is not a ControlNet folder"):
        train(typo)
    assert not Path(typo.out_dir).exists()  # refused before the first step


def test_train_names_each_prompt_the_text_encoder_cuts(tiny_world, tmp_path, caplog):
    """Ingest and generate said so; train cut prompts past the encoder's limit silently."""
    import logging

    import pandas as pd

    from model.pipeline import MaskVideoPipeline
    from model.video_unet import inflate_unet
    from tasks.common.pretrained import load_base

    base = load_base(tiny_world / "base")
    pipe = MaskVideoPipeline(
        base.vae, base.text_encoder, base.tokenizer, inflate_unet(base.unet), base.sample_scheduler
    )
    clips = tmp_path / "clips"
    shutil.copytree(tiny_world / "data/clips", clips)
    table = pd.read_csv(clips / "manifest.csv")
    short_id, long_id = table.loc[0, "id"], table.loc[1, "id"]
    table.loc[0, "prompt"] = "red"  # the tiny tokenizer reads 16 tokens (about a character each)
    table.loc[1, "prompt"] = " ".join(["a red circle runs"] * 10)
    table.to_csv(clips / "manifest.csv", index=False)
    with caplog.at_level(logging.WARNING):
        ClipLatents(pipe, str(clips), str(tiny_world / "data/masks"), hflip=False)
    said = [r.getMessage() for r in caplog.records if "the text encoder reads" in r.getMessage()]
    assert any(f"train: {long_id}: prompt has 1" in m for m in said), said
    assert not any(short_id in m for m in said), said
