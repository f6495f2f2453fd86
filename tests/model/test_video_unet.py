"""Inflation: zero-init equivalence with the 2-D UNet, frame coupling, loading, SD1.4 architecture."""

import pytest
import torch
from diffusers import UNet2DConditionModel

from model.video_unet import VideoUNetConfig, build_sd14_unet, inflate_unet
from tests.model.conftest import LATENT_SIZE, TEXT_DIM, randomize_new_layers, tiny_unet2d


def video_inputs(b=2, f=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(b, 4, f, LATENT_SIZE, LATENT_SIZE, generator=g)
    text = torch.randn(b, 7, TEXT_DIM, generator=g)
    masks = (torch.rand(b, f, 4 * LATENT_SIZE, 4 * LATENT_SIZE, generator=g) > 0.5).float()
    return latents, torch.tensor([10, 700])[:b], text, masks


def frame_by_frame(unet2d, latents, t, text):
    b, c, f, h, w = latents.shape
    frames = latents.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    out = unet2d(frames, t.repeat_interleave(f), text.repeat_interleave(f, dim=0)).sample
    return out.view(b, f, c, h, w).permute(0, 2, 1, 3, 4)


@pytest.mark.parametrize("temporal", [True, False])
def test_inflated_per_frame_model_equals_2d_unet_frame_by_frame(unet2d, temporal):
    config = VideoUNetConfig(self_attention="per_frame", temporal_attention=temporal, temporal_conv=temporal)
    video_unet = inflate_unet(unet2d, config).eval()
    latents, t, text, masks = video_inputs()
    with torch.no_grad():
        out = video_unet(latents, t, text, masks)
        ref = frame_by_frame(unet2d, latents, t, text)
    assert out.shape == latents.shape
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert out.abs().mean() > 0.1  # a real prediction, not zeros


def test_first_frame_model_makes_frame_1_independent_of_later_frames(unet2d):
    # with first-frame attention and no temporal layers, frame 1 sees only itself,
    # while every later frame sees frame 1: proof that the frame count reaches the processors
    config = VideoUNetConfig(self_attention="first_frame", temporal_attention=False, temporal_conv=False)
    video_unet = inflate_unet(unet2d, config).eval()
    latents, t, text, masks = video_inputs()
    changed = latents.clone()
    changed[:, :, 0] += 1.0
    changed_last = latents.clone()
    changed_last[:, :, 2] += 1.0
    with torch.no_grad():
        out = video_unet(latents, t, text, masks)
        out_first_changed = video_unet(changed, t, text, masks)
        out_last_changed = video_unet(changed_last, t, text, masks)
        ref = frame_by_frame(unet2d, latents, t, text)
    torch.testing.assert_close(out[:, :, 0], ref[:, :, 0], atol=1e-5, rtol=1e-5)  # frame 1 is an image
    torch.testing.assert_close(out[:, :, :2], out_last_changed[:, :, :2], atol=1e-6, rtol=0)
    assert (out[:, :, 1:] - out_first_changed[:, :, 1:]).abs().max() > 1e-3


def test_temporal_layers_couple_frames_once_trained(unet2d):
    config = VideoUNetConfig(self_attention="per_frame", mask_cross_attention=False)
    video_unet = inflate_unet(unet2d, config).eval()
    randomize_new_layers(video_unet)
    latents, t, text, _ = video_inputs()
    changed = latents.clone()
    changed[:, :, 2] += 1.0
    with torch.no_grad():
        delta = (video_unet(latents, t, text) - video_unet(changed, t, text))[:, :, 0]
    assert delta.abs().max() > 1e-4


def test_per_frame_timesteps(unet2d):
    video_unet = inflate_unet(unet2d).eval()
    latents, t, text, masks = video_inputs()
    with torch.no_grad():
        shared = video_unet(latents, t, text, masks)
        per_frame = video_unet(latents, t[:, None].expand(-1, 3), text, masks)
    torch.testing.assert_close(shared, per_frame, atol=0, rtol=0)


def test_gradient_checkpointing_gives_same_gradients(unet2d):
    torch.manual_seed(0)
    latents, t, text, masks = video_inputs(b=1, f=2)
    grads = []
    for checkpointing in (False, True):
        video_unet = inflate_unet(unet2d)
        randomize_new_layers(video_unet)
        video_unet.train()
        if checkpointing:
            video_unet.enable_gradient_checkpointing()
        video_unet(latents, t[:1], text, masks).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in video_unet.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-4)


