"""Tiny seeded components for the model tests (cf. diffusers' ``get_dummy_components``).

Every network is built from a small config with a fixed seed: nothing is downloaded, each test runs
in seconds on a CPU. The VAE has a latent factor of 4 (the toy world uses 4 or 8), images are
32x32, latents 8x8.
"""

import pytest
import torch
from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

# one thread: the 2 shared cores make OpenMP spin-waits cost more than they give on tiny tensors
torch.set_num_threads(1)

IMAGE_SIZE = 32
LATENT_SIZE = 8
TEXT_DIM = 32


def tiny_unet2d(seed: int = 0) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=32,
    ).eval()


def tiny_vae(seed: int = 0) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 16, 32),  # 3 levels: latent factor 4
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=IMAGE_SIZE,
    ).eval()


def tiny_tokenizer() -> CLIPTokenizer:
    # a character-level CLIP tokenizer: letters, letters ending a word, and the two special tokens
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {c: i for i, c in enumerate(letters)}
    vocab.update({c + "</w>": len(letters) + i for i, c in enumerate(letters)})
    vocab.update({"<|startoftext|>": 52, "<|endoftext|>": 53})
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)


def tiny_text_encoder(seed: int = 0) -> CLIPTextModel:
    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=54,
        hidden_size=TEXT_DIM,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=16,
        bos_token_id=52,
        eos_token_id=53,
        pad_token_id=53,
    )
    return CLIPTextModel(config).eval()


def tiny_controlnet(unet: UNet2DConditionModel, seed: int = 0) -> ControlNetModel:
    torch.manual_seed(seed)
    controlnet = ControlNetModel.from_unet(
        unet, conditioning_embedding_out_channels=(8, 16, 16), conditioning_channels=1
    )
    # a fresh ControlNet's zero convs would make it a no-op; give them weights so the mask matters
    with torch.no_grad():
        for p in [
            *controlnet.controlnet_down_blocks.parameters(),
            *controlnet.controlnet_mid_block.parameters(),
            *controlnet.controlnet_cond_embedding.conv_out.parameters(),
        ]:
            p.normal_(0, 0.05)
    return controlnet.eval()


def ddim_scheduler() -> DDIMScheduler:
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def randomize_new_layers(video_unet, seed: int = 0, std: float = 0.05) -> None:
    """Give the zero-initialised new layers random weights (a stand-in for a trained model)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in video_unet.named_parameters():
            if any(k in name for k in ("temporal_conv", "temporal_attention", "mask_branch")):
                p.normal_(0, std)


@pytest.fixture
def unet2d():
    return tiny_unet2d()


@pytest.fixture
def components():
    unet = tiny_unet2d()
    return dict(
        vae=tiny_vae(),
        text_encoder=tiny_text_encoder(),
        tokenizer=tiny_tokenizer(),
        base_unet=unet,
        controlnet=tiny_controlnet(unet),
        scheduler=ddim_scheduler(),
    )
