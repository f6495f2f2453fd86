import numpy as np
import pytest
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


def test_pose_words_name_only_the_poses_that_show():
    from tasks.base.data import pose_word
    from tasks.common.toy import ToyObject

    def word(shape, degrees=0.0, aspect=1.0):
        return pose_word(ToyObject("red", shape, 8.0, "run", (), np.deg2rad(degrees), aspect))

    assert word("square") is None and word("square", 5) is None and word("square", 90) is None  # symmetry
    assert word("square", 45) == word("star", 36 + 12) == word("triangle", -20) == "tilted"
    assert word("star", 72) is None and word("circle", 45) is None and word("diamond", 180) is None
    assert word("square", aspect=1.3) == "tall" and word("square", 45, 0.7) == "wide"  # stretch comes first
    assert word("square", aspect=1.1) is None


def test_pose_words_caption_posed_frames_only_and_leave_the_pictures_alone():
    from tasks.base.config import BaseConfig
    from tasks.base.data import Poses, render_pool, split_combos
    from tasks.base.pools import toy_tokenizer
    from tasks.common.params import load_stage_config

    train_combos, _ = split_combos(12, seed=0)
    args = (20, 2, train_combos, 0, 64, ("run", "spin"), Poses(0.4, 0.4))
    plain, named = render_pool(*args), render_pool(*args, pose_words=True)
    np.testing.assert_array_equal(plain.frames, named.frames)
    changed = [(p, n) for p, n in zip(plain.prompts, named.prompts) if p != n]
    assert 0 < len(changed) < len(plain)  # some scenes stay upright
    for p, n in changed:  # one word before the colour: "a tilted red square runs across ..."
        words = n.split()
        assert words[1] in ("tilted", "tall", "wide") and " ".join(words[:1] + words[2:]) == p
    multi = render_pool(12, 1, train_combos, 0, 64, ("run",), Poses(1.0, 0.0), multi_object=True, pose_words=True)
    # each object of a scene named with its own pose (circles and near-symmetric turns without)
    assert max(p.split().count("tilted") for p in multi.prompts) == 3
    cfg = load_stage_config(
        BaseConfig,
        "base",
        overrides={
            "data": {
                "pose_words": True,
                "multi_object_share": 0.2,
                "motions": ["run", "spin"],
                "motion_weights": None,
            },
            "text": {"max_length": 20},
        },
    )
    tokenizer = toy_tokenizer(cfg)
    for prompt in named.prompts + multi.prompts:  # every word known, none cut
        ids = tokenizer(prompt).input_ids
        assert tokenizer.unk_token_id not in ids and len(ids) == len(prompt.split()) + 2


def test_a_tokenizer_too_short_for_the_longest_caption_is_a_config_error():
    from tasks.base.config import BaseConfig
    from tasks.common.params import ConfigError, load_stage_config

    data, short = {"pose_words": True, "multi_object_share": 0.2}, {"max_length": 16}
    with pytest.raises(ConfigError, match=r"text.max_length 16 .*19 tokens"):
        load_stage_config(BaseConfig, "base", overrides={"data": data, "text": short})
    load_stage_config(BaseConfig, "base", overrides={"data": data, "text": {"max_length": 19}})
    # 16 fits 3 objects without pose words
    load_stage_config(
        BaseConfig, "base", overrides={"data": {"multi_object_share": 0.2, "pose_words": False}, "text": short}
    )


def test_motion_weights_set_each_motions_share_of_scenes():
    from tasks.base.config import BaseConfig
    from tasks.base.data import render_pool, split_combos
    from tasks.common.params import ConfigError, load_stage_config

    train_combos, _ = split_combos(12, seed=0)
    motions = ("run", "spin", "squash")
    uniform = render_pool(60, 1, train_combos, 0, 64, motions)
    weighted = render_pool(60, 1, train_combos, 0, 64, motions, motion_weights=(3.0, 1.0, 0.0))
    assert not any("bounces" in p for p in weighted.prompts)  # weight 0: never
    runs = sum("runs" in p for p in weighted.prompts)
    assert 35 <= runs <= 55 and sum("runs" in p for p in uniform.prompts) < 30  # 3 in 4 against 1 in 3
    with pytest.raises(ConfigError, match="motion_weights"):
        load_stage_config(BaseConfig, "base", overrides={"data": {"motion_weights": [1.0, 1.0]}})  # 3 motions
