"""The toy world's Stable Diffusion: a tiny text-to-image UNet2DConditionModel on VAE latents.

Standard diffusers blocks only (CrossAttnDownBlock2D / CrossAttnUpBlock2D), so the video stage can
inflate it exactly as it would inflate SD1.4's UNet. Training is SD's: epsilon prediction, DDPM with
1000 scaled-linear steps, the prompt replaced by "" 10% of the time for classifier-free guidance.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel

from model.training import add_offset_noise, foreground_mse, min_snr_weight
from tasks.base.text import tokenize


def build_scheduler() -> DDPMScheduler:
    """SD1.4's noise schedule (its scheduler/scheduler_config.json values). ``set_alpha_to_one`` is
    DDIM's key, kept in the saved config so ``DDIMScheduler.from_pretrained`` reads SD's value."""
    scheduler = DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        clip_sample=False,
        steps_offset=1,
    )
    scheduler.register_to_config(set_alpha_to_one=False)
    return scheduler


def build_unet(
    latent_channels: int,
    latent_size: int,
    channels: tuple[int, ...],
    layers_per_block: int,
    attention_heads: int,
    cross_attention_dim: int,
    norm_groups: int,
    seed: int,
) -> UNet2DConditionModel:
    """Cross-attention at every resolution but the lowest, as SD (which has 4 levels to our 3).
    (diffusers' ``attention_head_dim`` argument is, for historical reasons, the number of heads.)"""
    torch.manual_seed(seed)
    n = len(channels)
    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=latent_channels,
        out_channels=latent_channels,
        block_out_channels=tuple(channels),
        layers_per_block=layers_per_block,
        down_block_types=("CrossAttnDownBlock2D",) * (n - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (n - 1),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=attention_heads,
        norm_num_groups=norm_groups,
    )


def drop_prompts(prompts: list[str], rate: float, rng: np.random.Generator) -> list[str]:
    """Replace each prompt by "" with probability ``rate`` (classifier-free guidance training)."""
    return ["" if rng.random() < rate else p for p in prompts]


def noised(scheduler: DDPMScheduler, latents: torch.Tensor, generator: torch.Generator, offset: float = 0.0):
    """(noisy latents, noise, timesteps): a uniformly random step per sample, as SD trains. Drawn on
    ``generator``'s device (the CPU), then moved to the latents'.

    ``offset`` > 0 adds offset noise (``model.training.add_offset_noise``: one extra normal draw per
    sample and channel, times ``offset``, shared by every latent cell). Why: the noise's mean over a 16x16
    latent has a std of only 1/16, and a channel's mean carries the frame's overall colour (in the
    toy base's latents, channel 3 averages +1.87 on sand and -1.77 on water). Even at the last step
    (signal x sqrt(alpha_bar) = 0.068) sand and water stay 0.25 apart, four noise stds, so a model
    trained on SD's plain noise reads the ground's colour off its input instead of the prompt, and
    sampling, which starts from noise of mean ~0, paints sand and water grey. The offset hides that
    mean, so the prompt must supply it. Sampling is unchanged."""
    noise = torch.randn(latents.shape, generator=generator)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),), generator=generator)
    noise = add_offset_noise(noise, offset, generator)
    noise, t = noise.to(latents.device), t.to(latents.device)
    return scheduler.add_noise(latents, noise, t), noise, t


def t2i_loss(
    unet,
    text_encoder,
    tokenizer,
    scheduler,
    latents: torch.Tensor,
    prompts: list[str],
    generator: torch.Generator,
    masks: torch.Tensor | None = None,
    foreground_weight: float = 0.0,
    noise_offset: float = 0.0,
    snr_gamma: float | None = None,
) -> torch.Tensor:
    """Epsilon-prediction MSE on scaled ``latents`` (B, C, h, w) with ``prompts`` (already dropped),
    weighted towards the object by ``masks`` (B, 1, H, W) (see ``foreground_mse``); ``noise_offset``:
    see ``noised``; ``snr_gamma``: Min-SNR weighting over steps (``model.training.min_snr_weight``),
    None = SD's uniform weighting."""
    noisy, noise, t = noised(scheduler, latents, generator, noise_offset)
    states = text_encoder(tokenize(tokenizer, prompts).to(latents.device)).last_hidden_state
    pred = unet(noisy.contiguous(memory_format=torch.channels_last), t, states).sample
    weight = None if snr_gamma is None else min_snr_weight(scheduler.alphas_cumprod, t, snr_gamma)
    return foreground_mse(pred, noise, masks, foreground_weight, weight)
