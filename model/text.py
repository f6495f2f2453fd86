"""Prompts -> CLIP text embeddings: the one prompt encoder (the pipeline, the peers' harness, the generate
stage's token count)."""

from __future__ import annotations

import torch


def token_limit(tokenizer, text_encoder) -> int:
    """How many tokens the text encoder reads: the tokenizer's limit or the encoder's positions, the fewer."""
    return min(tokenizer.model_max_length, text_encoder.config.max_position_embeddings)


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts: list[str], negative_prompts: list[str] | None = None):
    """Text embeddings ``(B, L, D)``, or ``(2B, L, D)`` = [negative; positive] for classifier-free guidance;
    prompts past ``token_limit`` are truncated (as CLIP does), shorter ones padded to it."""
    texts = list(prompts) if negative_prompts is None else list(negative_prompts) + list(prompts)
    limit = token_limit(tokenizer, text_encoder)
    ids = tokenizer(texts, padding="max_length", max_length=limit, truncation=True, return_tensors="pt").input_ids
    return text_encoder(ids.to(text_encoder.device))[0]
