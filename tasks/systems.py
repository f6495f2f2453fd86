"""Every system the comparisons run, in one registry: Table II's variants (``tasks.ablations``, ``make
ablations``) and Table I's systems (``tasks.compare``, ``make compare``), and the one name each has on disk.

A variant is overrides of the ``train`` / ``generate`` sections over ``params.yaml``; a Table I system is
a variant (the trained ones) or a training-free peer (``model.peers``).
"""

from __future__ import annotations

NO_MASK = {"mask_cross_attention": False}

# name -> (weights name, train overrides, generate overrides). Paper Table II first, then baselines.
# "full" is the main job (params.yaml as it is). Its noise sharing is off: on the toy world's
# offset-noise base, sharing held the object of frames 2..n back near where it stood in the chunk's
# first frame (README), so the paper's sharing is the row that adds it, not the row that removes it.
VARIANTS: dict[str, tuple[str, dict, dict]] = {
    "full": ("full", {}, {}),
    "with sharing": ("full", {}, {"shared_noise": "paper", "lowfreq_grid": 1}),
    "w/o ControlNet": ("full", {}, {"first_frame_source": "text"}),
    "w/o mask": ("no-mask", NO_MASK, {"use_masks": False}),
    "LAMP-like": ("lamp", {**NO_MASK, "self_attention": "first_frame", "trainable": "lamp"}, {"use_masks": False}),
    "Tune-A-Video-like": ("tav", {**NO_MASK, "self_attention": "sparse_causal"}, {"use_masks": False}),
    # not an ablation: the full model from each sequence's true first frame, i.e. the few-shot
    # stage alone, without the base model's frame 1
    "given frame 1": ("full", {}, {"first_frame_source": "manifest"}),
}

# system -> how it runs: an ablation variant's name, or a peer
TRAINED = {"ours": "full", "LAMP-like": "LAMP-like", "Tune-A-Video-like": "Tune-A-Video-like"}
PEERS = ("Text2Video-Zero", "Text2Video-Zero + ControlNet", "ControlVideo")
SYSTEMS = (*TRAINED, *PEERS)


def slug(name: str) -> str:
    """A system's or variant's folder name: "w/o mask" -> "wo-mask", "Text2Video-Zero + ControlNet" ->
    "text2video-zero-controlnet"."""
    return name.lower().replace(" + ", "-").replace("/", "").replace(" ", "-")
