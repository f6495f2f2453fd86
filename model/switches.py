"""The memory and device switches of ``MaskVideoPipeline``, as diffusers users expect them.

``to``, ``enable_vae_slicing``, ``enable_vae_tiling``, ``enable_attention_slicing``,
``enable_model_cpu_offload``, ``enable_idle_page_out``; none changes a result beyond float rounding
(tests/model/test_pipeline.py).
A mixin: the pipeline's networks are its attributes (``vae``, ``text_encoder``, ``video_unet``,
``base_unet``, ``controlnet``).
"""

from __future__ import annotations

import torch

from model.attention import set_attention_slice
from model.pageout import page_out


class MemorySwitches:
    def to(self, device=None, dtype: torch.dtype | None = None) -> MemorySwitches:
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

    def enable_idle_page_out(self) -> None:
        """On the CPU, the text encoder's and the ControlNet's weights leave resident memory once a video
        is done with them (its prompts encoded, its frame 1 made) and come back from their files at the
        next video (``model.pageout``): frames 2..n run beside the video UNet and the VAE alone. At
        SD1.4's size on the CPU: 1.8 GB of pages given back, the generate stage's peak 7.37 -> 6.47 GB
        (``bench/speed/stage_memory_results.md``), about 3 s a video to read them again."""
        self._idle_page_out = True

    def done_with(self, *modules) -> None:
        """``__call__`` is done with ``modules`` for this video: page them out when that is switched on."""
        if getattr(self, "_idle_page_out", False):
            page_out(*modules)

    @property
    def device(self) -> torch.device:
        """Where the latents live: the offload device when CPU offload is on, else the video UNet's."""
        return getattr(self, "_execution_device", None) or self.denoiser.device

    @property
    def dtype(self) -> torch.dtype:
        return self.denoiser.dtype

    @property
    def denoiser(self):
        """The network whose device and dtype the latents take: the video UNet, else frame 1's UNet."""
        return self.video_unet if self.video_unet is not None else self.base_unet
