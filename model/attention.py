"""Attention processors for the inflated video UNet.

Two jobs, both as diffusers attention processors (set with ``set_attn_processor``), so the
pretrained 2-D UNet is reused as is and only the attention arithmetic changes:

- ``SpatialSelfAttnProcessor``: the spatial self-attention (``attn1``) of every transformer block,
  in one of four modes (``SELF_ATTENTION_MODES``). ``first_frame`` is eq. 5 of the paper. With
  per-object prompts it keeps the objects apart (``self_attention_mask``).
- ``MaskCrossAttnProcessor``: the text cross-attention (``attn2``) with the mask term of eq. 6-7,
  and, when the objects of a video carry their own prompts (``ObjectPrompts``), regional text:
  each object's tokens act inside its own mask, the scene prompt elsewhere.

How the frame count and the masks reach the processors: the video UNet passes a ``VideoContext``
as ``cross_attention_kwargs={"video": context}``. diffusers forwards ``cross_attention_kwargs``
untouched through the UNet blocks to every ``Attention`` call, and gradient checkpointing captures
it as an argument, so no shared mutable state is needed. Every processor here accepts ``video``.

Tensor layout inside a processor: ``hidden_states`` is ``(B*F, N, C)`` with the frames of one video
contiguous (frame-major within a video), ``N = h*w`` tokens at the layer's resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from model.attention_ops import attend, check_plain_attention, merge_heads, norm_qk, project_out, split_heads

SELF_ATTENTION_MODES = ("first_frame", "sparse_causal", "per_frame", "full")


@dataclass
class ObjectPrompts:
    """Per-object text for regional mask cross-attention, one entry per row of the attention batch.

    Args:
        text: ``(b, K, L, D)`` text embeddings of each of the K objects' prompts.
        masks: ``(b, K, Hm, Wm)`` float masks in [0, 1], object k's own mask, at any resolution. A row
            whose masks are all zero is not routed (the unconditional half of classifier-free guidance).
    """

    text: torch.Tensor
    masks: torch.Tensor

    def __post_init__(self):
        if self.text.ndim != 4 or self.masks.ndim != 4 or self.text.shape[:2] != self.masks.shape[:2]:
            raise ValueError(
                f"object prompts: text (b, K, L, D) and masks (b, K, H, W) must agree on (b, K), got "
                f"{tuple(self.text.shape)} and {tuple(self.masks.shape)}"
            )


@dataclass
class VideoContext:
    """What the processors need to know about the video being denoised.

    Args:
        num_frames: F, frames per video; the processors' batch is ``B*F``.
        latent_size: ``(H, W)`` of the latents fed to the UNet; layer resolutions are derived from it.
        masks: ``(M, 1, Hm, Wm)`` float foreground masks in [0, 1] at any resolution (pixel or
            latent), or None for no mask guidance. ``M = B*F`` in training; ``M < B*F`` when only the
            first ``M`` rows carry masks and the rest run without the mask term (the sampler batches its
            pass without masks, for mask guidance, behind the guided ones: ``MaskCrossAttnProcessor``).
        objects: per-object prompts and masks, ``b = B*F`` rows, or None (one prompt for the video).
    """

    num_frames: int
    latent_size: tuple[int, int]
    masks: torch.Tensor | None = None
    objects: ObjectPrompts | None = None
    _mask_cache: dict = field(default_factory=dict, repr=False)

    def layer_size(self, num_tokens: int) -> tuple[int, int]:
        """``(h, w)`` of the UNet level that has ``num_tokens`` spatial tokens.

        diffusers' stride-2 downsamplers map a side ``s`` to ``ceil(s / 2)``; walk down until the
        token count matches, so odd latent sizes work too.
        """
        h, w = self.latent_size
        while h * w > num_tokens:
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        if h * w != num_tokens:
            raise ValueError(f"{num_tokens} tokens match no UNet level of a {self.latent_size} latent")
        return h, w

    def mask_at(self, num_tokens: int) -> torch.Tensor:
        """The masks resized (area interpolation) to the layer with ``num_tokens`` tokens.

        Returns ``(B*F, 1, h, w)`` float in [0, 1]; soft values on edges after downsampling.
        Cached per resolution: every layer of a level shares one resize.
        """
        if self.masks is None:
            raise ValueError("this VideoContext carries no masks")
        if num_tokens not in self._mask_cache:
            self._mask_cache[num_tokens] = F.interpolate(self.masks, size=self.layer_size(num_tokens), mode="area")
        return self._mask_cache[num_tokens]

    def object_masks_at(self, num_tokens: int) -> torch.Tensor:
        """Each object's mask max-pooled to the layer with ``num_tokens`` tokens: ``(B*F, K, N)``.

        A token any of whose pixels is the object's is the object's: at the coarse levels a small
        object would otherwise get only a fraction of a token, and the scene's words decided its
        colour (measured in docs/results.md).
        """
        if self.objects is None:
            raise ValueError("this VideoContext carries no object prompts")
        key = ("objects", num_tokens)
        if key not in self._mask_cache:
            self._mask_cache[key] = F.adaptive_max_pool2d(self.objects.masks, self.layer_size(num_tokens)).flatten(2)
        return self._mask_cache[key]

    def object_weights_at(self, num_tokens: int) -> torch.Tensor:
        """Each object's share of every token: ``(B*F, K, N)`` (``object_shares`` of the max-pooled masks)."""
        return object_shares(self.object_masks_at(num_tokens))


