"""A diffusers pipeline of the Stable Diffusion family assembled from parts in hand (a base built or loaded
here). No safety checker: the toy world's base has none, and an SD1.4 download's is never used."""

from __future__ import annotations


def pipeline_from_parts(pipeline_class: type, vae, text_encoder, tokenizer, unet, scheduler):
    """``pipeline_class`` (e.g. ``StableDiffusionPipeline``, ``TextToVideoZeroPipeline``) over these parts."""
    no_checker = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    return pipeline_class(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler, **no_checker
    )
