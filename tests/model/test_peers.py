"""The training-free peers' defining properties, on tiny seeded parts: who attends to whom, what the
smoother touches, where the motion field moves the scene."""

import numpy as np
import torch
from diffusers.models.attention_processor import Attention
from diffusers.pipelines.deprecated.text_to_video_synthesis.pipeline_text_to_video_zero import (
    create_motion_field_and_warp_latents,
)

from model.peers import (
    FullFrameAttnProcessor,
    motion_field_from_masks,
    sample_with_controlnet,
    scaled_steps,
    set_cross_frame_attention,
    smooth_interleaved,
    text2video_zero,
)
from tests.model.conftest import (
    ddim_scheduler,
    tiny_controlnet,
    tiny_text_encoder,
    tiny_tokenizer,
    tiny_unet2d,
    tiny_vae,
)

FRAMES, TOKENS, CHANNELS = 4, 6, 16


def self_attention(processor) -> Attention:
    torch.manual_seed(0)
    attn = Attention(CHANNELS, heads=2, dim_head=8)
    attn.set_processor(processor)
    return attn.eval()


def frames(seed=0):
    return torch.randn(FRAMES, TOKENS, CHANNELS, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_full_frame_attention_is_attention_over_every_frames_tokens():
    attn = self_attention(FullFrameAttnProcessor(num_videos=1))
    x = frames()
    out = attn(x)
    # reference: each frame's queries against all frames' tokens, with a plain processor
    plain = self_attention(None)
    plain.load_state_dict(attn.state_dict())
    q = plain.to_q(x)
    k, v = plain.to_k(x.reshape(1, -1, CHANNELS)), plain.to_v(x.reshape(1, -1, CHANNELS))
    heads = lambda t: t.view(t.shape[0], t.shape[1], 2, 8).transpose(1, 2)  # noqa: E731
    ref = torch.nn.functional.scaled_dot_product_attention(
        heads(q), heads(k).expand(FRAMES, -1, -1, -1), heads(v).expand(FRAMES, -1, -1, -1)
    )
    ref = plain.to_out[0](ref.transpose(1, 2).reshape(FRAMES, TOKENS, CHANNELS))
    torch.testing.assert_close(out, ref)
    # it sees every frame: changing frame 3 changes frame 0's output
    y = x.clone()
    y[3] += 1.0
    assert not torch.allclose(attn(y)[0], out[0])


@torch.no_grad()
def test_text2video_zero_attention_takes_keys_from_frame_1_only():
    from diffusers.pipelines.deprecated.text_to_video_synthesis.pipeline_text_to_video_zero import (
        CrossFrameAttnProcessor2_0,
    )

    attn = self_attention(CrossFrameAttnProcessor2_0(batch_size=1))
    x = frames()
    out = attn(x)
    y = x.clone()
    y[1] += 1.0  # frame 2 changes: only its own output moves (its queries), frames 3-4 do not
    moved = attn(y)
    assert (
        torch.allclose(moved[2:], out[2:])
        and torch.allclose(moved[0], out[0])
        and not torch.allclose(moved[1], out[1])
    )
    y = x.clone()
    y[0] += 1.0  # frame 1 changes: every frame's keys and values change
    assert all(not torch.allclose(a, b) for a, b in zip(attn(y), out))


def test_the_smoother_changes_only_the_interleaved_frames_it_should():
    x0 = torch.randn(6, 4, 3, 3)
    odd = smooth_interleaved(x0, parity=1)
    assert torch.equal(odd[[0, 2, 4, 5]], x0[[0, 2, 4, 5]])  # even frames, and the last (one neighbour), kept
    torch.testing.assert_close(odd[1], (x0[0] + x0[2]) / 2)
    torch.testing.assert_close(odd[3], (x0[2] + x0[4]) / 2)
    even = smooth_interleaved(x0, parity=0)
    assert torch.equal(even[[0, 1, 3, 5]], x0[[0, 1, 3, 5]])
    torch.testing.assert_close(even[4], (x0[3] + x0[5]) / 2)
    assert scaled_steps((19, 20, 50), 25) == (9, 10) and scaled_steps((44, 47, 50), 25) == (22, 23)


def test_the_motion_field_moves_the_latents_as_the_masks_move():
    masks = np.zeros((5, 64, 64), bool)
    for i in range(5):
        masks[i, 28:36, 8 + 4 * i : 16 + 4 * i] = True  # 4 px/frame to the right
    sx, sy = motion_field_from_masks(masks)
    assert sy == 0 and sx == -4 * 512 / 64
    latents = torch.zeros(5, 1, 16, 16)  # a 4x VAE: 1 latent px per frame
    latents[:, :, 7:9, 4:6] = 1.0
    warped = create_motion_field_and_warp_latents(sx, sy, list(range(5)), latents)
    for k in range(5):
        cols = torch.nonzero(warped[k, 0].sum(0)).flatten().tolist()
        assert cols == [4 + k, 5 + k], (k, cols)


@torch.no_grad()
def test_controlnet_sampler_shares_one_initial_latent_and_feeds_each_frame_its_mask():
    unet, scheduler = tiny_unet2d(), ddim_scheduler()
    controlnet = tiny_controlnet(unet)
    set_cross_frame_attention(unet, "all_frames", num_videos=1)
    set_cross_frame_attention(controlnet, "all_frames", num_videos=1)
    seen = []
    controlnet.register_forward_pre_hook(
        lambda m, a, kw: seen.append((a[0].clone(), kw["controlnet_cond"])), with_kwargs=True
    )
    conditions = torch.zeros(3, 1, 32, 32)
    for i in range(3):
        conditions[i, :, 8:16, 4 + 6 * i : 12 + 6 * i] = 1
    text = torch.randn(1, 16, 32)
    out = sample_with_controlnet(
        unet, controlnet, scheduler, text, conditions, (4, 8, 8), 2, 1.0, torch.Generator().manual_seed(0)
    )
    first_input, cond = seen[0]
    assert torch.equal(first_input[0], first_input[1]) and torch.equal(first_input[1], first_input[2])
    assert torch.equal(cond, conditions) and out.shape == (3, 4, 8, 8)
    assert not torch.allclose(out[0], out[2])  # the masks made the frames differ


def test_text2video_zero_runs_diffusers_pipeline_on_the_base_parts():
    pipe = text2video_zero(tiny_vae(), tiny_text_encoder(), tiny_tokenizer(), tiny_unet2d(), ddim_scheduler())
    out = pipe(
        "a red ball",
        video_length=3,
        height=32,
        width=32,
        num_inference_steps=4,
        guidance_scale=2.0,
        t0=2,
        t1=3,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    )
    assert out.images.shape == (3, 32, 32, 3)
