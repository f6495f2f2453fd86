"""Toy CLIP loading, the data split, the training schedule, params and the sd14 check."""

import csv
import math
from types import SimpleNamespace

import numpy as np
import open_clip
import pytest
import torch

from tasks.base import clip as toy_clip
from tasks.base import pools, train_loop
from tasks.base.config import BaseConfig, Sd14Config
from tasks.base.data import all_combos, render_pool, split_combos, vocabulary
from tasks.base.sd14 import check_sd14
from tasks.base.text import tokenize
from tasks.base.train_loop import lr_at, steps_that_fit, train
from tasks.common.device import resolve_device
from tasks.common.params import ConfigError, load_stage_config
from tasks.common.toy import COLOURS
from tasks.common.toy_clip import load_toy_clip
from tasks.common.toy_palette import palette_labels


@pytest.fixture
def tiny_clip(tokenizer):
    cfg = toy_clip.clip_model_cfg(len(tokenizer), 16, 64, 16, 32, 1, 16, 16, 1, 2)
    model, _ = toy_clip.build_clip(cfg, seed=0)
    return model.eval(), cfg


def test_toy_clip_saves_and_loads_through_load_toy_clip(tiny_clip, tokenizer, tmp_path, pool):
    model, cfg = tiny_clip
    toy_clip.save_clip(model, cfg, tokenizer, tmp_path)
    loaded, preprocess, clip_tok = load_toy_clip(tmp_path)
    ids = clip_tok(["a red star runs across a sandy plain"])
    assert ids.shape == (1, 16) and ids[0, :2].tolist() == [2, tokenizer.convert_tokens_to_ids("a")]
    from PIL import Image

    image = preprocess(Image.fromarray(pool.frames[0]))[None]
    assert image.shape == (1, 3, 64, 64)
    with torch.no_grad():
        model.half().float()  # what the fp16 file holds
        assert torch.allclose(loaded.encode_image(image), model.encode_image(image), atol=1e-5)
        assert torch.allclose(loaded.encode_text(ids), model.encode_text(ids), atol=1e-5)
    # open_clip's own local-dir loader reads the same folder
    model2, _, _ = open_clip.create_model_and_transforms(f"local-dir:{tmp_path}")
    assert sum(p.numel() for p in model2.parameters()) == sum(p.numel() for p in model.parameters())


def test_clip_contrastive_steps_lower_the_loss(tiny_clip, tokenizer, pool):
    model, _ = tiny_clip
    model.train()
    b = pool.batch(np.arange(8))
    ids = tokenize(tokenizer, b["prompts"])

    def fixed():
        while True:
            yield {}

    report = train(
        "clip",
        list(model.parameters()),
        lambda _: toy_clip.contrastive_loss(model, toy_clip.normalise(b["pixels"]), ids, b["prompts"]),
        fixed(),
        steps=20,
        lr=3e-3,
        min_lr=3e-3,
        warmup=0,
        ema_decay=None,
        show_progress=False,
    )
    assert report["last_loss"] < report["first_loss"]


def test_heldout_combos_never_reach_training():
    train_combos, held = split_combos(12, seed=0)
    assert len(held) == 12 and len(train_combos) == len(all_combos()) - 12
    pool = render_pool(30, 1, train_combos, seed=0)
    assert not set(pool.combos) & set(held)
    assert split_combos(12, seed=0) == (train_combos, held)  # seeded


def test_multi_object_frames_show_two_or_three_training_objects_of_different_colours(tokenizer):
    train_combos, held = split_combos(12, seed=0)
    pool = render_pool(12, 2, train_combos, seed=0, multi_object=True)
    assert pool.frames.shape == (24, 64, 64, 3) and pool.masks.shape == (24, 64, 64)
    assert not set(pool.combos) & set(held)
    # captioned with every object's colour and shape, the first object's first; none cut by the tokenizer
    for prompt, (colour, shape, _) in zip(pool.prompts, pool.combos):
        words = prompt.split()
        assert words[:3] == ["a", colour, shape] and 2 <= words.count("a") - 1 <= 3  # "a <ground>" too
        assert len(tokenizer(prompt).input_ids) <= tokenizer.model_max_length
    colours = []
    for frame, mask in zip(pool.frames, pool.masks):
        labels = palette_labels(frame)[mask]  # the toy palette's colour of each object pixel
        found, counts = np.unique(labels[labels >= 0], return_counts=True)
        colours.append(len(found[counts >= 30]))  # anti-aliased edges read as neighbouring colours
    # 2 or 3 objects a scene; one may hide most of another in a frame
    assert max(colours) == 3 and min(colours) >= 1 and np.mean(np.array(colours) >= 2) >= 0.8
    np.testing.assert_array_equal(render_pool(12, 2, train_combos, seed=0, multi_object=True).frames, pool.frames)


