"""SD1.4's tokenizer folder, rebuilt from the CLIP BPE vocabulary that open_clip ships (the same ids)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from maskmotion.tools.lookalike_configs import SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG, write_json


def byte_symbols() -> list[str]:
    """CLIP's (and GPT-2's) printable symbol for each byte, in CLIP's vocabulary order: the printable bytes stand
    for themselves and come first; the other bytes follow in byte order, as code points from 256 on."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def clip_bpe() -> tuple[dict[str, int], list[str]]:
    """CLIP's vocabulary (49408 ids) and merges, in the order CLIP numbers them: the 256 byte symbols, the same
    with ``</w>``, one token per merge (the file's lines 1..48894, after its header), then the two specials."""
    import open_clip

    path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}, merges


def write_tokenizer(folder: Path) -> None:
    """SD1.4's tokenizer/: vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json."""
    vocab, merges = clip_bpe()
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    write_json(folder / "tokenizer_config.json", TOKENIZER_CONFIG)
    write_json(folder / "special_tokens_map.json", SPECIAL_TOKENS_MAP)
