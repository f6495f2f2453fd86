"""Trainable sets, their state dicts, and the first-frame training objective (eq. 2)."""

import pytest
import torch
from diffusers import DDPMScheduler
from safetensors.torch import load_file, save_file

from model.trainable import load_trainable_state_dict, set_trainable, trainable_parameter_names, trainable_state_dict
from model.training import first_frame_loss, foreground_mse, min_snr_weight
from model.video_unet import inflate_unet
from tests.model.conftest import LATENT_SIZE, TEXT_DIM, randomize_new_layers


def count(video_unet, predicate):
    return sum(p.numel() for n, p in video_unet.named_parameters() if predicate(n))


def is_new(name):
    return any(k in name for k in ("temporal_conv.", "temporal_attention.", "mask_branch."))


def test_paper_and_lamp_trainable_sets(unet2d):
    video_unet = inflate_unet(unet2d)
    total = sum(p.numel() for p in video_unet.parameters())
    projections = ("to_q.", "to_k.", "to_v.", "to_out.")

    def spatial_attention(n):
        return ".spatial." in n and any(f"attn{i}.{p}" in n for i in (1, 2) for p in projections)

    counts = set_trainable(video_unet, "paper")
    assert counts.total == total
    assert counts.trainable == count(video_unet, lambda n: is_new(n) or spatial_attention(n))
    trainable = {n for n, p in video_unet.named_parameters() if p.requires_grad}
    assert trainable == set(trainable_parameter_names(video_unet, "paper"))
    assert not any("resnets" in n or "conv_in" in n or ".ff." in n or "norm1" in n for n in trainable)

    lamp = set_trainable(video_unet, "lamp")
    assert lamp.trainable == count(video_unet, lambda n: is_new(n) or (".attn1.to_q." in n and ".spatial." in n))
    new_only = set_trainable(video_unet, "new_layers")
    assert new_only.trainable == count(video_unet, is_new)
    assert 0 < new_only.trainable < lamp.trainable < counts.trainable < total
    cross = set_trainable(video_unet, "cross_attention")  # the self-attention stays as pretrained
    cross_names = set(trainable_parameter_names(video_unet, "cross_attention"))
    assert cross.trainable == count(video_unet, lambda n: is_new(n) or (spatial_attention(n) and ".attn2." in n))
    assert not any(".attn1." in n and ".spatial." in n for n in cross_names)
    assert new_only.trainable < cross.trainable < counts.trainable
    assert "trainable of" in str(counts)
    assert set_trainable(video_unet, "all").trainable == total  # full fine-tuning
    with pytest.raises(ValueError):
        set_trainable(video_unet, "everything")


def test_the_all_scheme_shares_nothing_with_frame_1s_unet(unet2d):
    video_unet = inflate_unet(unet2d, share_frozen="all")
    shared = {p.data_ptr() for p in unet2d.parameters()} & {p.data_ptr() for p in video_unet.parameters()}
    assert shared == set()
    paper = inflate_unet(unet2d, share_frozen="paper")  # the paper's scheme shares what it does not train
    assert {p.data_ptr() for p in unet2d.parameters()} & {p.data_ptr() for p in paper.parameters()}


def test_trainable_state_dict_round_trip_through_safetensors(unet2d, tmp_path):
    trained = inflate_unet(unet2d).eval()
    randomize_new_layers(trained, seed=1)
    with torch.no_grad():
        trained.unet.down_blocks[0].attentions[0].spatial.transformer_blocks[0].attn1.to_q.weight.mul_(1.5)
    save_file(trainable_state_dict(trained, "paper"), tmp_path / "weights.safetensors")

    fresh = inflate_unet(unet2d).eval()
    loaded = load_trainable_state_dict(fresh, load_file(tmp_path / "weights.safetensors"), scheme="paper")
    assert len(loaded) == len(trainable_parameter_names(fresh, "paper"))
    latents, text = torch.randn(1, 4, 3, LATENT_SIZE, LATENT_SIZE), torch.randn(1, 7, TEXT_DIM)
    masks = torch.ones(1, 3, LATENT_SIZE, LATENT_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(
            fresh(latents, 300, text, masks), trained(latents, 300, text, masks), atol=0, rtol=0
        )


def test_load_trainable_state_dict_refuses_bad_input(unet2d):
    video_unet = inflate_unet(unet2d)
    state = trainable_state_dict(video_unet, "lamp")
    with pytest.raises(KeyError, match="missing"):
        load_trainable_state_dict(video_unet, state, scheme="paper")
    with pytest.raises(KeyError, match="match no parameter"):
        load_trainable_state_dict(video_unet, {"nope.weight": torch.zeros(1)})
    name = next(iter(state))
    with pytest.raises(ValueError, match="shape"):
        load_trainable_state_dict(video_unet, {name: torch.zeros(1)})


def test_first_frame_loss_is_eq2(unet2d):
    video_unet = inflate_unet(unet2d).eval()
    randomize_new_layers(video_unet)
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    )
    g = torch.Generator().manual_seed(0)
    latents, text = (
        torch.randn(2, 4, 3, LATENT_SIZE, LATENT_SIZE, generator=g),
        torch.randn(2, 7, TEXT_DIM, generator=g),
    )
    masks = (torch.rand(2, 3, LATENT_SIZE, LATENT_SIZE, generator=g) > 0.5).float()

    seen = {}
    hook = video_unet.register_forward_pre_hook(lambda module, args: seen.update(sample=args[0].clone()))
    with torch.no_grad():
        loss = first_frame_loss(
            video_unet, scheduler, latents, text, masks, generator=torch.Generator().manual_seed(5)
        )
    hook.remove()

    # the same draws, written out: noise first, then one timestep per video
    g = torch.Generator().manual_seed(5)
    noise = torch.randn(latents.shape, generator=g)
    t = torch.randint(0, 1000, (2,), generator=g)
    abar = scheduler.alphas_cumprod[t].view(2, 1, 1, 1, 1)
    noisy = abar.sqrt() * latents + (1 - abar).sqrt() * noise
    noisy[:, :, 0] = latents[:, :, 0]  # frame 1 stays clean
    torch.testing.assert_close(seen["sample"], noisy, atol=1e-6, rtol=1e-5)
    with torch.no_grad():
        pred = video_unet(noisy, t, text, masks)
    expected = ((pred[:, :, 1:] - noise[:, :, 1:]) ** 2).mean()  # frames 2..n only
    torch.testing.assert_close(loss, expected, atol=1e-6, rtol=1e-5)

    # the object-weighted variant: the same draws, each cell of frames 2..n weighted 1 + 3 x its mask
    with torch.no_grad():
        weighted = first_frame_loss(
            video_unet,
            scheduler,
            latents,
            text,
            masks,
            generator=torch.Generator().manual_seed(5),
            foreground_weight=3.0,
        )
    w = 1 + 3 * masks[:, 1:].unsqueeze(1)  # (B, 1, F-1, h, w): masks are at latent size here
    expected = ((pred[:, :, 1:] - noise[:, :, 1:]) ** 2 * w).mean() / w.mean()
    torch.testing.assert_close(weighted, expected, atol=1e-6, rtol=1e-5)
    assert not torch.isclose(weighted, loss)


