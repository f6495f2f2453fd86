"""MaskVideo: text + mask sequence (+ first frame) -> video, as in Alg. 1 of the paper.

``__call__`` in steps:

1. ``check_inputs``: masks, prompts, first frame, per-object prompts and size checked; the sampler
   keywords merged over ``pipe.sampler`` (``model.sampler_settings``).
2. The prompts encoded (the scene's, then each object's: ``model.regions``).
3. Frame 1 (eq. 3): given by the user, or made by a ControlNet over the base 2-D UNet conditioned
   on the first mask, or (the "w/o ControlNet" ablation) by the plain text-to-image UNet
   (``model.first_frame``); then ``E(v_1)``, which stays clean in the video latents at every step.
4. Frames 2..n, one motion window at a time (``model.windows``): noise with a shared component
   (eq. 8), denoised by the video UNet with DDIM and classifier-free guidance, the masks steering
   mask cross-attention; chunk k+1's first frame is chunk k's last frame, decoded and encoded again.
5. The output: uint8 frames or latents, in a ``MaskVideoOutput``.

A trained model loads with ``maskmotion.MaskMotionPipeline.from_pretrained``. Memory switches as in
diffusers (``enable_vae_slicing``, ..., ``enable_model_cpu_offload``): ``model.switches``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from model.arrays import to_images, to_masks, to_uint8
from model.conditioning import ControlNetCondition, controlnet_image
from model.first_frame import make_first_frame
from model.regions import ObjectInputs, check_objects, compose_regions, encode_objects, first_objects, objects_alone
from model.sampler_settings import SamplerSettings
from model.sampling import randn
from model.switches import MemorySwitches
from model.text import encode_prompts
from model.windows import VideoText, sample_windows


@dataclass
class MaskVideoOutput:
    """What a call returns (``return_dict=True``).

    Args:
        frames: np.uint8 ``(F, H, W, 3)`` for one prompt string and 3-D masks, else ``(B, F, H, W, 3)``;
            with ``output_type="latent"`` the video latents ``(B, C, F, h, w)``.
    """

    frames: np.ndarray | torch.Tensor


class MaskVideoPipeline(MemorySwitches):
    """Mask-guided, first-frame-conditioned video generation.

    Args:
        vae: diffusers ``AutoencoderKL``; the latent downsample factor is read from its config.
        text_encoder: transformers ``CLIPTextModel``.
        tokenizer: its tokenizer.
        video_unet: a ``model.video_unet.VideoUNet``.
        scheduler: a diffusers scheduler (``DDIMScheduler`` in the paper); shared by both stages.
        base_unet: the pretrained 2-D ``UNet2DConditionModel`` that makes frame 1 (with or without
            ``controlnet``). Not needed when every call passes ``first_frame``.
        controlnet: a diffusers ``ControlNetModel`` over ``base_unet``, conditioned on a mask.
        controlnet_condition: how the first mask is drawn for that ControlNet
            (``model.conditioning``): white on black by default, the toy mask ControlNet's input.
        sampler: what a call does with the sampler keywords it leaves out
            (``model.sampler_settings``); the tuned defaults when None. ``pipe.sampler`` may be replaced.
    """

    def __init__(
        self,
        vae,
        text_encoder,
        tokenizer,
        video_unet,
        scheduler,
        base_unet=None,
        controlnet=None,
        controlnet_condition: ControlNetCondition | None = None,
        sampler: SamplerSettings | None = None,
    ):
        self.vae = vae
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.video_unet = video_unet
        self.scheduler = scheduler
        self.base_unet = base_unet
        self.controlnet = controlnet
        self.controlnet_condition = controlnet_condition or ControlNetCondition()
        self.sampler = sampler or SamplerSettings()
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)

    # ---- encoders ---------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompt(self, prompts: list[str], negative_prompts: list[str] | None) -> torch.Tensor:
        """Text embeddings ``(B, L, D)``, or ``(2B, L, D)`` = [negative; positive] for guidance."""
        return encode_prompts(self.tokenizer, self.text_encoder, prompts, negative_prompts).to(self.dtype)

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """``E(v)``: float ``(N, 3, H, W)`` in [-1, 1] -> scaled latents ``(N, C, H/s, W/s)`` (posterior mode)."""
        posterior = self.vae.encode(images.to(self.vae.device, self.vae.dtype)).latent_dist
        return (posterior.mode() * self.vae.config.scaling_factor).to(self.dtype)

    @torch.no_grad()
    def decode_images(self, latents: torch.Tensor) -> torch.Tensor:
        """``D(z)``: scaled latents ``(N, C, h, w)`` -> float images ``(N, 3, H, W)`` in [-1, 1]."""
        latents = latents.to(self.vae.device, self.vae.dtype) / self.vae.config.scaling_factor
        return self.vae.decode(latents).sample.clamp(-1, 1)

    @torch.no_grad()
    def decode_objects(self, latents: torch.Tensor, object_masks: torch.Tensor | None) -> torch.Tensor:
        """``D(z)`` object by object: ``(N, C, h, w)`` latents and each object's masks ``(N, K, H, W)``
        -> images ``(N, 3, H, W)`` in [-1, 1].

        Object k's pixels come from decoding the latents with the cells of the other objects set to
        the mean of the ground's cells (``model.regions.objects_alone``), the rest from decoding them
        as they are (``compose_regions``). The toy VAE, trained on one object per frame, decodes an
        object's colour from the whole latent: a pink star beside a red square came out red, and pink
        with the square's cells taken out (docs/results.md#per-object-prompts). One object, or
        ``object_masks`` None: ``decode_images``.
        """
        images = self.decode_images(latents)
        if object_masks is None or object_masks.shape[1] < 2:
            return images
        per_object = self.decode_images(objects_alone(latents, object_masks)).view(-1, *images.shape)
        return compose_regions(torch.cat([images[None], per_object]), object_masks.to(images.device, images.dtype))

    def decode_latents(self, latents: torch.Tensor, object_masks: torch.Tensor | None = None) -> np.ndarray:
        """Scaled latents ``(N, C, h, w)`` -> uint8 frames ``(N, H, W, 3)``; with each object's masks
        ``(N, K, H, W)``, decoded object by object (``decode_objects``)."""
        return to_uint8(self.decode_objects(latents, object_masks))

    def first_alpha_bar(self, num_inference_steps: int) -> torch.Tensor:
        """``alpha_bar`` at the first timestep the sampler visits (signal left in ``x_T``)."""
        self.scheduler.set_timesteps(num_inference_steps)
        return self.scheduler.alphas_cumprod[int(self.scheduler.timesteps[0])]

    def controlnet_image(self, first_masks: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
        """The ControlNet's input ``(B, C, H, W)``: the first masks drawn by ``controlnet_condition``."""
        image = controlnet_image(self.controlnet, self.controlnet_condition, first_masks, latent_size)
        return image.to(self.device, self.dtype)

    def make_first_frame(
        self, inputs: CallInputs, text_emb: torch.Tensor, object_text: torch.Tensor | None, generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 3 of ``__call__``: frame 1 ``(B, 3, H, W)`` in [-1, 1] and its initial noise, from the
        checked inputs and frame 1's text (``model.first_frame.make_first_frame``)."""
        s = inputs.settings
        object_masks = None if inputs.objects is None else inputs.objects.masks
        return make_first_frame(
            self,
            text_emb,
            inputs.masks[:, 0].to(self.device),
            tuple(side // self.vae_scale_factor for side in inputs.image_size),
            num_inference_steps=s.num_inference_steps,
            guidance_scale=s.guidance_scale,
            generator=generator,
            source=s.first_frame_source,
            controlnet_conditioning_scale=s.controlnet_conditioning_scale,
            objects=first_objects(object_text, object_masks, s.guidance_scale > 1.0, self.device, self.dtype),
        )

    @torch.no_grad()
    def first_frame(self, prompt, masks, *, negative_prompt=None, generator=None, **sampler) -> np.ndarray:
        """Frame 1 alone, uint8 ``(B, H, W, 3)``: made as ``__call__`` makes it, from the first masks.

        Needs no video UNet (a pipeline built with ``video_unet=None`` makes frames 1 only): the train
        stage makes its validation video's frame 1 this way before training, and frees the 2-D UNet.
        """
        inputs = self.check_inputs(prompt, masks, negative_prompt=negative_prompt, sampler=sampler)
        text_emb = self.encode_prompt(inputs.prompts, inputs.negatives)
        text_emb = rows_for(text_emb, inputs.settings.guidance_scale, inputs.negatives is not None)
        return to_uint8(self.make_first_frame(inputs, text_emb, None, generator)[0])

    # ---- the whole video --------------------------------------------------------------------------
    def check_inputs(
        self,
        prompt,
        masks,
        *,
        first_frame=None,
        negative_prompt=None,
        object_prompts=None,
        object_masks=None,
        height: int | None = None,
        width: int | None = None,
        output_type: str = "uint8",
        sampler: dict | None = None,
    ) -> CallInputs:
        """Every input of ``__call__`` checked and converted (a clear error for each mistake), the
        sampler keywords merged over ``self.sampler``."""
        if output_type not in ("uint8", "latent"):
            raise ValueError(f"output_type must be 'uint8' or 'latent', got {output_type!r}")
        try:
            settings = replace(self.sampler, **(sampler or {}))
        except TypeError as err:
            raise TypeError(f"{err} (the sampler's keywords are SamplerSettings' fields)") from None
        single = isinstance(prompt, str) and np.ndim(masks) == 3
        masks = to_masks(masks)
        prompts = [prompt] * masks.shape[0] if isinstance(prompt, str) else list(prompt)
        batch = masks.shape[0]
        if len(prompts) != batch:
            raise ValueError(f"{len(prompts)} prompts for {batch} mask sequences")
        if settings.video_guidance_scale is None:
            settings = replace(settings, video_guidance_scale=settings.guidance_scale)
        negatives = None
        if settings.guidance_scale > 1.0 or settings.video_guidance_scale > 1.0:
            negative_prompt = "" if negative_prompt is None else negative_prompt
            negatives = [negative_prompt] * batch if isinstance(negative_prompt, str) else negative_prompt
        objects = check_objects(object_prompts, object_masks, masks)
        images = None
        if first_frame is not None:
            images = to_images(first_frame)
            if images.shape[0] != batch:
                raise ValueError(f"{images.shape[0]} first frames for {batch} videos")
            height, width = images.shape[-2:]
        else:
            height, width = height or masks.shape[-2], width or masks.shape[-1]
        if height % self.vae_scale_factor or width % self.vae_scale_factor:
            raise ValueError(f"size {height}x{width} is not divisible by the VAE factor {self.vae_scale_factor}")
        return CallInputs(prompts, negatives, masks, images, objects, (height, width), settings, single)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        masks,
        first_frame=None,
        *,
        negative_prompt: str | list[str] | None = None,
        object_prompts: list[str] | list[list[str]] | None = None,
        object_masks=None,
        height: int | None = None,
        width: int | None = None,
        generator: torch.Generator | None = None,
        callback: Callable[[dict], None] | None = None,
        output_type: str = "uint8",
        return_dict: bool = True,
        **sampler,
    ):
        """Generate a video that follows ``masks``.

        Args:
            prompt: one prompt, or one per video.
            masks: ``(F, H, W)`` or ``(B, F, H, W)``: bool, float {0, 1} or uint8 {0, 255}, at pixel
                (or latent) resolution. F frames are generated.
            first_frame: optional uint8 ``(H, W, 3)`` / ``(B, H, W, 3)``; made by ``first_frame_source``
                when None.
            negative_prompt: the unconditional text of classifier-free guidance ("" when None).
            object_prompts: per-object prompts, K for one video or K per video (every video the same
                K): object k's words act inside its own mask, ``prompt`` (the scene) elsewhere
                (``model.regions``). None: one prompt.
            object_masks: each object's own masks, ``(K, F, H, W)`` or ``(B, K, F, H, W)`` in the
                forms ``masks`` takes; with ``object_prompts``. ``masks`` stays the union the mask
                term and the ControlNet see.
            height, width: output size when no first frame is given; defaults to the masks' size.
            generator: seeds every random draw (frame 1 noise, then each chunk's noise, in order).
            callback: called after every step of frames 2..n with a dict: ``chunk``, ``num_chunks``,
                ``step``, ``num_steps``, ``timestep``, ``latents`` (the window's ``(B, C, F, h, w)``).
            output_type: ``uint8`` -> np.uint8 ``(F, H, W, 3)`` for one prompt string and 3-D masks,
                else ``(B, F, H, W, 3)``; ``latent`` -> the video latents ``(B, C, F, h, w)``.
                Every output frame is decoded from the latents, frame 1 included (``D(E(v_1))``,
                not the given first frame itself), so all frames went through the same VAE.
            return_dict: True -> ``MaskVideoOutput``; False -> the frames (or latents) themselves.
            **sampler: this call's sampler settings over ``self.sampler`` (``SamplerSettings``' fields):
                ``num_inference_steps``; ``guidance_scale`` (frame 1, and frames 2..n unless
                ``video_guidance_scale`` is given; 1 = none); ``video_guidance_scale`` (frames 2..n;
                None = ``guidance_scale``); ``shared_noise`` (``paper``: mix in E(v_1), ``lamp``: frame
                1's noise, ``off``) with weight ``alpha`` (eq. 8); ``lowfreq_grid`` (> 0: frames 2..n of
                every chunk take the ``g x g`` block means of the video's frame 1 noised to the first
                timestep, ``model.sampling.lowfreq_from_first``); ``adain``, ``adain_start``,
                ``adain_per_object`` (LAMP's statistics matching late in sampling, object by object with
                object prompts); ``decode_per_object``; ``window`` (frames per chunk, the trained clip
                length; None = all frames); ``first_frame_source`` (``controlnet`` or ``text``, the "w/o
                ControlNet" ablation) and ``controlnet_conditioning_scale``; ``use_masks`` (False: the
                "w/o mask" ablation at inference); ``mask_guidance_scale`` (frames 2..n: + w x (with
                the masks - without them); 0 = off); ``video_guidance_interval`` and
                ``mask_guidance_interval`` (the steps of frames 2..n, as shares ``(start, end)`` from the
                noisiest, that take each guidance; a step's passes run as one UNet call).
        """
        # 1. check the inputs; this call's sampler settings
        inputs = self.check_inputs(
            prompt,
            masks,
            first_frame=first_frame,
            negative_prompt=negative_prompt,
            object_prompts=object_prompts,
            object_masks=object_masks,
            height=height,
            width=width,
            output_type=output_type,
            sampler=sampler,
        )
        s, guided = inputs.settings, inputs.negatives is not None

        # 2. the prompts: [negative; positive] rows where a part is guided, the positive rows elsewhere
        text_emb = self.encode_prompt(inputs.prompts, inputs.negatives)
        object_text = None if inputs.objects is None else encode_objects(self.encode_prompt, inputs.objects, guided)
        self.done_with(self.text_encoder)

        # 3. frame 1 and E(v_1)
        object_masks = None if inputs.objects is None else inputs.objects.masks
        images, first_noise = inputs.first_images, None
        if images is None:
            frame_text = rows_for(text_emb, s.guidance_scale, guided)
            frame_objects = rows_for(object_text, s.guidance_scale, guided)
            images, first_noise = self.make_first_frame(inputs, frame_text, frame_objects, generator)
        self.done_with(self.controlnet)
        first_latent = self.encode_images(images.to(self.device))
        if s.shared_noise == "lamp" and first_noise is None:
            first_noise = randn(first_latent.shape, generator, self.device, self.dtype)

        # 4. frames 2..n, one motion window at a time
        video = sample_windows(
            self,
            first_latent,
            first_noise,
            inputs.masks,
            video_text=VideoText(
                rows_for(text_emb, s.video_guidance_scale, guided),
                rows_for(object_text, s.video_guidance_scale, guided),
                object_masks,
            ),
            guidance_scale=s.video_guidance_scale,
            settings=s,
            image_size=inputs.image_size,
            generator=generator,
            callback=callback,
            output_type=output_type,
        )

        # 5. the output
        if output_type == "uint8" and inputs.single:
            video = video[0]
        return MaskVideoOutput(video) if return_dict else video


def rows_for(text: torch.Tensor | None, scale: float, guided: bool) -> torch.Tensor | None:
    """The text rows of one part of the sampler (frame 1, or frames 2..n): [negative; positive] when that
    part is guided (``scale`` > 1), else the positive rows alone of a call ``guided`` elsewhere."""
    return text if text is None or scale > 1.0 or not guided else text.chunk(2)[1]


@dataclass
class CallInputs:
    """``check_inputs``' result: prompts (B), negative prompts (B, or None without guidance), masks float
    ``(B, F, H, W)``, the given first frames ``(B, 3, H, W)`` in [-1, 1] or None, the per-object prompts,
    the output size ``(H, W)``, the call's sampler settings (``video_guidance_scale`` resolved), and
    whether one video without a batch axis was asked for."""

    prompts: list[str]
    negatives: list[str] | None
    masks: torch.Tensor
    first_images: torch.Tensor | None
    objects: ObjectInputs | None
    image_size: tuple[int, int]
    settings: SamplerSettings
    single: bool