# the base's pool before issue 41: single upright objects on the rigid motions, as CLIP's pool always is
UPRIGHT = {"motions": ["run", "jump", "circle"], "motion_weights": None, "turned_share": 0.0, "stretched_share": 0.0}
UPRIGHT |= {"pose_words": False, "multi_object_share": 0.0}


def test_multi_object_share_adds_frames_to_the_generators_pool_not_to_clips():
    cfg = load_stage_config(BaseConfig, "base", overrides={"data": {"n_scenes": 30, "n_eval_scenes": 4, **UPRIGHT}})
    single, clip_pool, eval_pool, held = pools.pools(cfg)
    assert single.frames.shape[0] == clip_pool.frames.shape[0] == 120  # 0: one object per frame
    shared = cfg.model_copy(update={"data": cfg.data.model_copy(update={"multi_object_share": 0.25})})
    pool, clip_pool, eval_pool2, held2 = pools.pools(shared)
    np.testing.assert_array_equal(clip_pool.frames, single.frames)  # the same single objects, CLIP's alone
    np.testing.assert_array_equal(pool.frames[:120], single.frames)
    np.testing.assert_array_equal(eval_pool2.frames, eval_pool.frames)
    assert held2 == held and len(pool) == 160  # 10 scenes of 2-3 objects x 4 frames: a quarter of the pool
    assert all(sum(w in COLOURS for w in p.split()) >= 2 for p in pool.prompts[120:])  # joint prompts


def test_clip_learns_from_upright_single_objects_whatever_the_generator_sees():
    cfg = load_stage_config(BaseConfig, "base", overrides={"data": {"n_scenes": 30, "n_eval_scenes": 4, **UPRIGHT}})
    upright, clip_upright, _, _ = pools.pools(cfg)
    posed_data = {"motions": ["run", "spin", "squash"], "turned_share": 0.5, "stretched_share": 0.3}
    posed = cfg.model_copy(update={"data": cfg.data.model_copy(update=posed_data)})
    pool, clip_pool, _, _ = pools.pools(posed)
    assert any("spins" in p for p in pool.prompts)  # the generator's pool turns, stretches, spins
    assert not pool.frames.tobytes() == upright.frames.tobytes()
    np.testing.assert_array_equal(clip_pool.frames, clip_upright.frames)  # CLIP's: the upright pool's
    assert clip_pool.prompts == clip_upright.prompts


def test_vocabulary_covers_every_prompt_word(pool):
    words = set(vocabulary())
    assert all(set(p.split()) <= words for p in pool.prompts)


def test_lr_schedule_warmup_and_cosine():
    assert lr_at(0, 0.0, 1e-3, 5e-5, warmup=10) == pytest.approx(1e-4)
    assert lr_at(10, 0.0, 1e-3, 5e-5, warmup=10) == pytest.approx(1e-3)
    assert lr_at(50, 0.5, 1e-3, 5e-5, warmup=10) == pytest.approx(5e-5 + 0.5 * (1e-3 - 5e-5))
    assert lr_at(99, 1.0, 1e-3, 5e-5, warmup=10) == pytest.approx(5e-5)


def _run(steps, max_seconds, warmup, log_path, monkeypatch, seconds_per_step=0.0):
    """Seeded random-direction steps by the base loop (the weights never settle, so any change of
    learning rate shows in them); returns (report, weights, logged lrs). The loop reads a fake
    clock that each step moves on by ``seconds_per_step``: with a real one, a machine that slowed
    after the cap's check (``make ablations`` beside the suite) hit the hard stop before the
    shortened schedule had annealed."""
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(8))
    clock = [0.0]
    monkeypatch.setattr(train_loop, "time", SimpleNamespace(time=lambda: clock[0]))

    def loss_fn(_):
        clock[0] += seconds_per_step
        return (w * torch.randn(8, generator=gen)).sum()

    report = train(
        "fit",
        [w],
        loss_fn,
        iter(lambda: {}, None),
        steps=steps,
        lr=0.1,
        min_lr=1e-3,
        warmup=warmup,
        ema_decay=None,
        log_path=log_path,
        max_seconds=max_seconds,
        show_progress=False,
    )
    with open(log_path) as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    return report, w.detach().clone(), lrs


