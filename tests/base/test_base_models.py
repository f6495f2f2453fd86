"""Save + reload of each diffusers model gives the same outputs; a few steps lower the loss."""

import numpy as np
import torch
from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel

from tasks.base.build import _random_crops
from tasks.base.controlnet import controlnet_loss, mask_image
from tasks.base.text import tokenize
from tasks.base.train_loop import train
from tasks.base.unet import build_scheduler, noised, t2i_loss
from tasks.base.vae import colour_boundaries, latent_scaling_factor, object_weight, vae_loss


def test_vae_shapes_and_round_trip(components, tmp_path):
    vae = components["vae"]
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    vae.register_to_config(scaling_factor=latent_scaling_factor(vae, x))
    vae.save_pretrained(tmp_path)
    reloaded = AutoencoderKL.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode()
        assert z.shape == (2, 4, 32, 32)  # two blocks: downsample 2 (the real config has three: 4)
        assert torch.equal(reloaded.decode(reloaded.encode(x).latent_dist.mode()).sample, vae.decode(z).sample)
    assert reloaded.config.scaling_factor == vae.config.scaling_factor != 0.18215


def test_unet_round_trip(components, tmp_path):
    unet = components["unet"]
    unet.save_pretrained(tmp_path)
    reloaded = UNet2DConditionModel.from_pretrained(tmp_path).eval()
    x, states = torch.randn(2, 4, 32, 32), torch.randn(2, 16, 32)
    with torch.no_grad():
        assert torch.equal(reloaded(x, 10, states).sample, unet(x, 10, states).sample)


def test_controlnet_round_trip_and_zero_init(components, tmp_path):
    unet, controlnet = components["unet"], components["controlnet"]
    controlnet.save_pretrained(tmp_path)
    reloaded = ControlNetModel.from_pretrained(tmp_path).eval()
    x, states = torch.randn(2, 4, 32, 32), torch.randn(2, 16, 32)
    cond = mask_image((torch.rand(2, 1, 64, 64) > 0.5).float(), 3)
    with torch.no_grad():
        down, mid = controlnet(x, 10, states, controlnet_cond=cond, return_dict=False)
        down2, mid2 = reloaded(x, 10, states, controlnet_cond=cond, return_dict=False)
        assert all(torch.equal(a, b) for a, b in zip(down, down2)) and torch.equal(mid, mid2)
        # zero convolutions: an untrained ControlNet leaves the UNet unchanged
        steered = unet(x, 10, states, down_block_additional_residuals=down, mid_block_additional_residual=mid)
        assert torch.equal(steered.sample, unet(x, 10, states).sample)


def test_scheduler_config_is_sd14s(components, tmp_path):
    components["scheduler"].save_pretrained(tmp_path)
    ddim = DDIMScheduler.from_pretrained(tmp_path)
    assert ddim.config.steps_offset == 1 and ddim.config.set_alpha_to_one is False
    assert ddim.config.beta_schedule == "scaled_linear" and ddim.config.num_train_timesteps == 1000


def _fixed(batch):
    """An 'endless' iterator that always yields the same batch."""
    while True:
        yield batch


def test_vae_steps_lower_the_loss(components, pool):
    vae = components["vae"].train()
    x = pool.batch(range(4))["pixels"][:, :, 16:48, 16:48]  # 32x32 crops, as the stage trains
    torch.manual_seed(0)
    report = train(
        "vae",
        list(vae.parameters()),
        lambda b: vae_loss(vae, b["pixels"], 1e-6, 0.5),
        _fixed({"pixels": x}),
        steps=20,
        lr=3e-3,
        min_lr=3e-3,
        warmup=0,
        ema_decay=None,
        show_progress=False,
    )
    assert report["steps"] == 20 and report["last_loss"] < 0.8 * report["first_loss"]


