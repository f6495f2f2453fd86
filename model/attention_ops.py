"""The arithmetic every attention processor here shares (``model.attention``, ``model.peers``): heads split
and merged, diffusers' ``Attention`` pre- and post-processing, and SDPA with optional slicing."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(b, n, heads*d)`` -> ``(b, heads, n, d)``."""
    b, n, inner = x.shape
    return x.view(b, n, heads, inner // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(b, heads, n, d)`` -> ``(b, n, heads*d)``."""
    b, heads, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, heads * d)


def check_plain_attention(attn, hidden_states: torch.Tensor) -> None:
    """These processors cover the attention found in SD-style transformer blocks; refuse the rest
    loudly rather than silently computing something else."""
    if hidden_states.ndim != 3:
        raise ValueError(f"expected (batch, tokens, channels) hidden states, got {tuple(hidden_states.shape)}")
    if attn.spatial_norm is not None or attn.group_norm is not None:
        raise NotImplementedError("spatial_norm / group_norm attention is not supported by the video processors")


def project_out(attn, hidden_states: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))  # linear, dropout
    if attn.residual_connection:
        hidden_states = hidden_states + residual
    return hidden_states / attn.rescale_output_factor


def norm_qk(attn, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    return query, key


def attend(query, key, value, attn_mask=None, slice_size: int | str | None = None) -> torch.Tensor:
    """SDPA over ``(b, heads, n, d)``; with ``slice_size``, that many of the ``b x heads`` rows at a time
    (attention slicing: the score matrix of one slice lives at once; ``"auto"`` = half the heads)."""
    if slice_size is None:
        return F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask, dropout_p=0.0)
    b, heads = query.shape[:2]
    rows = max(1, heads // 2) if slice_size == "auto" else int(slice_size)
    q, k, v = (x.reshape(b * heads, *x.shape[2:]) for x in (query, key, value))
    m = None
    if attn_mask is not None:
        m = attn_mask.expand(b, heads, *attn_mask.shape[2:]).reshape(b * heads, -1, k.shape[1])
    out = torch.cat(
        [
            F.scaled_dot_product_attention(
                q[i : i + rows], k[i : i + rows], v[i : i + rows], attn_mask=None if m is None else m[i : i + rows]
            )
            for i in range(0, b * heads, rows)
        ]
    )
    return out.view(b, heads, *out.shape[1:])