def test_a_run_that_fits_its_cap_never_reads_the_clock(tmp_path, monkeypatch):
    # the old schedule followed elapsed/max_seconds whenever it led the step count (always, just
    # after warm-up), so the same run gave other weights on a busier machine
    _, uncapped, lrs = _run(300, None, 20, tmp_path / "a.csv", monkeypatch, seconds_per_step=0.001)
    report, capped, capped_lrs = _run(300, 10.0, 20, tmp_path / "b.csv", monkeypatch, seconds_per_step=0.001)  # 0.3 s
    assert report["steps"] == report["planned_steps"] == 300
    assert capped_lrs == lrs
    assert torch.equal(capped, uncapped)


def test_a_run_that_would_overrun_is_shortened_and_still_anneals(tmp_path, monkeypatch):
    report, _, lrs = _run(10_000, 0.5, 5, tmp_path / "log.csv", monkeypatch, seconds_per_step=0.005)
    # shortened at the check (step 5, 0.025 s in) to what fits in 0.5 s with a 5% margin: 95 steps
    assert report["planned_steps"] == 10_000 and report["steps"] == 95
    assert lrs[-1] <= 1e-3 + 0.01 * (0.1 - 1e-3)  # the cosine reached (about) min_lr at the shortened end
    assert max(lrs) == pytest.approx(0.1, rel=0.05)


def test_steps_that_fit():
    assert steps_that_fit(1000, 10, 1.0, 1000.0) == 1000
    assert steps_that_fit(1000, 10, 1.0, 50.0) == int(0.95 * 50 * 10)
    assert steps_that_fit(1000, 10, 100.0, 1.0) == 11  # never fewer than one step past the check


def test_train_stops_at_the_time_cap():
    w = torch.nn.Parameter(torch.ones(3))

    def endless():
        while True:
            yield {}

    report = train(
        "cap",
        [w],
        lambda _: (w**2).sum(),
        endless(),
        steps=10**6,
        lr=0.1,
        min_lr=0.0,
        warmup=0,
        ema_decay=0.9,
        max_seconds=0.3,
        show_progress=False,
    )
    assert 0 < report["steps"] < 10**6 and report["planned_steps"] == 10**6
    assert not math.isnan(w.sum().item())


def test_params_base_section_validates():
    cfg = load_stage_config(BaseConfig, "base")
    assert cfg.world == "toy" and cfg.out_dir == "base/toy"
    with pytest.raises(ConfigError, match="base.unet.chanels"):
        load_stage_config(BaseConfig, "base", overrides={"unet": {**cfg.unet.model_dump(), "chanels": [8]}})


def test_sd14_unset_setting_is_named():
    with pytest.raises(ConfigError, match="base.sd14.sd14_dir is not set"):
        check_sd14(Sd14Config())


def test_sd14_missing_folder_is_named(tmp_path):
    with pytest.raises(ConfigError, match="base.sd14.sd14_dir = .*does not exist"):
        check_sd14(Sd14Config(sd14_dir=str(tmp_path / "nope")))


def test_sd14_unloadable_folder_is_named(tmp_path):
    (tmp_path / "cn").mkdir()
    with pytest.raises(ConfigError, match="base.sd14.sd14_dir: .* lacks vae, text_encoder"):
        check_sd14(Sd14Config(sd14_dir=str(tmp_path), controlnet_dir=str(tmp_path / "cn")))
    for part in ("vae", "text_encoder", "tokenizer", "unet", "scheduler"):
        (tmp_path / part).mkdir()
    with pytest.raises(ConfigError, match="base.sd14.sd14_dir: .*vae' holds no weights"):
        check_sd14(Sd14Config(sd14_dir=str(tmp_path), controlnet_dir=str(tmp_path / "cn")))


def test_base_device_setting_is_checked():
    with pytest.raises(ConfigError, match="base.device"):
        load_stage_config(BaseConfig, "base", overrides={"device": "gpu"})
    assert load_stage_config(BaseConfig, "base", overrides={"device": "cpu"}).device == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_names_the_setting():
    assert resolve_device("auto", "base.device") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="base.device=cuda but no CUDA device"):
        resolve_device("cuda", "base.device")