def test_foreground_mse_weights_object_cells():
    pred, target = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    masks = torch.zeros(1, 1, 4, 4)
    masks[..., :2, :2] = 1  # the object covers the top-left latent cell fully ...
    masks[..., 2, 2] = 1  # ... and a quarter of the bottom-right one
    # weights 1 + 4 x cover = [[5, 1], [1, 2]]: (5*1 + 1*4 + 1*9 + 2*16) / 4 / mean weight (9 / 4)
    assert torch.isclose(foreground_mse(pred, target, masks, 4.0), torch.tensor(50 / 9))
    plain = torch.tensor(30 / 4)
    assert torch.isclose(foreground_mse(pred, target, masks, 0.0), plain)
    assert torch.isclose(foreground_mse(pred, target, None, 4.0), plain)
    assert torch.isclose(foreground_mse(pred, target, torch.zeros(1, 1, 4, 4), 4.0), plain)


def test_foreground_mse_on_videos_weights_each_frames_object():
    pred, target = torch.zeros(1, 2, 2, 1, 2), torch.ones(1, 2, 2, 1, 2)  # (B, C, F, h, w)
    target[:, :, 1] = 2  # frame 2 errs by 2, frame 1 by 1
    masks = torch.zeros(1, 2, 2, 4)  # (B, F, H, W): the object covers frame 1's left cell only
    masks[0, 0, :, :2] = 1
    # weights per frame [[3, 1], [1, 1]] (x both channels): (3*1 + 1*1 + 4 + 4) / 4 / (6 / 4)
    assert torch.isclose(foreground_mse(pred, target, masks, 2.0), torch.tensor(12 / 6))


def test_min_snr_weight_is_one_on_noisy_steps_and_gamma_over_snr_on_clean_ones():
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    )
    abar = scheduler.alphas_cumprod
    snr = abar / (1 - abar)
    t = torch.tensor([0, 100, 500, 999])
    w = min_snr_weight(abar, t, 5.0)
    assert snr[0] > 5 and snr[999] < 5  # the schedule spans both regimes
    assert torch.allclose(w, torch.minimum(snr[t], torch.tensor(5.0)) / snr[t])
    assert w[0] < 0.01 and w[3] == 1  # nearly clean steps weigh little, pure noise fully


def test_foreground_mse_sample_weight_scales_each_sample():
    pred, target = torch.zeros(2, 1, 1, 2), torch.ones(2, 1, 1, 2)
    target[1] = 2  # sample 2 errs by 2 (squared 4)
    weight = torch.tensor([1.0, 0.25])
    assert torch.isclose(foreground_mse(pred, target, None, 0.0, weight), torch.tensor((1 + 0.25 * 4) / 2))
    assert torch.isclose(
        foreground_mse(pred, target, None, 0.0, torch.ones(2)), foreground_mse(pred, target, None, 0.0)
    )


def test_first_frame_loss_trains_only_the_trainable_set(unet2d):
    video_unet = inflate_unet(unet2d).train()
    set_trainable(video_unet, "lamp")
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    latents = torch.randn(1, 4, 2, LATENT_SIZE, LATENT_SIZE)
    loss = first_frame_loss(
        video_unet, scheduler, latents, torch.randn(1, 7, TEXT_DIM), None, generator=torch.Generator().manual_seed(0)
    )
    loss.backward()
    with_grad = {n for n, p in video_unet.named_parameters() if p.grad is not None}
    assert with_grad and with_grad <= set(trainable_parameter_names(video_unet, "lamp"))
    assert torch.isfinite(loss)
