import torch
from transformers import AutoTokenizer, CLIPTextModel

from tasks.base.data import vocabulary
from tasks.base.text import tokenize

PROMPT = "a red star runs across a sandy plain"


def test_tokenizer_round_trip_pads_to_fixed_length(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    ids = tokenize(reloaded, [PROMPT, "", "A Blue dog"])
    assert torch.equal(ids, tokenize(tokenizer, [PROMPT, "", "A Blue dog"]))
    assert ids.shape == (3, 16)
    vocab = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", *vocabulary()]
    expected = [2] + [vocab.index(w) for w in PROMPT.split()] + [3]
    assert ids[0].tolist() == expected + [0] * (16 - len(expected))
    assert ids[1].tolist()[:3] == [2, 3, 0]  # empty prompt (classifier-free guidance)
    assert ids[2].tolist()[:5] == [2, vocab.index("a"), vocab.index("blue"), 1, 3]  # lower-cased; dog -> [UNK]
    assert reloaded.model_max_length == 16 and reloaded.pad_token_id == 0


def test_tokenizer_truncates_long_prompts(tokenizer):
    ids = tokenize(tokenizer, [" ".join(["red"] * 40)])
    assert ids.shape == (1, 16)


def test_text_encoder_round_trip_fp16(components, tmp_path):
    enc = components["text_encoder"]
    enc.to(torch.float16).save_pretrained(tmp_path)
    reloaded = CLIPTextModel.from_pretrained(tmp_path, dtype=torch.float32).eval()
    ids = tokenize(components["tokenizer"], [PROMPT])
    expected = enc.float()(ids).last_hidden_state  # the fp16-rounded weights, computed in fp32
    assert torch.equal(reloaded(ids).last_hidden_state, expected)
    assert expected.shape == (1, 16, 32)
