"""Tiny seeded toy base components, built from the same builders the stage uses."""

import pytest
import torch

from tasks.base.controlnet import build_controlnet
from tasks.base.data import render_pool, split_combos, vocabulary
from tasks.base.text import build_text_encoder, build_tokenizer
from tasks.base.unet import build_scheduler, build_unet
from tasks.base.vae import build_vae


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer(vocabulary(), max_length=16)


@pytest.fixture(scope="session")
def pool():
    train, _ = split_combos(4, seed=0)
    return render_pool(8, 2, train, seed=0)


@pytest.fixture
def components(tokenizer):
    """Fresh tiny models: VAE (8, 16 channels -> 4x32x32 latents), text encoder, UNet, ControlNet."""
    vae = build_vae((8, 16), 1, 4, 4, 64, seed=0).eval()
    text_encoder = build_text_encoder(len(tokenizer), 16, 32, 1, 2, seed=0).eval()
    unet = build_unet(4, 32, (16, 32), 1, 2, 32, 8, seed=0).eval()
    controlnet = build_controlnet(unet, 3, (8, 16), seed=0).eval()
    return {
        "vae": vae,
        "text_encoder": text_encoder,
        "unet": unet,
        "controlnet": controlnet,
        "tokenizer": tokenizer,
        "scheduler": build_scheduler(),
    }


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)
