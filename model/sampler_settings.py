"""The sampler's settings in one place: what ``MaskVideoPipeline.__call__`` does when a keyword is left out.

``SamplerSettings()`` holds the tuned defaults, the values the generate stage runs with (``params.yaml``'s
``generate`` section takes its defaults from here; tests/test_sampler_settings.py checks that the two
agree). ``PAPER_SAMPLER`` holds Alg. 1 of the paper as first implemented (guidance 7.5 on every frame,
shared noise from ``E(v_1)``, no AdaIN, no mask guidance): the train stage's validation GIF and the
model tests sample with it. Why each tuned value was chosen is in docs/experiments.md.

    from dataclasses import replace
    pipe.sampler = replace(pipe.sampler, num_inference_steps=50)   # every later call takes 50 steps
    pipe(prompt, masks, num_inference_steps=10)                     # this call alone takes 10
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class SamplerSettings:
    """Keyword defaults of ``MaskVideoPipeline.__call__`` (each field is a keyword of that name; its
    docstring says what each does).

    ``window`` None means every frame in one window for a bare pipeline; a pipeline loaded from a
    checkpoint sets it to the trained motion window.
    """

    num_inference_steps: int = 25
    guidance_scale: float = 4.0
    video_guidance_scale: float | None = 5.0
    shared_noise: str = "off"
    alpha: float = 0.2
    lowfreq_grid: int = 0
    adain: bool = True
    adain_start: float = 0.6
    adain_per_object: bool = True
    decode_per_object: bool = True
    window: int | None = None
    first_frame_source: str = "controlnet"
    controlnet_conditioning_scale: float = 1.0
    use_masks: bool = True
    mask_guidance_scale: float = 2.0
    video_guidance_interval: tuple[float, float] = (0.0, 0.5)
    mask_guidance_interval: tuple[float, float] = (0.75, 1.0)

    def __post_init__(self):
        for name in ("video_guidance_interval", "mask_guidance_interval"):
            try:  # a list (from YAML or JSON) kept as a tuple
                object.__setattr__(self, name, step_interval(getattr(self, name)))
            except ValueError as err:
                raise ValueError(f"{name} {err}") from None

    def guided_at(self, step: int, interval: tuple[float, float]) -> bool:
        """Whether step ``step`` (0 = the noisiest) lies in ``interval``, given as shares of the steps."""
        return interval[0] <= step / self.num_inference_steps < interval[1]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SamplerSettings:
        """The settings a dict records (e.g. a saved pipeline's config); unknown keys are an error."""
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown sampler settings: {', '.join(sorted(unknown))}")
        return cls(**values)


def step_interval(value) -> tuple[float, float]:
    """A guidance interval ``[start, end)``, shares of the steps, as a tuple; a clear error otherwise."""
    start, end = interval = tuple(float(x) for x in value)
    if not 0.0 <= start < end <= 1.0:
        raise ValueError(f"must be [start, end) with 0 <= start < end <= 1, got {list(interval)}")
    return interval


# Alg. 1 as first implemented: the validation GIF's settings (train stage) and the model tests'.
PAPER_SAMPLER = SamplerSettings(
    guidance_scale=7.5,
    video_guidance_scale=None,
    shared_noise="paper",
    adain=False,
    mask_guidance_scale=0.0,
    video_guidance_interval=(0.0, 1.0),
)