def test_unet_and_text_encoder_steps_lower_the_loss(components, pool):
    c = components
    unet, enc = c["unet"].train(), c["text_encoder"].train()
    latents = torch.randn(2, 4, 16, 16)
    prompts = pool.prompts[:2]

    def loss_fn(_):  # same noise and timesteps every step: the loss is a function of the weights only
        return t2i_loss(unet, enc, c["tokenizer"], c["scheduler"], latents, prompts, torch.Generator().manual_seed(1))

    report = train(
        "unet",
        [*unet.parameters(), *enc.parameters()],
        loss_fn,
        _fixed({}),
        steps=15,
        lr=2e-3,
        min_lr=2e-3,
        warmup=0,
        ema_decay=None,
        show_progress=False,
    )
    assert report["last_loss"] < 0.8 * report["first_loss"]


def test_t2i_loss_min_snr_weights_the_steps(components, pool):
    c = components
    latents = torch.randn(4, 4, 32, 32)
    prompts = pool.prompts[:4]

    def loss(gamma):  # same noise and timesteps for each: only the weighting differs
        return t2i_loss(
            c["unet"],
            c["text_encoder"],
            c["tokenizer"],
            c["scheduler"],
            latents,
            prompts,
            torch.Generator().manual_seed(3),
            snr_gamma=gamma,
        )

    with torch.no_grad():
        plain = loss(None)
        assert torch.isclose(loss(1e6), plain)  # gamma above every step's SNR: every weight 1
        assert loss(0.5) < plain  # a low gamma weighs the cleaner steps down


def test_controlnet_steps_lower_the_loss_with_unet_frozen(components, pool):
    c = components
    unet, controlnet = c["unet"].requires_grad_(False), c["controlnet"].train()
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    latents = torch.randn(2, 4, 16, 16)
    masks = torch.from_numpy(pool.masks[:2, 16:48, 16:48]).float()[:, None]  # 32 px: 2x the 16 px latents

    def loss_fn(_):
        return controlnet_loss(
            controlnet,
            unet,
            c["text_encoder"],
            c["tokenizer"],
            c["scheduler"],
            latents,
            masks,
            pool.prompts[:2],
            torch.Generator().manual_seed(1),
        )

    report = train(
        "controlnet",
        list(controlnet.parameters()),
        loss_fn,
        _fixed({}),
        steps=15,
        lr=2e-3,
        min_lr=2e-3,
        warmup=0,
        ema_decay=None,
        show_progress=False,
    )
    assert report["last_loss"] < report["first_loss"]
    assert all(torch.equal(v, unet.state_dict()[k]) for k, v in before.items())


def test_tokenize_feeds_text_encoder(components):
    ids = tokenize(components["tokenizer"], ["a red star"])
    assert components["text_encoder"](ids).last_hidden_state.shape == (1, 16, 32)


def test_object_weight_covers_the_object_and_a_ring():
    masks = torch.zeros(1, 1, 9, 9)
    masks[..., 4, 4] = 1
    w = object_weight(masks, 3.0, ring=2)
    assert w[0, 0, 2:7, 2:7].eq(4).all()  # the pixel and 2 px around it
    assert w.sum() == 81 + 3 * 25  # 1 everywhere else


def test_vae_loss_foreground_weight_moves_the_loss_towards_the_object(components):
    vae = components["vae"].eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    masks = torch.zeros(2, 1, 32, 32)
    masks[..., 8:16, 8:16] = 1

    def loss(*extra):
        torch.manual_seed(0)  # the posterior sample
        with torch.no_grad():
            return vae_loss(vae, x, 1e-6, 0.5, *extra)

    plain = loss()
    assert torch.equal(loss(masks, 0.0), plain) and torch.equal(loss(None, 5.0), plain)
    # the weighted term is a weighted mean of the same per-pixel errors: it moves towards the
    # object's errors, and it is bounded by the smallest and largest per-pixel error
    torch.manual_seed(0)
    with torch.no_grad():
        post = vae.encode(x).latent_dist
        recon = vae.decode(post.sample()).sample
    err = (recon - x).abs() + (recon - x) ** 2
    inside = err[:, :, 6:18, 6:18].mean() - err.mean()  # the object + its ring, minus the whole frame
    assert torch.sign(loss(masks, 5.0) - plain) == torch.sign(inside)


