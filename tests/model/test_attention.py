"""The attention processors against explicit formulas (eq. 5, Tune-A-Video, eq. 6-7)."""

import math

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from model.attention import MaskCrossAttnProcessor, SpatialSelfAttnProcessor, VideoContext

B, F, H, W, C, HEADS, D = 2, 4, 4, 4, 16, 2, 8
N = H * W


def random_attention(cross_dim=None, seed=0):
    torch.manual_seed(seed)
    attn = Attention(query_dim=C, cross_attention_dim=cross_dim, heads=HEADS, dim_head=D).eval()
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.3)
    return attn


def heads(x):
    return x.view(*x.shape[:-1], HEADS, D).transpose(-3, -2)  # (..., n, h*d) -> (..., h, n, d)


def explicit_attention(q, k, v):
    """softmax(q k^T / sqrt(d)) v per head, written out: (n, h*d) x (m, h*d) -> (n, h*d)."""
    q, k, v = heads(q), heads(k), heads(v)
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)
    out = scores.softmax(-1) @ v
    return out.transpose(0, 1).reshape(q.shape[1], HEADS * D)


def reference_self_attention(attn, x, keys_of):
    """For frame i of video b, attend to the concatenated tokens of frames keys_of(i)."""
    x = x.view(B, F, N, C)
    out = torch.empty(B, F, N, HEADS * D)
    for b in range(B):
        for i in range(F):
            context = torch.cat([x[b, j] for j in keys_of(i)])
            out[b, i] = explicit_attention(attn.to_q(x[b, i]), attn.to_k(context), attn.to_v(context))
    return attn.to_out[0](out).view(B * F, N, C)


@pytest.mark.parametrize(
    "mode, keys_of",
    [
        ("first_frame", lambda i: [0]),  # eq. 5: K, V from frame 1
        ("sparse_causal", lambda i: [0, max(i - 1, 0)]),  # Tune-A-Video: frame 1 and frame i-1
        ("per_frame", lambda i: [i]),
        ("full", lambda i: list(range(F))),
    ],
)
def test_self_attention_matches_explicit_reference(mode, keys_of):
    attn = random_attention()
    attn.set_processor(SpatialSelfAttnProcessor(mode))
    x = torch.randn(B * F, N, C)
    with torch.no_grad():
        out = attn(x, video=VideoContext(num_frames=F, latent_size=(H, W)))
        ref = reference_self_attention(attn, x, keys_of)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_per_frame_equals_diffusers_processor():
    attn = random_attention()
    x = torch.randn(B * F, N, C)
    with torch.no_grad():
        attn.set_processor(AttnProcessor2_0())
        ref = attn(x)
        attn.set_processor(SpatialSelfAttnProcessor("per_frame"))
        out = attn(x, video=VideoContext(num_frames=F, latent_size=(H, W)))
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)


def test_first_frame_attention_needs_frame_count():
    attn = random_attention()
    attn.set_processor(SpatialSelfAttnProcessor("first_frame"))
    with pytest.raises(ValueError, match="frame count"):
        attn(torch.randn(B * F, N, C))


def test_mask_cross_attention_matches_eq7():
    text_dim, length = 12, 5
    attn = random_attention(cross_dim=text_dim)
    processor = MaskCrossAttnProcessor(C, hidden_channels=6)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in processor.mask_branch.parameters():  # a "trained" branch: non-zero m
            p.normal_(0, 0.5)
    attn.set_processor(processor)
    x, text = torch.randn(B * F, N, C), torch.randn(B * F, length, text_dim)
    masks = (torch.rand(B * F, 1, 4 * H, 4 * W) > 0.5).float()  # pixel resolution, 4x the layer's
    video = VideoContext(num_frames=F, latent_size=(H, W), masks=masks)
    with torch.no_grad():
        out = attn(x, text, video=video)
        # eq. 6-7 written out: m at the layer's resolution, M = W^Q m, scores (QK^T + MK^T)/sqrt(d)
        small = torch.nn.functional.avg_pool2d(masks, 4)
        m = processor.mask_branch(small).flatten(2).transpose(1, 2)
        ref = torch.empty(B * F, N, HEADS * D)
        for n in range(B * F):
            q, k, v = heads(attn.to_q(x[n])), heads(attn.to_k(text[n])), heads(attn.to_v(text[n]))
            mq = heads(m[n] @ attn.to_q.weight.T)
            scores = (q @ k.transpose(-1, -2) + mq @ k.transpose(-1, -2)) / math.sqrt(D)
            ref[n] = (scores.softmax(-1) @ v).transpose(0, 1).reshape(N, HEADS * D)
        ref = attn.to_out[0](ref)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # and the mask term really changes the result
    with torch.no_grad():
        plain = attn(x, text, video=VideoContext(num_frames=F, latent_size=(H, W)))
    assert (out - plain).abs().max() > 1e-3


def test_zero_initialised_mask_branch_is_plain_cross_attention():
    attn = random_attention(cross_dim=12)
    x, text = torch.randn(B * F, N, C), torch.randn(B * F, 5, 12)
    masks = (torch.rand(B * F, 1, H, W) > 0.5).float()
    with torch.no_grad():
        attn.set_processor(AttnProcessor2_0())
        ref = attn(x, text)
        attn.set_processor(MaskCrossAttnProcessor(C))
        out = attn(x, text, video=VideoContext(num_frames=F, latent_size=(H, W), masks=masks))
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)


def test_layer_size_follows_diffusers_downsampling():
    video = VideoContext(num_frames=1, latent_size=(9, 13))
    assert video.layer_size(9 * 13) == (9, 13)
    assert video.layer_size(5 * 7) == (5, 7)  # ceil(9/2), ceil(13/2)
    assert video.layer_size(3 * 4) == (3, 4)
    with pytest.raises(ValueError):
        video.layer_size(10)