def object_shares(masks: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """The objects' shares of each position: ``masks`` ``(b, K, ...)`` in [0, 1] (max-pooled to
    ``size`` first when given) divided by ``max(1, sum_k m_k)`` where objects meet, so the shares
    never exceed 1; the scene takes ``1 - sum_k``."""
    if size is not None:
        masks = F.adaptive_max_pool2d(masks, size)
    return masks / masks.sum(1, keepdim=True).clamp(min=1.0)


def self_attention_mask(query_objects: torch.Tensor, key_objects: torch.Tensor) -> torch.Tensor:
    """Which keys each query may look at when the objects are kept apart: bool ``(b, 1, Nq, Nk)``.

    ``query_objects`` ``(b, Nq, K)`` and ``key_objects`` ``(b, Nk, K)`` say which objects each token
    belongs to. A query inside some object's mask may not look at a key that belongs to other
    objects only; background keys and keys it shares an object with stay open, and a background
    query looks everywhere, as before. This is DenseDiffusion's self-attention modulation made hard:
    without it, a second object copies the first one's look from frame 1 where they meet. A query
    left with no key at all (frame 1 wholly covered by other objects) looks everywhere.
    """
    shared = torch.einsum("bqk,bnk->bqn", query_objects.float(), key_objects.float()) > 0
    closed = query_objects.any(-1)[:, :, None] & key_objects.any(-1)[:, None, :] & ~shared
    closed &= ~closed.all(-1, keepdim=True)
    return ~closed[:, None]


def set_attention_slice(module: nn.Module, slice_size: int | str | None) -> None:
    """Attention slicing for every video processor under ``module`` (None turns it off)."""
    for sub in module.modules():
        processor = getattr(sub, "processor", None)
        if isinstance(processor, (SpatialSelfAttnProcessor, MaskCrossAttnProcessor)):
            processor.slice_size = slice_size


class SpatialSelfAttnProcessor:
    """Spatial self-attention across the frames of a video.

    Modes (which frames a query of frame i may look at):
        ``first_frame``: frame 1 only (eq. 5): ``softmax(Q_i K_1^T / sqrt(d)) V_1``.
        ``sparse_causal``: frame 1 and frame i-1 (Tune-A-Video); frame 1 looks at itself.
        ``per_frame``: frame i only (plain image self-attention).
        ``full``: every frame of the video (full spatio-temporal attention; a cost baseline).

    With per-object prompts (``video.objects``) the objects are also kept apart here:
    a token of object k looks only at keys of object k and of the background (``self_attention_mask``).
    """

    def __init__(self, mode: str = "first_frame"):
        if mode not in SELF_ATTENTION_MODES:
            raise ValueError(f"self-attention mode must be one of {SELF_ATTENTION_MODES}, got {mode!r}")
        self.mode = mode
        self.slice_size: int | str | None = None  # attention slicing (set_attention_slice)

    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        video: VideoContext | None = None,
    ) -> torch.Tensor:
        check_plain_attention(attn, hidden_states)
        if encoder_hidden_states is not None or attention_mask is not None:
            raise NotImplementedError("spatial self-attention takes no encoder states or attention mask")
        num_frames = 1 if video is None else video.num_frames
        if self.mode != "per_frame" and video is None:
            raise ValueError(f"{self.mode!r} self-attention needs the frame count: pass a VideoContext as `video`")
        bf, n, c = hidden_states.shape
        if bf % num_frames:
            raise ValueError(f"batch {bf} is not a multiple of num_frames {num_frames}")
        b, f, heads = bf // num_frames, num_frames, attn.heads

        query = attn.to_q(hidden_states)  # (B*F, N, inner)
        inner = query.shape[-1]
        if self.mode == "first_frame":
            # K and V from frame 1 only, computed once per video. Stacking the F query sets along the
            # sequence axis, (B, F*N, inner) against (B, N, inner), is the same as broadcasting K_1,
            # V_1 to every frame with expand, but never materialises F copies: cost is linear in F.
            first = hidden_states.view(b, f, n, c)[:, 0]
            key, value = attn.to_k(first), attn.to_v(first)  # (B, N, inner)
            query = query.reshape(b, f * n, inner)
        elif self.mode == "sparse_causal":
            key = attn.to_k(hidden_states).view(b, f, n, inner)
            value = attn.to_v(hidden_states).view(b, f, n, inner)
            previous = torch.clamp(torch.arange(f, device=key.device) - 1, min=0)
            # keys of frame i: [frame 1 | frame i-1] concatenated along the token axis
            key = torch.cat([key[:, :1].expand(b, f, n, inner), key[:, previous]], dim=2).reshape(bf, 2 * n, inner)
            value = torch.cat([value[:, :1].expand(b, f, n, inner), value[:, previous]], dim=2).reshape(
                bf, 2 * n, inner
            )
        elif self.mode == "full":
            query = query.reshape(b, f * n, inner)
            key = attn.to_k(hidden_states).reshape(b, f * n, inner)
            value = attn.to_v(hidden_states).reshape(b, f * n, inner)
        else:  # per_frame
            key, value = attn.to_k(hidden_states), attn.to_v(hidden_states)

        attn_mask = None
        if video is not None and video.objects is not None:
            attn_mask = self._object_mask(video, b, f, n)
        query, key, value = (split_heads(x, heads) for x in (query, key, value))
        query, key = norm_qk(attn, query, key)
        out = attend(query, key, value, attn_mask, slice_size=self.slice_size)
        out = merge_heads(out).reshape(bf, n, inner).to(query.dtype)
        return project_out(attn, out, hidden_states)

    def _object_mask(self, video: VideoContext, b: int, f: int, n: int) -> torch.Tensor:
        """``self_attention_mask`` for this mode's queries and keys, from every frame's object masks."""
        members = video.object_masks_at(n) > 0  # (B*F, K, N)
        members = members.transpose(1, 2).reshape(b, f, n, -1)  # (B, F, N, K)
        if self.mode == "first_frame":
            queries, keys = members.reshape(b, f * n, -1), members[:, 0]
        elif self.mode == "sparse_causal":
            previous = torch.clamp(torch.arange(f, device=members.device) - 1, min=0)
            queries = members.reshape(b * f, n, -1)
            keys = torch.cat([members[:, :1].expand_as(members), members[:, previous]], dim=2)
            keys = keys.reshape(b * f, 2 * n, -1)
        elif self.mode == "full":
            queries = keys = members.reshape(b, f * n, -1)
        else:  # per_frame
            queries = keys = members.reshape(b * f, n, -1)
        return self_attention_mask(queries, keys)


