"""Training on clips whose objects carry their own prompts: the toy world's multi-object videos go
through ingest and the masks stage object by object, and the training batches route each object's
prompt to its own masks (what generation does with per-object prompts)."""

import json

import numpy as np
import pytest
import torch
import yaml

from model.pipeline import MaskVideoPipeline
from model.training import first_frame_loss
from model.video_unet import inflate_unet
from tasks.common.io import read_mask_pngs
from tasks.common.pretrained import load_base
from tasks.contract import read_clip_manifest, read_masks, read_masks_manifest, read_object_masks, read_object_prompts
from tasks.masks.stage import MasksConfig, run_masks
from tasks.toyworld.stage import ToyWorldConfig, render_toyworld
from tasks.train.data import ClipLatents
from tasks.train.stage import train
from tests.tiny_world import ingest_tiny_world, tiny_train_config, write_tiny_base


@pytest.fixture(scope="module")
def multi_world(tmp_path_factory):
    """Two single-object clips and two multi-object ones (2 and 3 objects), through ingest and masks."""
    root = tmp_path_factory.mktemp("multi-world")
    render_toyworld(
        ToyWorldConfig(
            size=32,
            n_frames=6,
            n_train=2,
            n_multi_train=2,
            n_heldout=1,
            heldout_frames=6,
            out_dir=str(root / "data/raw/toy"),
        )
    )
    ingest_tiny_world(root, tokenizer=None)
    run_masks(
        MasksConfig(
            clips_dir=str(root / "data/clips"), out_dir=str(root / "data/masks"), metrics=str(root / "masks.json")
        )
    )
    write_tiny_base(root / "base")
    return root


def test_each_object_reaches_the_masks_stage_with_its_prompt_and_masks(multi_world):
    raw = multi_world / "data/raw/toy"
    videos = {r["id"]: r for r in yaml.safe_load((raw / "manifest.yaml").read_text())["videos"]}
    assert [len(videos[v].get("objects", [])) for v in videos] == [0, 0, 2, 3]
    clips = read_clip_manifest(multi_world / "data/clips").set_index("id", drop=False)
    methods = read_masks_manifest(multi_world / "data/masks").set_index("id")["method"]
    for vid, row in videos.items():
        prompts = read_object_prompts(clips.loc[vid])
        objects = read_object_masks(multi_world / "data/masks", vid)
        if "objects" not in row:  # a single-object clip: segmented as before, no object prompts
            assert prompts == [] and objects is None and methods[vid] != "user"
            continue
        assert prompts == [o["prompt"] for o in row["objects"]]
        assert row["prompt"] == prompts[0] and len({o["prompt"] for o in row["objects"]}) == len(prompts)
        truth = np.stack([read_mask_pngs(raw / o["masks"]) for o in row["objects"]])
        np.testing.assert_array_equal(objects, truth)  # same size and frame count: ingest keeps them as drawn
        np.testing.assert_array_equal(read_masks(multi_world / "data/masks", vid), truth.any(0))
        assert methods[vid] == "user"
        assert not (objects.sum(0) > 1).any()  # visible masks: an occluded object is hidden, never doubled


def test_clip_latents_pad_objects_and_sample_them_with_the_frames(multi_world):
    base = load_base(multi_world / "base")
    pipe = MaskVideoPipeline(
        base.vae, base.text_encoder, base.tokenizer, inflate_unet(base.unet), base.sample_scheduler
    )
    data = ClipLatents(pipe, str(multi_world / "data/clips"), str(multi_world / "data/masks"), hflip=True)
    n, k = len(data.ids), 3
    assert data.object_text.shape == (n, k, *data.text.shape[1:]) and data.object_masks.shape == (n, k, 6, 32, 32)
    clips = read_clip_manifest(multi_world / "data/clips")
    for i, (_, row) in enumerate(clips.iterrows()):
        prompts = read_object_prompts(row)
        # missing objects (and every object of a single-object clip) have zero masks: not routed
        assert data.object_masks[i, len(prompts) :].sum() == 0
        if prompts:
            assert torch.allclose(data.object_text[i, : len(prompts)], pipe.encode_prompt(prompts, None).float())
            assert torch.equal(data.object_masks[i, : len(prompts)].amax(0), data.masks[i])

    g = torch.Generator().manual_seed(0)
    routed_seen = 0
    for _ in range(8):
        batch = data.sample(4, 4, True, g)
        for j in range(4):
            objects = batch.object_masks[j]
            if objects.sum() == 0:
                continue
            # the objects' masks are cut and flipped exactly as the frames' foreground was
            assert torch.equal(objects.amax(0), batch.masks[j])
            routed_seen += 1
    assert routed_seen > 0
    dropped = data.sample(16, 4, True, torch.Generator().manual_seed(1), prompt_dropout=0.999)
    assert dropped.object_masks.sum() == 0 and torch.equal(dropped.text, data.empty_text.expand_as(dropped.text))


def test_training_feeds_the_object_prompts_to_the_video_unet(multi_world, tmp_path):
    base = load_base(multi_world / "base")
    unet = inflate_unet(base.unet)
    torch.manual_seed(0)
    for p in unet.parameters():  # the zero-initialised new layers would hide the routing
        p.data.add_(0.05 * torch.randn_like(p))
    pipe = MaskVideoPipeline(base.vae, base.text_encoder, base.tokenizer, unet, base.sample_scheduler)
    data = ClipLatents(pipe, str(multi_world / "data/clips"), str(multi_world / "data/masks"), hflip=False)
    multi = next(i for i in range(len(data.ids)) if data.object_masks[i].sum() > 0)
    latents, text, masks = data.latents[multi : multi + 1], data.text[multi : multi + 1], data.masks[multi : multi + 1]

    def loss(**objects):
        g = torch.Generator().manual_seed(3)
        return first_frame_loss(unet, base.train_scheduler, latents, text, masks, generator=g, **objects).item()

    routed = loss(object_text=data.object_text[multi : multi + 1], object_masks=data.object_masks[multi : multi + 1])
    assert routed != pytest.approx(loss(), rel=1e-4)
    unrouted = loss(
        object_text=data.object_text[multi : multi + 1], object_masks=torch.zeros_like(data.object_masks[:1])
    )
    assert unrouted == pytest.approx(loss(), rel=1e-5)  # zero masks: exactly the one-prompt loss

    run = tmp_path / "run"
    metrics = train(tiny_train_config(multi_world, run, steps=2, checkpoint_every=2, validation=False))
    assert metrics["steps"] == 2 and np.isfinite(metrics["final_loss"])
    assert json.loads((run / "checkpoints" / "ckpt-000002" / "config.json").read_text())["step"] == 2


def test_object_prompts_without_their_masks_are_named(multi_world, tmp_path):
    import shutil

    masks = tmp_path / "masks"
    shutil.copytree(multi_world / "data/masks", masks)
    with np.load(masks / "toy-multi-001.npz") as data:
        np.savez_compressed(masks / "toy-multi-001.npz", masks=data["masks"], objects=data["objects"][:2])
    base = load_base(multi_world / "base")
    pipe = MaskVideoPipeline(
        base.vae, base.text_encoder, base.tokenizer, inflate_unet(base.unet), base.sample_scheduler
    )
    with pytest.raises(ValueError, match=r"toy-multi-001.npz: 2 object masks for the 3 object prompts"):
        ClipLatents(pipe, str(multi_world / "data/clips"), str(masks), hflip=False)
