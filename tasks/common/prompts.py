"""Prompts the text encoder will cut: named, as a warning, by the stage that cuts them.

CLIP reads 77 tokens (start and end included) and ignores the rest, silently. Ingest names such
prompts from the tokenizer folder, generate as it encodes them; train encodes every clip's prompt
once, and says the same here (the video id, the token count, the limit).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def warn_cut_prompts(tokenizer, ids: list[str], prompts: list[str], where: str = "train") -> list[str]:
    """A warning for each prompt longer than ``tokenizer.model_max_length`` tokens; returns their ids."""
    limit, cut = tokenizer.model_max_length, []
    for video_id, prompt in zip(ids, prompts):
        n_tokens = len(tokenizer(str(prompt), truncation=False).input_ids)
        if n_tokens > limit:
            cut.append(video_id)
            log.warning(
                "%s: %s: prompt has %d tokens, the text encoder reads %d; the rest is ignored",
                where,
                video_id,
                n_tokens,
                limit,
            )
    return cut
