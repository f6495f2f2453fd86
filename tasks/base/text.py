"""The toy world's text side: a word-level tokenizer over the toy vocabulary and a tiny CLIPTextModel.

The tokenizer is a ``tokenizers`` WordLevel model wrapped as ``PreTrainedTokenizerFast``, saved so
``AutoTokenizer.from_pretrained(folder)`` reloads it (transformers 5 gives a TokenizersBackend).
Every prompt becomes ``[BOS] words... [EOS] [PAD]...`` padded to ``max_length`` tokens, as SD's
CLIP tokenizer pads to 77.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
SPECIALS = (PAD, UNK, BOS, EOS)  # ids 0, 1, 2, 3


def build_tokenizer(words: list[str], max_length: int) -> PreTrainedTokenizerFast:
    """Word-level tokenizer: lower-cased, split on whitespace and punctuation; unknown words -> [UNK]."""
    vocab = {tok: i for i, tok in enumerate([*SPECIALS, *words])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        model_max_length=max_length,
        padding_side="right",
    )
    return tok


def tokenize(tokenizer, prompts: list[str]) -> torch.Tensor:
    """Token ids, long (B, max_length), as SD pipelines call the tokenizer."""
    return tokenizer(
        list(prompts),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def build_text_encoder(
    vocab_size: int, max_length: int, width: int, layers: int, heads: int, seed: int
) -> CLIPTextModel:
    """A tiny CLIP text transformer (causal, as CLIP's); ``last_hidden_state`` (B, max_length, width)
    is what the UNet cross-attends to."""
    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=width,
        intermediate_size=4 * width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=max_length,
        projection_dim=width,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    return CLIPTextModel(config)