def build_mask_branch(channels: int, hidden_channels: int = 32) -> nn.Sequential:
    """The small new branch that lifts a one-channel mask to a layer's channel width.

    ``(B*F, 1, h, w)`` mask -> ``(B*F, channels, h, w)`` features ``m`` of eq. 6. A 3x3 conv sees
    the mask's edges, a 1x1 conv widens. The last conv is zero-initialised, so ``m = 0`` and the
    layer is exactly the pretrained cross-attention until training moves it; the first conv keeps
    its random init so gradients reach the last one.
    """
    branch = nn.Sequential(
        nn.Conv2d(1, hidden_channels, kernel_size=3, padding=1),
        nn.SiLU(),
        nn.Conv2d(hidden_channels, channels, kernel_size=1),
    )
    nn.init.zeros_(branch[2].weight)
    nn.init.zeros_(branch[2].bias)
    return branch


class MaskCrossAttnProcessor(nn.Module):
    """Text cross-attention with the foreground mask in the scores (eq. 6-7), and regional text.

    ``softmax((Q K^T + M K^T) / sqrt(d)) V`` with ``M = W^Q m``. Since ``Q K^T + M K^T = (Q + M) K^T``
    this is plain SDPA on ``Q + M``. ``W^Q`` is the layer's own query projection, applied without
    its bias (eq. 6 has none), so a zero ``m`` adds exactly nothing.

    Regional text (``video.objects``): object k's prompt gets its own attention,
    ``softmax((Q + M_k) K_k^T / sqrt(d)) V_k`` with ``M_k = W^Q branch(m_k)`` (its own mask), and the
    outputs are blended token by token: ``(1 - sum_k w_k) A_scene + sum_k w_k A_k`` with ``w_k`` the
    object's share of the token (``VideoContext.object_weights_at``). Object k's tokens therefore act
    only where ``w_k > 0``; with one object whose prompt is the scene prompt, it is eq. 7 again.
    Without object prompts the computation is exactly the one above.

    The processor is an ``nn.Module`` so the mask branch is registered under the attention module
    (``...attn2.processor.mask_branch.*``) and travels with the UNet's state dict.

    Args:
        channels: the layer's query width (``attn.to_q.in_features``); None builds no mask branch,
            i.e. plain cross-attention (the "w/o mask" ablation).
        hidden_channels: width of the mask branch's hidden conv.
    """

    def __init__(self, channels: int | None, hidden_channels: int = 32):
        super().__init__()
        self.mask_branch = None if channels is None else build_mask_branch(channels, hidden_channels)
        self.slice_size: int | str | None = None  # attention slicing (set_attention_slice)

    def mask_term(self, attn, video: VideoContext, num_tokens: int, dtype: torch.dtype) -> torch.Tensor:
        """``M = W^Q m`` for every token: ``(B*F, N, inner)``."""
        return self.lift(attn, video.mask_at(num_tokens).to(dtype))

    def lift(self, attn, mask: torch.Tensor) -> torch.Tensor:
        """``W^Q branch(mask)``: a ``(b, 1, h, w)`` mask at the layer's size -> ``(b, h*w, inner)``."""
        m = self.mask_branch(mask).flatten(2).transpose(1, 2)  # (b, N, channels)
        return F.linear(m, attn.to_q.weight)

    @staticmethod
    def add_to_first_rows(query: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
        """``query + term`` on the rows ``term`` covers (the first ones); the other rows as they are.
        Row for row the same sums as a call with only the masked rows, so batching the sampler's passes
        changes no value."""
        rows = term.shape[0]
        return query + term if rows == query.shape[0] else torch.cat([query[:rows] + term, query[rows:]])

    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        video: VideoContext | None = None,
    ) -> torch.Tensor:
        check_plain_attention(attn, hidden_states)
        if encoder_hidden_states is None:
            raise ValueError("cross-attention needs encoder_hidden_states (the text embeddings)")
        batch, num_tokens, _ = hidden_states.shape
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, encoder_hidden_states.shape[1], batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])

        plain_query = attn.to_q(hidden_states)
        masked = self.mask_branch is not None and video is not None and video.masks is not None
        query = plain_query
        if masked:
            query = self.add_to_first_rows(plain_query, self.mask_term(attn, video, num_tokens, plain_query.dtype))
        out = self._attend_text(attn, query, encoder_hidden_states, attention_mask)
        if video is not None and video.objects is not None:
            out = self._route(attn, video, plain_query, out, attention_mask, masked)
        return project_out(attn, out, hidden_states)

    def _attend_text(self, attn, query, text, attention_mask) -> torch.Tensor:
        """``softmax(query K^T / sqrt(d)) V`` for the text ``text``: ``(b, N, inner)``."""
        key, value = attn.to_k(text), attn.to_v(text)
        query, key, value = (split_heads(x, attn.heads) for x in (query, key, value))
        query, key = norm_qk(attn, query, key)
        out = attend(query, key, value, attention_mask, self.slice_size)
        return merge_heads(out).to(query.dtype)

    def _route(self, attn, video: VideoContext, plain_query, scene_out, attention_mask, masked: bool):
        """Blend the scene's attention output with each object's, by the objects' shares of each token."""
        num_tokens = plain_query.shape[1]
        weights = video.object_weights_at(num_tokens).to(scene_out.dtype)  # (b, K, N)
        if weights.shape[0] != scene_out.shape[0]:
            raise ValueError(f"object prompts have {weights.shape[0]} rows for an attention batch of {len(scene_out)}")
        object_masks = None
        if masked:  # each object's mask term, on the rows that carry masks
            size = video.layer_size(num_tokens)
            rows = video.masks.shape[0]
            object_masks = F.interpolate(video.objects.masks[:rows], size=size, mode="area").to(plain_query.dtype)
        text = video.objects.text.to(scene_out.dtype)
        out = scene_out * (1 - weights.sum(1))[..., None]
        for k in range(weights.shape[1]):
            query = plain_query
            if object_masks is not None:
                query = self.add_to_first_rows(plain_query, self.lift(attn, object_masks[:, k : k + 1]))
            text_k = attn.norm_encoder_hidden_states(text[:, k]) if attn.norm_cross else text[:, k]
            out = out + weights[:, k, :, None] * self._attend_text(attn, query, text_k, attention_mask)
        return out