def test_random_crops_cut_pixels_and_masks_at_the_same_place():
    pixels = torch.arange(64.0).repeat(2, 3, 64, 1)  # value = column
    masks = (torch.arange(64.0).repeat(2, 1, 64, 1) % 7 == 0).float()
    crops = _random_crops({"pixels": pixels, "masks": masks}, 32, np.random.default_rng(0))
    assert crops["pixels"].shape == (2, 3, 32, 32) and crops["masks"].shape == (2, 1, 32, 32)
    assert torch.equal(crops["masks"], (crops["pixels"][:, :1] % 7 == 0).float())
    first_columns = crops["pixels"][:, 0, 0, 0]
    assert first_columns.min() >= 0 and first_columns.max() <= 32
    assert _random_crops({"pixels": pixels, "masks": masks}, 64, np.random.default_rng(0))["masks"] is masks


def test_noised_without_offset_is_plain_sd_noise():
    # offset 0 draws nothing extra: the noise and steps of a seed are those before the offset existed
    scheduler = build_scheduler()
    latents = torch.randn(3, 4, 8, 8)
    noisy, noise, t = noised(scheduler, latents, torch.Generator().manual_seed(5))
    ref = torch.Generator().manual_seed(5)
    expected_noise = torch.randn(latents.shape, generator=ref)
    expected_t = torch.randint(0, 1000, (3,), generator=ref)
    assert torch.equal(noise, expected_noise) and torch.equal(t, expected_t)
    torch.testing.assert_close(noisy, scheduler.add_noise(latents, expected_noise, expected_t))


def test_noise_offset_moves_each_channels_mean_and_nothing_else():
    scheduler = build_scheduler()
    latents = torch.zeros(4000, 2, 16, 16)
    _, plain, _ = noised(scheduler, latents, torch.Generator().manual_seed(0))
    _, offset, _ = noised(scheduler, latents, torch.Generator().manual_seed(0), offset=0.3)
    shift = offset - plain
    # one constant per sample and channel ...
    torch.testing.assert_close(shift, shift[:, :, :1, :1].expand_as(shift))
    # ... of std `offset`, so a channel's mean over the 256 cells has std sqrt(0.3^2 + 1/256), not 1/16
    assert abs(shift[:, :, 0, 0].std().item() - 0.3) < 0.02
    assert abs(plain.mean((2, 3)).std().item() - 1 / 16) < 0.005
    assert abs(offset.mean((2, 3)).std().item() - (0.3**2 + 1 / 256) ** 0.5) < 0.015


def test_colour_boundaries_mark_outlines_and_seams_not_texture():
    x = torch.full((1, 3, 8, 8), -0.5)
    x[..., 2:6, 1:4] = torch.tensor([0.8, -0.7, -0.7])[:, None, None]  # red
    x[..., 2:6, 4:7] = torch.tensor([0.9, 0.7, -0.6])[:, None, None]  # yellow beside it
    x[..., 0, :] += 0.1 * torch.tensor([1, -1] * 4)  # the ground's texture: small jumps
    edge = colour_boundaries(x)[0, 0]
    assert edge[3, 3] == 1 and edge[3, 4] == 1  # the seam where red meets yellow, both sides
    assert edge[3, 0] == 1 and edge[1, 2] == 1  # the outline's ground side
    assert edge[0].sum() == 0 and edge[3, 2] == 0  # texture, and the inside of one colour


def test_vae_loss_boundary_weight_is_a_weighted_mean_of_the_same_errors(components):
    vae = components["vae"].eval()
    x = torch.full((1, 3, 32, 32), -0.5)
    x[..., 8:20, 8:20] = 0.9

    def loss(weight):
        torch.manual_seed(0)
        with torch.no_grad():
            return vae_loss(vae, x, 0.0, 0.0, boundary_weight=weight)

    torch.manual_seed(0)
    with torch.no_grad():
        recon = vae.decode(vae.encode(x).latent_dist.sample()).sample
    err = ((recon - x).abs() + (recon - x) ** 2).mean(1)[0]
    edge = colour_boundaries(x)[0, 0].bool()
    assert torch.isclose(loss(0.0), err.mean())
    expected = (err.sum() + 4.0 * err[edge].sum()) / (err.numel() + 4.0 * edge.sum())
    assert torch.isclose(loss(4.0), expected)
