"""MaskVideo: text + mask sequence (+ first frame) -> video, as in Alg. 1 of the paper.

1. Frame 1 (eq. 3): given by the user, or made by a ControlNet over the base 2-D UNet conditioned
   on the first mask, or (the "w/o ControlNet" ablation) by the plain text-to-image UNet.
2. ``E(v_1)``: frame 1 encoded by the VAE; it stays clean in the video latents at every step.
3. Frames 2..n start from noise with a shared component (eq. 8) and are denoised by the video UNet
   with DDIM and classifier-free guidance; the masks steer mask cross-attention.
4. Mask sequences longer than the motion window are generated chunk by chunk: chunk k+1's first
   frame is chunk k's last frame, decoded and encoded again (``E(D(z))``) as frame 1 was. Only one
   chunk's latents live at a time, so memory is flat.

Usage::

    pipe = MaskVideoPipeline(vae, text_encoder, tokenizer, video_unet, DDIMScheduler(...),
                             base_unet=unet2d, controlnet=controlnet)
    frames = pipe("a horse runs on the grass", masks, generator=torch.Generator().manual_seed(0)).frames
    # frames: np.uint8 (F, H, W, 3)

Memory switches as in diffusers: ``enable_vae_slicing``, ``enable_vae_tiling``,
``enable_attention_slicing`` and ``enable_model_cpu_offload``; none changes the result beyond float
rounding (tests/model/test_pipeline.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from model.attention import ObjectPrompts, object_shares, set_attention_slice
from model.conditioning import ControlNetCondition, controlnet_image
from model.sampling import adain as adain_match
from model.sampling import lowfreq_from_first, motion_windows, randn, regional_adain
from model.sampling import shared_noise as mix_shared_noise

FIRST_FRAME_SOURCES = ("controlnet", "text")


def _to_masks(masks) -> torch.Tensor:
    """``(F, H, W)`` / ``(B, F, H, W)`` bool, {0, 1} float or {0, 255} uint8 -> float ``(B, F, H, W)`` in [0, 1]."""
    masks = torch.as_tensor(np.asarray(masks) if not torch.is_tensor(masks) else masks)
    if masks.ndim == 3:
        masks = masks[None]
    if masks.ndim != 4:
        raise ValueError(f"masks must be (F, H, W) or (B, F, H, W), got {tuple(masks.shape)}")
    if masks.dtype == torch.uint8 and masks.max() > 1:
        masks = masks > 127
    masks = masks.float()
    if masks.min() < 0 or masks.max() > 1:
        raise ValueError("masks must lie in [0, 1] (or be uint8 0/255, or bool)")
    return masks


def _to_images(frames) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` / ``(B, H, W, 3)`` -> float ``(B, 3, H, W)`` in [-1, 1]."""
    frames = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"first_frame must be uint8 (H, W, 3) or (B, H, W, 3), got {frames.dtype} {tuple(frames.shape)}"
        )
    return frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """float ``(N, 3, H, W)`` in [-1, 1] -> uint8 ``(N, H, W, 3)``."""
    images = ((images.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()


def compose_regions(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Frame 1 with per-object prompts: ``images`` ``(K + 1, B, C, H, W)``, the scene's then each
    object's, drawn from the same noise and masks; ``masks`` ``(B, K, Hm, Wm)`` in [0, 1]. Returns
    ``(1 - sum_k s_k) scene + sum_k s_k image_k`` ``(B, C, H, W)``, ``s_k`` object k's share of each
    pixel (``object_shares`` of the masks area-resized to the images)."""
    shares = object_shares(F.interpolate(masks, size=images.shape[-2:], mode="area"))
    scene, objects = images[0], images[1:].transpose(0, 1)  # (B, C, H, W), (B, K, C, H, W)
    return (1 - shares.sum(1, keepdim=True)) * scene + (shares[:, :, None] * objects).sum(1)


def adain_regions(object_masks: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """The regions of ``regional_adain``: each object's share of every latent position (its masks
    ``(B, K, F, H, W)`` area-resized: the fraction of the position it covers), then the rest of the
    frame. Returns ``(B, K + 1, F, h, w)``, summing to 1 over the regions."""
    b, k, f = object_masks.shape[:3]
    shares = F.interpolate(object_masks.flatten(1, 2), size=tuple(latent_size), mode="area")
    shares = object_shares(shares.view(b, k, f, *latent_size))
    return torch.cat([shares, 1 - shares.sum(1, keepdim=True)], dim=1)


@dataclass
class MaskVideoOutput:
    """What a call returns (``return_dict=True``).

    Args:
        frames: np.uint8 ``(F, H, W, 3)`` for one prompt string and 3-D masks, else ``(B, F, H, W, 3)``;
            with ``output_type="latent"`` the video latents ``(B, C, F, h, w)``.
    """

    frames: np.ndarray | torch.Tensor


class MaskVideoPipeline:
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
    ):
        self.vae = vae
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.video_unet = video_unet
        self.scheduler = scheduler
        self.base_unet = base_unet
        self.controlnet = controlnet
        self.controlnet_condition = controlnet_condition or ControlNetCondition()
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)

    # ---- memory / device switches, as diffusers users expect them ---------------------------------
    def to(self, device=None, dtype: torch.dtype | None = None) -> MaskVideoPipeline:
        """Move every network (e.g. ``pipe.to("cuda", torch.float16)``; bf16 works the same way)."""
        for module in (self.vae, self.text_encoder, self.video_unet, self.base_unet, self.controlnet):
            if module is not None:
                # device only when no dtype is asked: diffusers warns on every dtype-less cast
                module.to(device) if dtype is None else module.to(device=device, dtype=dtype)
        return self

    def modules(self) -> list:
        return [
            m for m in (self.text_encoder, self.controlnet, self.base_unet, self.video_unet, self.vae) if m is not None
        ]

    def enable_vae_slicing(self) -> None:
        """Decode/encode one frame at a time: peak VAE memory no longer grows with frames."""
        self.vae.enable_slicing()

    def enable_vae_tiling(self) -> None:
        """Decode/encode large frames in overlapping tiles (diffusers' ``AutoencoderKL`` tiling)."""
        self.vae.enable_tiling()

    def enable_attention_slicing(self, slice_size: int | str | None = "auto") -> None:
        """Attention in slices of the (batch x heads) axis: lower peak memory, a little slower.

        ``"auto"``: two slices of heads; an int: that many (batch x heads) rows at a time; None: off.
        Applies to the video UNet's own processors and to the 2-D UNet and ControlNet of frame 1.
        """
        set_attention_slice(self.video_unet, slice_size)
        for module in (self.base_unet, self.controlnet):
            if module is not None and slice_size is None:
                module.set_default_attn_processor()
            elif module is not None:
                module.set_attention_slice(slice_size)

    def enable_model_cpu_offload(self, device: str | torch.device = "cuda") -> None:
        """Keep every network on the CPU and move each to ``device`` only while it runs (accelerate's
        hooks, in the order the networks are used): GPU memory holds one network at a time."""
        from accelerate import cpu_offload_with_hook

        hook = None
        for module in self.modules():
            module.to("cpu")
            _, hook = cpu_offload_with_hook(module, torch.device(device), prev_module_hook=hook)
        self._execution_device = torch.device(device)

    @property
    def device(self) -> torch.device:
        """Where the latents live: the offload device when CPU offload is on, else the video UNet's."""
        return getattr(self, "_execution_device", None) or self.video_unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.video_unet.dtype

    # ---- encoders ---------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompt(self, prompts: list[str], negative_prompts: list[str] | None) -> torch.Tensor:
        """Text embeddings ``(B, L, D)``, or ``(2B, L, D)`` = [negative; positive] for guidance."""
        texts = prompts if negative_prompts is None else list(negative_prompts) + list(prompts)
        max_length = min(self.tokenizer.model_max_length, self.text_encoder.config.max_position_embeddings)
        ids = self.tokenizer(
            texts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt"
        ).input_ids
        return self.text_encoder(ids.to(self.text_encoder.device))[0].to(self.dtype)

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

        Object k's pixels come from decoding the latents with the cells of the other objects (cells
        any of whose pixels they cover; object k's own cells excepted) set to the mean of the
        ground's cells, the rest from decoding them as they are (``compose_regions``). The toy VAE,
        trained on one object per frame, decodes an object's colour from the whole latent: a pink
        star beside a red square came out red, and pink with the square's cells taken out
        (docs/results.md#per-object-prompts). One object, or ``object_masks`` None: ``decode_images``.
        """
        images = self.decode_images(latents)
        if object_masks is None or object_masks.shape[1] < 2:
            return images
        k = object_masks.shape[1]
        cells = F.adaptive_max_pool2d(object_masks.to(latents.device, latents.dtype), latents.shape[-2:]) > 0
        ground = ~cells.any(1, keepdim=True)  # (N, 1, h, w)
        ground_mean = (latents * ground).sum((-2, -1), keepdim=True) / ground.sum((-2, -1), keepdim=True).clamp(min=1)
        others = [
            cells[:, [j for j in range(k) if j != i]].any(1, keepdim=True) & ~cells[:, i : i + 1] for i in range(k)
        ]
        alone = [torch.where(other, ground_mean, latents) for other in others]
        per_object = self.decode_images(torch.cat(alone)).view(k, *images.shape)
        return compose_regions(torch.cat([images[None], per_object]), object_masks.to(images.device, images.dtype))

    def decode_latents(self, latents: torch.Tensor, object_masks: torch.Tensor | None = None) -> np.ndarray:
        """Scaled latents ``(N, C, h, w)`` -> uint8 frames ``(N, H, W, 3)``; with each object's masks
        ``(N, K, H, W)``, decoded object by object (``decode_objects``)."""
        return _to_uint8(self.decode_objects(latents, object_masks))

    def first_alpha_bar(self, num_inference_steps: int) -> torch.Tensor:
        """``alpha_bar`` at the first timestep the sampler visits (signal left in ``x_T``)."""
        self.scheduler.set_timesteps(num_inference_steps)
        return self.scheduler.alphas_cumprod[int(self.scheduler.timesteps[0])]

    # ---- frame 1 ----------------------------------------------------------------------------------
    @torch.no_grad()
    def make_first_frame(
        self,
        text_emb: torch.Tensor,
        first_masks: torch.Tensor | None,
        latent_size: tuple[int, int],
        num_inference_steps: int,
        guidance_scale: float,
        generator: torch.Generator | None = None,
        source: str = "controlnet",
        controlnet_conditioning_scale: float = 1.0,
        objects: ObjectPrompts | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame 1 from noise with the base 2-D UNet (eq. 3).

        Args:
            text_emb: from ``encode_prompt``, ``(2B, L, D)`` with guidance else ``(B, L, D)``.
            first_masks: the first mask of each video ``(B, Hm, Wm)`` in [0, 1] (``controlnet`` only).
            latent_size: ``(h, w)`` of the latents.
            source: ``controlnet`` (ControlNet(x_1, c_p, m_1)) or ``text`` (plain text-to-image,
                the "w/o ControlNet" ablation).
            controlnet_conditioning_scale: multiplies the ControlNet's residuals before they enter
                the UNet (diffusers' knob of the same name); > 1 strengthens a weak ControlNet.
            objects: per-object prompts, one row per video: text ``(B, K, L, D)``, first masks
                ``(B, K, Hm, Wm)``. The scene's prompt (on ``first_masks``, every object's) and each
                object's prompt (on its own first mask) are drawn over the whole frame from the same
                noise (one batch, K + 1 frames per video), and frame 1 takes object k's pixels inside
                its mask, the scene's elsewhere (``compose_regions``). Measured against composing noise
                predictions, routing the cross-attention and every branch on all the masks:
                docs/results.md#per-object-prompts.

        Returns:
            ``(image, noise)``: frame 1 as float ``(B, 3, H, W)`` in [-1, 1], and the initial noise
            ``x_1`` ``(B, C, h, w)`` it was denoised from (the shared noise of the ``lamp`` variant).
        """
        if source not in FIRST_FRAME_SOURCES:
            raise ValueError(f"first-frame source must be one of {FIRST_FRAME_SOURCES}, got {source!r}")
        if self.base_unet is None:
            raise ValueError("making frame 1 needs base_unet (or pass first_frame)")
        if source == "controlnet" and self.controlnet is None:
            raise ValueError(
                "no controlnet: pass first_frame, or first_frame_source='text' for the w/o-ControlNet ablation"
            )
        if source == "controlnet" and first_masks is None:
            raise ValueError("the ControlNet first frame is conditioned on the first mask: pass first_masks")
        guided = guidance_scale > 1.0
        batch = text_emb.shape[0] // (2 if guided else 1)
        shape = (batch, self.base_unet.config.in_channels, *latent_size)
        noise = randn(shape, generator, self.device, self.dtype)
        cond = self.controlnet_image(first_masks, latent_size) if source == "controlnet" else None
        if objects is None:
            latents = self._denoise_first(
                noise, text_emb, cond, num_inference_steps, guidance_scale, source, controlnet_conditioning_scale
            )
            return self.decode_images(latents), noise
        # The scene and each object drawn as K + 1 frames from the same noise and first masks (one
        # batch), then composed in pixels. Composing the latents (noise predictions or denoised
        # latents) failed: the toy VAE decodes an object's colour from the whole latent, and a pink
        # star's latents beside a red square's decoded red (docs/results.md#per-object-prompts).
        k = objects.text.shape[1]
        prompts = torch.cat([text_emb[-batch:], objects.text.transpose(0, 1).reshape(-1, *objects.text.shape[2:])])
        text_all = torch.cat([text_emb[:batch].repeat(k + 1, 1, 1), prompts]) if guided else prompts
        if cond is not None:
            # each object's branch sees its own mask alone, as the ControlNet learnt (one object per
            # frame); on every object's mask it drew object k smaller (second set: IoU 0.694 -> 0.734)
            own = objects.masks.transpose(0, 1).reshape(-1, *objects.masks.shape[2:])
            cond = torch.cat([cond, self.controlnet_image(own, latent_size)])
        latents = self._denoise_first(
            noise.repeat(k + 1, 1, 1, 1),
            text_all,
            cond,
            num_inference_steps,
            guidance_scale,
            source,
            controlnet_conditioning_scale,
        )
        images = self.decode_images(latents)
        images = images.view(k + 1, batch, *images.shape[1:])
        return compose_regions(images, objects.masks.to(images.device, images.dtype)), noise

    def _denoise_first(self, noise, text_emb, cond, num_inference_steps, guidance_scale, source, conditioning_scale):
        """The sampling loop of ``make_first_frame``: frame 1's latents ``(B, C, h, w)``."""
        guided = guidance_scale > 1.0
        branches = text_emb.shape[0] // noise.shape[0]  # the rows of text_emb, B at a time
        residuals = {}
        cond = None if cond is None else torch.cat([cond] * branches)
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        latents = noise * self.scheduler.init_noise_sigma
        for t in self.scheduler.timesteps:
            model_input = torch.cat([latents] * branches)
            model_input = self.scheduler.scale_model_input(model_input, t)
            if source == "controlnet":
                down, mid = self.controlnet(
                    model_input,
                    t,
                    text_emb,
                    controlnet_cond=cond,
                    conditioning_scale=conditioning_scale,
                    return_dict=False,
                )
                residuals = dict(down_block_additional_residuals=down, mid_block_additional_residual=mid)
            pred = self.base_unet(model_input, t, text_emb, return_dict=False, **residuals)[0]
            if guided:
                uncond, cond_pred = pred.chunk(2)
                pred = uncond + guidance_scale * (cond_pred - uncond)
            latents = self.scheduler.step(pred, t, latents).prev_sample
        return latents

    def controlnet_image(self, first_masks: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
        """The ControlNet's input ``(B, C, H, W)``: the first masks drawn by ``controlnet_condition``."""
        image = controlnet_image(self.controlnet, self.controlnet_condition, first_masks, latent_size)
        return image.to(self.device, self.dtype)

    # ---- frames 2..n ------------------------------------------------------------------------------
    @torch.no_grad()
    def denoise_window(
        self,
        first_latent: torch.Tensor,
        noise: torch.Tensor,
        text_emb: torch.Tensor,
        masks: torch.Tensor | None,
        num_inference_steps: int,
        guidance_scale: float,
        adain: bool = False,
        adain_start: float = 0.6,
        callback: Callable[[dict], None] | None = None,
        chunk: int = 0,
        num_chunks: int = 1,
        mask_guidance_scale: float = 0.0,
        object_text: torch.Tensor | None = None,
        object_masks: torch.Tensor | None = None,
        adain_per_object: bool = True,
    ) -> torch.Tensor:
        """Denoise one motion window whose frame 1 is known.

        Args:
            first_latent: clean ``E(v_1)`` ``(B, C, h, w)``; kept as frame 1 at every step.
            noise: initial noise of frames 2..n ``(B, C, F-1, h, w)`` (shared noise already mixed in).
            text_emb: ``(2B, L, D)`` [negative; positive] with guidance, else ``(B, L, D)``.
            masks: ``(B, F, Hm, Wm)`` in [0, 1], or None.
            adain: match frames 2..n's per-channel latent statistics to frame 1's (LAMP) on the
                steps from ``adain_start * num_inference_steps`` on.
            callback: called after every step with a dict: ``chunk``, ``num_chunks``, ``step``,
                ``num_steps``, ``timestep``, ``latents`` (the window's ``(B, C, F, h, w)``).
            mask_guidance_scale: ``w`` > 0 adds ``w * (eps(text, masks) - eps(text, no masks))``,
                guidance along the masks' own effect (one more UNet pass on the prompt half).
            object_text: per-object prompts, one row per row of ``text_emb``: ``(2B | B, K, L, D)``.
            object_masks: ``(B, K, F, Hm, Wm)`` in [0, 1], each object's own masks; the
                unconditional half of guidance is not routed.
            adain_per_object: with ``object_masks``, AdaIN matches each object (and the rest of the
                frame) to what frame 1 shows in the same region (``regional_adain``), not the whole frame.

        Returns:
            The denoised window latents ``(B, C, F, h, w)``; frame 1 is ``first_latent``.
        """
        guided = guidance_scale > 1.0
        first = first_latent[:, :, None]
        if masks is not None:
            masks = masks.to(self.device, self.dtype)
            masks = torch.cat([masks, masks]) if guided else masks
        routed, prompt_routed = {}, {}  # the per-object keyword arguments of the video UNet, if any
        if object_text is not None:
            object_masks = object_masks.to(self.device, self.dtype)
            prompt_routed = dict(
                object_text=object_text.chunk(2)[1] if guided else object_text, object_masks=object_masks
            )
            routed = dict(
                object_text=object_text,
                object_masks=torch.cat([torch.zeros_like(object_masks), object_masks]) if guided else object_masks,
            )
        regions = None
        if adain and adain_per_object and object_masks is not None:
            regions = adain_regions(object_masks, first_latent.shape[-2:])
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        rest = noise * self.scheduler.init_noise_sigma
        for i, t in enumerate(self.scheduler.timesteps):
            # frame 1 re-enters clean at every step; only frames 2..n are scaled and stepped
            latents = torch.cat([first, self.scheduler.scale_model_input(rest, t)], dim=2)
            model_input = torch.cat([latents, latents]) if guided else latents
            pred = self.video_unet(model_input, t, text_emb, masks, **routed)
            cond = pred
            if guided:
                uncond, cond = pred.chunk(2)
                pred = uncond + guidance_scale * (cond - uncond)
            if mask_guidance_scale > 0 and masks is not None:
                text = text_emb.chunk(2)[1] if guided else text_emb
                unmasked = self.video_unet(latents, t, text, None, **prompt_routed)
                pred = pred + mask_guidance_scale * (cond - unmasked)
            rest = self.scheduler.step(pred[:, :, 1:], t, rest).prev_sample
            if adain and i >= adain_start * num_inference_steps:
                if regions is None:
                    rest = adain_match(rest, first_latent)
                else:
                    rest = regional_adain(rest, first_latent, regions[:, :, 1:], regions[:, :, 0])
            if callback is not None:
                callback(
                    dict(
                        chunk=chunk,
                        num_chunks=num_chunks,
                        step=i,
                        num_steps=num_inference_steps,
                        timestep=t,
                        latents=torch.cat([first, rest], dim=2),
                    )
                )
        return torch.cat([first, rest], dim=2)

    # ---- per-object prompts -----------------------------------------------------------------------
    def _object_inputs(self, object_prompts, object_masks, masks: torch.Tensor, guided: bool):
        """``(object_text, object_masks)``: per-object embeddings ``(2B | B, K, L, D)`` (the negative
        prompt's rows first under guidance) and masks float ``(B, K, F, H, W)``; ``(None, None)``
        without object prompts."""
        if object_prompts is None and object_masks is None:
            return None, None
        if object_prompts is None or object_masks is None:
            raise ValueError("object_prompts and object_masks go together")
        batch, num_frames = masks.shape[:2]
        nested = [object_prompts] if object_prompts and isinstance(object_prompts[0], str) else object_prompts
        if len(nested) != batch or len({len(p) for p in nested}) != 1 or not nested[0]:
            raise ValueError(f"object_prompts: give K prompts for each of the {batch} videos, the same K for all")
        k = len(nested[0])
        om = torch.as_tensor(np.asarray(object_masks) if not torch.is_tensor(object_masks) else object_masks)
        if om.ndim not in (4, 5):
            raise ValueError(f"object_masks must be (K, F, H, W) or (B, K, F, H, W), got {tuple(om.shape)}")
        shape = om.shape if om.ndim == 5 else (1, *om.shape)
        om = _to_masks(om.reshape(-1, *shape[-3:])).reshape(shape)
        if om.shape[:3] != (batch, k, num_frames) or om.shape[-2:] != masks.shape[-2:]:
            raise ValueError(
                f"object_masks must be (B, K, F, H, W) = ({batch}, {k}, {num_frames}, {masks.shape[-2]}, "
                f"{masks.shape[-1]}) for {k} object prompts, got {tuple(om.shape)}"
            )
        text = self.encode_prompt([p for prompts in nested for p in prompts], None)
        text = text.reshape(batch, k, *text.shape[1:])
        if guided:  # the unconditional rows are not routed (their masks are zero); any text will do
            text = torch.cat([text, text])
        return text, om

    def _first_objects(self, object_text, object_masks, guided: bool) -> ObjectPrompts | None:
        """Frame 1's regions: the objects' prompts (the positive rows) and first masks."""
        if object_text is None:
            return None
        text = object_text.chunk(2)[1] if guided else object_text
        return ObjectPrompts(text, object_masks[:, :, 0].to(self.device, self.dtype))

    # ---- the whole video --------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        masks,
        first_frame=None,
        num_inference_steps: int = 25,
        guidance_scale: float = 7.5,
        video_guidance_scale: float | None = None,
        negative_prompt: str | list[str] | None = None,
        shared_noise: str = "paper",
        alpha: float = 0.2,
        lowfreq_grid: int = 0,
        adain: bool = False,
        adain_start: float = 0.6,
        adain_per_object: bool = True,
        decode_per_object: bool = True,
        window: int | None = None,
        first_frame_source: str = "controlnet",
        controlnet_conditioning_scale: float = 1.0,
        use_masks: bool = True,
        mask_guidance_scale: float = 0.0,
        object_prompts: list[str] | list[list[str]] | None = None,
        object_masks=None,
        height: int | None = None,
        width: int | None = None,
        generator: torch.Generator | None = None,
        callback: Callable[[dict], None] | None = None,
        output_type: str = "uint8",
        return_dict: bool = True,
    ):
        """Generate a video that follows ``masks``.

        Args:
            prompt: one prompt, or one per video.
            masks: ``(F, H, W)`` or ``(B, F, H, W)``: bool, float {0, 1} or uint8 {0, 255}, at pixel
                (or latent) resolution. F frames are generated.
            first_frame: optional uint8 ``(H, W, 3)`` / ``(B, H, W, 3)``; made by ``first_frame_source``
                when None.
            guidance_scale: classifier-free guidance of frame 1 (and of frames 2..n unless
                ``video_guidance_scale`` is given); 1 = no guidance.
            video_guidance_scale: guidance of frames 2..n alone; None = ``guidance_scale``. The two
                ask for different amounts: frame 1 must show the prompt without the ControlNet
                painting object colours into the ground (the toy base: 2.0), and frames 2..n, held
                to frame 1 by first-frame attention (and ``adain``), take the prompt's colours
                from guidance (7.5) at some cost in how closely they follow the masks (README).
            shared_noise: ``paper`` (mix in E(v_1)), ``lamp`` (mix in frame 1's noise) or ``off``.
            alpha: the eq. 8 weight (0 also turns sharing off).
            lowfreq_grid: > 0 gives frames 2..n of every chunk the ``g x g`` block means of the
                video's frame 1 noised to the first timestep (``model.sampling.lowfreq_from_first``):
                later chunks keep frame 1's ground instead of drifting from their own first frame;
                0 = off.
            adain: LAMP's per-frame latent statistics matching late in sampling (off by default).
            adain_per_object: with ``object_prompts``, AdaIN object by object (``denoise_window``).
            decode_per_object: with ``object_prompts``, decode each frame object by object
                (``decode_objects``).
            window: motion window (frames per chunk, the trained clip length); None = all frames.
            first_frame_source: ``controlnet`` or ``text`` (the "w/o ControlNet" ablation).
            controlnet_conditioning_scale: weight of the ControlNet's residuals for frame 1.
            use_masks: False drops the masks from the video UNet (the "w/o mask" ablation at inference).
            mask_guidance_scale: guidance of frames 2..n along the masks' effect (``denoise_window``); 0 = off.
            object_prompts: per-object prompts, K for one video or K per video (every video the same
                K): object k's words act inside its own mask, ``prompt`` (the scene) elsewhere. Frame
                1 composes the noise predictions of the scene's and each object's prompt by the masks
                (``make_first_frame``); frames 2..n route every text cross-attention by the masks and
                keep the objects apart in self-attention (``model.attention``). None: one prompt, as
                before.
            object_masks: each object's own masks, ``(K, F, H, W)`` or ``(B, K, F, H, W)`` in the
                forms ``masks`` takes; with ``object_prompts``. ``masks`` stays the union the mask
                term and the ControlNet see.
            height, width: output size when no first frame is given; defaults to the masks' size.
            generator: seeds every random draw (frame 1 noise, then each chunk's noise, in order).
            callback: per-step progress, see ``denoise_window``.
            output_type: ``uint8`` -> np.uint8 ``(F, H, W, 3)`` for one prompt string and 3-D masks,
                else ``(B, F, H, W, 3)``; ``latent`` -> the video latents ``(B, C, F, h, w)``.
                Every output frame is decoded from the latents, frame 1 included (``D(E(v_1))``,
                not the given first frame itself), so all frames went through the same VAE.
            return_dict: True -> ``MaskVideoOutput``; False -> the frames (or latents) themselves.
        """
        if output_type not in ("uint8", "latent"):
            raise ValueError(f"output_type must be 'uint8' or 'latent', got {output_type!r}")
        single = isinstance(prompt, str) and np.ndim(masks) == 3
        masks = _to_masks(masks)
        prompts = [prompt] * masks.shape[0] if isinstance(prompt, str) else list(prompt)
        batch, num_frames = masks.shape[:2]
        if len(prompts) != batch:
            raise ValueError(f"{len(prompts)} prompts for {batch} mask sequences")
        video_guidance_scale = guidance_scale if video_guidance_scale is None else video_guidance_scale
        guided = guidance_scale > 1.0 or video_guidance_scale > 1.0
        if guided and negative_prompt is None:
            negative_prompt = ""
        negatives = (
            None
            if not guided
            else ([negative_prompt] * batch if isinstance(negative_prompt, str) else negative_prompt)
        )
        text_emb = self.encode_prompt(prompts, negatives)
        object_text, object_masks = self._object_inputs(object_prompts, object_masks, masks, negatives is not None)

        def text_for(scale: float) -> torch.Tensor:  # [negative; positive] only where that part is guided
            return text_emb if scale > 1.0 or not guided else text_emb.chunk(2)[1]

        def objects_for(scale: float) -> torch.Tensor | None:  # per-object text, rows as text_for's
            if object_text is None:
                return None
            return object_text if scale > 1.0 or not guided else object_text.chunk(2)[1]

        # frame 1 and E(v_1)
        first_noise = None
        if first_frame is not None:
            images = _to_images(first_frame)
            if images.shape[0] != batch:
                raise ValueError(f"{images.shape[0]} first frames for {batch} videos")
            height, width = images.shape[-2:]
        else:
            height, width = height or masks.shape[-2], width or masks.shape[-1]
        if height % self.vae_scale_factor or width % self.vae_scale_factor:
            raise ValueError(f"size {height}x{width} is not divisible by the VAE factor {self.vae_scale_factor}")
        latent_size = (height // self.vae_scale_factor, width // self.vae_scale_factor)
        if first_frame is None:
            images, first_noise = self.make_first_frame(
                text_for(guidance_scale),
                masks[:, 0].to(self.device),
                latent_size,
                num_inference_steps,
                guidance_scale,
                generator,
                first_frame_source,
                controlnet_conditioning_scale,
                self._first_objects(objects_for(guidance_scale), object_masks, guidance_scale > 1.0),
            )
        first_latent = self.encode_images(images.to(self.device))
        if shared_noise == "lamp" and first_noise is None:
            first_noise = randn(first_latent.shape, generator, self.device, self.dtype)

        # frames 2..n, one motion window at a time
        windows = motion_windows(num_frames, window or num_frames)
        video_first_latent = first_latent
        alpha_bar = self.first_alpha_bar(num_inference_steps) if lowfreq_grid else None
        frames, latents_out = [], []
        for k, frame_ids in enumerate(windows):
            noise_shape = (batch, first_latent.shape[1], len(frame_ids) - 1, *latent_size)
            fresh = randn(noise_shape, generator, self.device, self.dtype)
            noise = mix_shared_noise(fresh, first_latent, shared_noise, alpha, first_noise)
            if lowfreq_grid:
                noise = lowfreq_from_first(noise, video_first_latent, fresh[:, :, 0], alpha_bar, lowfreq_grid)
            window_masks = masks[:, frame_ids.start : frame_ids.stop] if use_masks else None
            latents = self.denoise_window(
                first_latent,
                noise,
                text_for(video_guidance_scale),
                window_masks,
                num_inference_steps,
                video_guidance_scale,
                adain,
                adain_start,
                callback,
                k,
                len(windows),
                mask_guidance_scale,
                objects_for(video_guidance_scale),
                None if object_masks is None else object_masks[:, :, frame_ids.start : frame_ids.stop],
                adain_per_object,
            )
            new = latents if k == 0 else latents[:, :, 1:]  # chunk k+1's frame 1 is chunk k's last frame
            # each frame's object masks (B * F_new, K, H, W) when decoding object by object
            decode_masks = None
            if object_masks is not None and decode_per_object:
                window_objects = object_masks[:, :, frame_ids.start : frame_ids.stop]
                decode_masks = window_objects[:, :, -new.shape[2] :].transpose(1, 2).flatten(0, 1)
            if output_type == "latent":
                latents_out.append(new)
            else:
                flat = new.permute(0, 2, 1, 3, 4).reshape(-1, new.shape[1], *latent_size)
                images = self.decode_objects(flat, decode_masks)
                frames.append(_to_uint8(images).reshape(batch, new.shape[2], height, width, 3))
            # The next chunk starts from this chunk's last frame as an image, E(D(z)), like frame 1
            # and every training clip's first frame: a denoised latent lies off the encoder's
            # outputs, and later chunks drifted in colour from it (measured in the README).
            last_masks = None if decode_masks is None else decode_masks.view(batch, -1, *decode_masks.shape[1:])[:, -1]
            first_latent = self.encode_images(self.decode_objects(latents[:, :, -1], last_masks))
            del latents, noise, fresh
        if output_type == "latent":
            video = torch.cat(latents_out, dim=2)
        else:
            video = np.concatenate(frames, axis=1)
            video = video[0] if single else video
        return MaskVideoOutput(video) if return_dict else video
