"""The attention processors against explicit formulas (eq. 5, Tune-A-Video, eq. 6-7)."""

import math

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from model.attention import MaskCrossAttnProcessor, ObjectPrompts, SpatialSelfAttnProcessor, VideoContext

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


# ---- regional text: per-object prompts ------------------------------------------------------------


def trained_mask_processor(seed=1):
    processor = MaskCrossAttnProcessor(C, hidden_channels=6)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in processor.mask_branch.parameters():  # a "trained" branch: non-zero m
            p.normal_(0, 0.5)
    return processor


def legacy_mask_cross_attention(processor, attn, x, text, video):
    """The mask cross-attention as it was before regional text (eq. 6-7, same operations in the same order)."""
    from model.attention_ops import attend, merge_heads, norm_qk, project_out, split_heads

    query = attn.to_q(x)
    if video.masks is not None:  # on the rows the masks cover (the sampler's batched passes: the first ones)
        term = processor.mask_term(attn, video, x.shape[1], query.dtype)
        query = torch.cat([query[: len(term)] + term, query[len(term) :]])
    key, value = attn.to_k(text), attn.to_v(text)
    query, key, value = (split_heads(t, attn.heads) for t in (query, key, value))
    query, key = norm_qk(attn, query, key)
    out = attend(query, key, value, None, processor.slice_size)
    return project_out(attn, merge_heads(out).to(query.dtype), x)


def test_without_object_prompts_mask_cross_attention_is_bit_identical_to_before():
    attn = random_attention(cross_dim=12)
    processor = trained_mask_processor()
    attn.set_processor(processor)
    x, text = torch.randn(B * F, N, C), torch.randn(B * F, 5, 12)
    video = VideoContext(num_frames=F, latent_size=(H, W), masks=(torch.rand(B * F, 1, H, W) > 0.5).float())
    with torch.no_grad():
        assert torch.equal(attn(x, text, video=video), legacy_mask_cross_attention(processor, attn, x, text, video))


def test_one_object_with_the_scene_prompt_reduces_to_eq7():
    attn = random_attention(cross_dim=12)
    attn.set_processor(trained_mask_processor())
    x, text = torch.randn(B * F, N, C), torch.randn(B * F, 5, 12)
    masks = (torch.rand(B * F, 1, 4 * H, 4 * W) > 0.5).float()  # soft after the area resize to the layer
    plain = VideoContext(num_frames=F, latent_size=(H, W), masks=masks)
    routed = VideoContext(
        num_frames=F, latent_size=(H, W), masks=masks, objects=ObjectPrompts(text=text[:, None], masks=masks)
    )
    with torch.no_grad():
        torch.testing.assert_close(attn(x, text, video=routed), attn(x, text, video=plain), atol=1e-5, rtol=1e-5)