def test_saved_unet_loads_and_inflates(tmp_path):
    tiny_unet2d(seed=3).save_pretrained(tmp_path / "unet")
    unet2d = UNet2DConditionModel.from_pretrained(tmp_path / "unet").eval()
    video_unet = inflate_unet(unet2d, VideoUNetConfig(self_attention="per_frame")).eval()
    latents, t, text, masks = video_inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            video_unet(latents, t, text, masks), frame_by_frame(unet2d, latents, t, text), atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("scheme", ["paper", "lamp"])
def test_sharing_frozen_weights_holds_the_unet_once_and_changes_nothing(scheme):
    from model.trainable import load_trainable_state_dict, trainable_parameter_names, trainable_state_dict

    unet2d = tiny_unet2d().eval()
    before = {name: p.clone() for name, p in unet2d.named_parameters()}
    shared, copied = inflate_unet(unet2d, share_frozen=scheme).eval(), inflate_unet(unet2d).eval()
    randomize_new_layers(copied)
    trained = trainable_state_dict(copied, scheme)
    for name in trained:  # "training" moved every trained weight, the pretrained projections included
        trained[name] = trained[name] + 0.01
    for model in (shared, copied):
        load_trainable_state_dict(model, trained, scheme)
    ptrs = {p.data_ptr() for p in unet2d.parameters()}
    names = set(trainable_parameter_names(shared, scheme))
    for name, param in shared.named_parameters():
        assert (param.data_ptr() in ptrs) == (name not in names), name  # shared exactly when not trained
    assert all(torch.equal(p, before[name]) for name, p in unet2d.named_parameters())  # frame 1's UNet untouched
    latents, t, text, masks = video_inputs()
    with torch.no_grad():
        assert torch.equal(shared(latents, t, text, masks), copied(latents, t, text, masks))
    with pytest.raises(KeyError, match="outside"):
        load_trainable_state_dict(shared, {**trained, "unet.conv_in.weight": unet2d.conv_in.weight}, scheme)


def test_inflate_rejects_other_models():
    with pytest.raises(TypeError):
        inflate_unet(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError):
        VideoUNetConfig(self_attention="causal")


@pytest.mark.slow
def test_sd14_architecture_inflates_and_runs():
    torch.manual_seed(0)
    unet2d = build_sd14_unet().eval()
    assert 855e6 < sum(p.numel() for p in unet2d.parameters()) < 865e6  # SD1.4's UNet: 859.5M
    video_unet = inflate_unet(unet2d, copy_unet=False).eval()
    latents = torch.randn(1, 4, 2, 8, 8)
    with torch.no_grad():
        out = video_unet(latents, 500, torch.randn(1, 77, 768), torch.ones(1, 2, 64, 64))
    assert out.shape == latents.shape and torch.isfinite(out).all()


def test_temporal_conv_is_a_3_tap_convolution_along_frames():
    from model.temporal import TemporalConv

    torch.manual_seed(0)
    layer = TemporalConv(8)
    torch.nn.init.normal_(layer.conv.weight, std=0.2)
    torch.nn.init.normal_(layer.conv.bias, std=0.2)
    b, f = 2, 5
    x = torch.randn(b * f, 8, 3, 4)
    with torch.no_grad():
        normed = torch.nn.functional.silu(layer.norm(x)).view(b, f, 8, 3, 4).permute(0, 2, 1, 3, 4)
        expected = x + layer.conv(normed).permute(0, 2, 1, 3, 4).reshape(b * f, 8, 3, 4)  # the module's own Conv3d
        torch.testing.assert_close(layer(x, f), expected, atol=1e-5, rtol=1e-5)
        # frame 2's output moves with frames 1-3 and with nothing else
        later = x.view(b, f, 8, 3, 4).clone()
        later[:, 4] += 1.0
        assert torch.equal(
            layer(later.view(b * f, 8, 3, 4), f).view(b, f, 8, 3, 4)[:, :3], layer(x, f).view(b, f, 8, 3, 4)[:, :3]
        )