def two_object_context(text_dim=12, length=5):
    """Two objects with disjoint hard masks at the layer's resolution: left and right halves of rows 0-1."""
    masks = torch.zeros(B * F, 2, H, W)
    masks[:, 0, :2, : W // 2] = 1
    masks[:, 1, :2, W // 2 :] = 1
    objects = ObjectPrompts(text=torch.randn(B * F, 2, length, text_dim), masks=masks)
    union = masks.amax(1, keepdim=True)
    return VideoContext(num_frames=F, latent_size=(H, W), masks=union, objects=objects)


@pytest.mark.parametrize("trained", [False, True])
def test_with_hard_routing_an_objects_tokens_act_only_inside_its_mask(trained):
    attn = random_attention(cross_dim=12)
    attn.set_processor(trained_mask_processor() if trained else MaskCrossAttnProcessor(None))
    x, scene = torch.randn(B * F, N, C), torch.randn(B * F, 5, 12)
    video = two_object_context()
    other = VideoContext(**{**vars(video), "_mask_cache": {}})
    other.objects = ObjectPrompts(text=video.objects.text.clone(), masks=video.objects.masks)
    other.objects.text[:, 0] = torch.randn_like(other.objects.text[:, 0])  # new words for object 1 only
    with torch.no_grad():
        out, changed = attn(x, scene, video=video), attn(x, scene, video=other)
    inside = video.objects.masks[:, 0].flatten(1).bool()  # (B*F, N)
    assert torch.equal(out[~inside], changed[~inside])  # not one bit moved outside object 1's mask
    assert (out[inside] - changed[inside]).abs().amax() > 1e-3
    # and the scene's words act nowhere inside the objects' masks
    with torch.no_grad():
        new_scene = attn(x, torch.randn_like(scene), video=video)
    union = video.masks.flatten(1).bool()
    assert torch.equal(out[union], new_scene[union])
    assert (out[~union] - new_scene[~union]).abs().amax() > 1e-3


def test_each_object_attention_is_eq7_with_its_own_mask_term_blended_by_the_masks():
    attn = random_attention(cross_dim=12)
    processor = trained_mask_processor()
    attn.set_processor(processor)
    x, scene = torch.randn(B * F, N, C), torch.randn(B * F, 5, 12)
    video = two_object_context()
    video.objects.masks[:, 1, 1, W // 2] = 0.5  # a soft token: object 2 takes half of it
    with torch.no_grad():
        out = attn(x, scene, video=video)
        attn.set_processor(AttnProcessor2_0())  # to reach the attention's own projections below

        def eq7(text, mask):  # one object's (or the scene's) attention output before to_out, eq. 7
            video_k = VideoContext(num_frames=F, latent_size=(H, W), masks=mask)
            return legacy_mask_cross_attention(processor, attn, x, text, video_k)

        m = video.objects.masks.flatten(2)  # (B*F, 2, N)
        ref = (1 - m.sum(1))[..., None] * eq7(scene, video.masks)
        ref = ref + sum(
            m[:, k, :, None] * eq7(video.objects.text[:, k], video.objects.masks[:, k : k + 1]) for k in (0, 1)
        )
    # blending before or after the (affine) output projection is the same since the shares sum to 1
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_a_token_touched_by_an_object_is_the_objects():
    masks = torch.zeros(1, 1, 4 * H, 4 * W)
    masks[..., 0, 0] = 1  # one pixel of the first token's 4x4 block
    video = VideoContext(num_frames=1, latent_size=(H, W), objects=ObjectPrompts(torch.zeros(1, 1, 2, 4), masks))
    shares = video.object_weights_at(N)[0, 0]
    assert shares[0] == 1 and shares[1:].sum() == 0


def test_object_shares_never_exceed_one_where_masks_overlap():
    masks = torch.ones(1, 3, H, W)
    video = VideoContext(num_frames=1, latent_size=(H, W), objects=ObjectPrompts(torch.zeros(1, 3, 2, 4), masks))
    shares = video.object_weights_at(N)
    torch.testing.assert_close(shares.sum(1), torch.ones(1, N))
    with pytest.raises(ValueError, match="agree"):
        ObjectPrompts(torch.zeros(1, 2, 2, 4), torch.zeros(1, 3, H, W))


# ---- per-object prompts: the objects kept apart in self-attention ------------------------------------


def test_self_attention_mask_closes_only_keys_of_other_objects():
    from model.attention import self_attention_mask

    # tokens: 0 object 1, 1 object 2, 2 both (where they meet), 3 background
    members = torch.tensor([[[1, 0], [0, 1], [1, 1], [0, 0]]], dtype=torch.bool)
    open_ = self_attention_mask(members, members)[0, 0]
    expected = torch.tensor(
        [
            [1, 0, 1, 1],  # object 1 looks at itself, the shared token and the background
            [0, 1, 1, 1],
            [1, 1, 1, 1],  # a token of both objects looks at both
            [1, 1, 1, 1],  # the background looks everywhere, as without objects
        ],
        dtype=torch.bool,
    )
    assert torch.equal(open_, expected)
    # a query with nothing left to look at (every key another object's) looks everywhere
    lone = self_attention_mask(torch.tensor([[[1, 0]]], dtype=torch.bool), torch.tensor([[[0, 1], [0, 1]]]).bool())
    assert lone.all()


@pytest.mark.parametrize("mode", ["first_frame", "sparse_causal", "per_frame", "full"])
def test_kept_apart_an_object_never_reads_another_objects_tokens(mode):
    attn = random_attention()
    attn.set_processor(SpatialSelfAttnProcessor(mode))
    video = two_object_context()
    x = torch.randn(B * F, N, C)
    touched = x.clone()
    second = video.objects.masks[:, 1].flatten(1).bool()  # (B*F, N): object 2's tokens, every frame
    touched[second] += torch.randn_like(touched[second])
    with torch.no_grad():
        out, changed = attn(x, video=video), attn(touched, video=video)
    first = video.objects.masks[:, 0].flatten(1).bool()
    assert torch.equal(out[first], changed[first])  # object 1 read nothing of object 2
    background = ~video.masks.flatten(1).bool()
    assert (out[background] - changed[background]).abs().amax() > 1e-3  # the background still reads both


def test_rows_without_objects_self_attend_as_without_object_prompts():
    attn = random_attention()
    attn.set_processor(SpatialSelfAttnProcessor("first_frame"))
    video = two_object_context()
    video.objects.masks[:F] = 0  # video 1 has no objects (as the unconditional half of guidance)
    x = torch.randn(B * F, N, C)
    with torch.no_grad():
        plain = attn(x, video=VideoContext(num_frames=F, latent_size=(H, W)))
        out = attn(x, video=video)
    assert torch.equal(out[:F], plain[:F])
    assert (out[F:] - plain[F:]).abs().amax() > 1e-3  # video 2's objects are kept apart
