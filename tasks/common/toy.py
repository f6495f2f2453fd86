"""The toy world: its shapes, colours, grounds and motions, and a seeded renderer of short videos of
coloured shapes (one, or several each on its own path) moving over a textured ground, with a
ground-truth mask per frame (per object).

Shared by the stages that draw toy scenes: toyworld (the dataset a user would bring), base (the frames
the stand-in base models learn from) and the masks stage's user sequences (toy shapes as masks).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Object colours are chosen to stand apart from every ground (no green, sand-beige, blue or grey),
# which is what lets the evaluation's toy segmenter find the generated object by colour alone.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (245, 225, 40),
    "purple": (135, 45, 190),
    "pink": (245, 105, 190),
    "black": (25, 25, 25),
}
SHAPES = ("circle", "square", "triangle", "star", "diamond")
GROUNDS = {"grass": "a grassy meadow", "sand": "a sandy plain", "water": "a blue lake", "rock": "a rocky ground"}
# run, jump and circle move a rigid, upright shape: its masks show the whole motion. spin (the shape
# turns at a steady angular speed while it travels a straight line) and squash (it hops, stretched
# tall in the air and squashed wide on landing) live inside the object: a rigid mask moved along the
# path cannot show them, so they measure what the few-shot training adds (docs/results.md).
MOTIONS = {
    "run": "runs across",
    "jump": "jumps on",
    "circle": "circles over",
    "spin": "spins across",
    "squash": "bounces across",
}
RIGID_MOTIONS = ("run", "jump", "circle")  # the motions of the first toy base, which drew upright shapes only

SUPERSAMPLE = 4  # shapes are drawn at 4x and averaged down: smooth edges, exact coverage masks


@dataclass(frozen=True)
class ToyObject:
    """One object of a scene that may hold several: what it looks like and how it moves."""

    colour: str
    shape: str
    radius: float  # half-size, pixels
    motion: str
    params: tuple[float, ...]  # the motion's parameters, as ``object_path`` takes them
    angle: float = 0.0  # a turn at rest, radians, clockwise as seen; the motion may add its own
    aspect: float = 1.0  # height / width at rest (area kept); the motion may multiply its own

    def prompt(self, ground: str) -> str:
        return f"a {self.colour} {self.shape} {MOTIONS[self.motion]} {GROUNDS[ground]}"


def joint_prompt(objects: list[ToyObject], ground: str) -> str:
    """One prompt naming every object of a scene, moving as the first: "a red circle a yellow square
    runs across a grassy meadow" (the toy tokenizer knows no "and")."""
    names = " ".join(f"a {o.colour} {o.shape}" for o in objects)
    return f"{names} {MOTIONS[objects[0].motion]} {GROUNDS[ground]}"


@dataclass(frozen=True)
class Scene:
    """Everything drawn in one toy video of one object; ``params`` are the motion's random parameters."""

    colour: str
    shape: str
    ground: str
    motion: str
    radius: float  # object half-size, pixels
    params: tuple[float, ...]
    angle: float = 0.0  # as ToyObject's
    aspect: float = 1.0

    @property
    def object(self) -> ToyObject:
        return ToyObject(self.colour, self.shape, self.radius, self.motion, self.params, self.angle, self.aspect)

    @property
    def prompt(self) -> str:
        return self.object.prompt(self.ground)


# ---------------------------------------------------------------------------------------------
# grounds


def _smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Zero-mean, unit-std noise with features about ``scale`` pixels wide."""
    field = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), scale)
    return (field - field.mean()) / (field.std() + 1e-6)


def render_ground(kind: str, size: int, rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """A textured ground, float32 (F, size, size, 3) in [0, 255]; only water moves."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    coarse, fine = _smooth_noise(rng, size, size / 8), _smooth_noise(rng, size, 1.0)
    if kind == "grass":
        base = np.array([70, 140, 55], np.float32)
        blades = (rng.random((size, size)) < 0.12).astype(np.float32)
        blades = cv2.filter2D(blades, -1, np.ones((3, 1), np.float32) / 3)  # short vertical strokes
        img = base + 14 * coarse[..., None] + 18 * (blades[..., None] - 0.12) * np.array([0.6, 1.0, 0.4])
        frames = np.repeat(img[None], n_frames, 0)
    elif kind == "sand":
        base = np.array([214, 188, 136], np.float32)
        ripple = np.sin(2 * np.pi * (yy * 9 + 0.15 * coarse))
        img = base + 8 * ripple[..., None] + 7 * fine[..., None] + 6 * coarse[..., None]
        frames = np.repeat(img[None], n_frames, 0)
    elif kind == "water":
        base = np.array([45, 95, 175], np.float32)
        phase = rng.uniform(0, 2 * np.pi)
        frames = np.stack(
            [
                base
                + 12
                * np.sin(2 * np.pi * (yy * 6 + 0.3 * xx + 0.2 * coarse) + phase + 0.5 * t)[..., None]
                * np.array([0.5, 0.8, 1.0])
                + 5 * fine[..., None]
                for t in range(n_frames)
            ]
        )
    elif kind == "rock":
        base = np.array([128, 122, 115], np.float32)
        cracks = (np.abs(_smooth_noise(rng, size, size / 16)) < 0.08).astype(np.float32)
        img = base + 16 * coarse[..., None] + 6 * fine[..., None] - 35 * cracks[..., None]
        frames = np.repeat(img[None], n_frames, 0)
    else:
        raise ValueError(f"unknown ground '{kind}', expected one of {sorted(GROUNDS)}")
    return np.clip(frames, 0, 255).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# shapes and motion


def shape_polygon(
    shape: str, cx: float, cy: float, r: float, angle: float = 0.0, aspect: float = 1.0
) -> np.ndarray | None:
    """Vertices (K, 2) of a polygonal shape centred at (cx, cy) with half-size r, turned by ``angle``
    (radians, clockwise as seen: image y points down), then stretched to ``aspect`` = height / width
    along the picture's axes with its area kept (a squash is the ground's, whatever the turn); None
    for a circle."""
    if shape == "circle":
        return None
    if shape == "square":
        s = r * 0.85
        pts = [(-s, -s), (s, -s), (s, s), (-s, s)]
    elif shape == "diamond":
        pts = [(0, -r), (r * 0.75, 0), (0, r), (-r * 0.75, 0)]
    elif shape == "triangle":
        pts = [(0, -r), (r * 0.95, r * 0.75), (-r * 0.95, r * 0.75)]
    elif shape == "star":
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        pts = list(zip(radii * np.cos(angles), radii * np.sin(angles)))
    else:
        raise ValueError(f"unknown shape '{shape}', expected one of {SHAPES}")
    pts = np.array(pts, np.float32)
    if angle != 0.0 or aspect != 1.0:  # the upright, unstretched shape is left bit for bit as it was
        c, s = np.cos(angle), np.sin(angle)
        pts = pts @ np.array([[c, s], [-s, c]], np.float32)
        pts = pts * np.array([1 / np.sqrt(aspect), np.sqrt(aspect)], np.float32)
    return pts + np.array([cx, cy], np.float32)


def render_object_mask(
    shape: str, cx: float, cy: float, r: float, size: int, angle: float = 0.0, aspect: float = 1.0
) -> np.ndarray:
    """Coverage in [0, 1], float32 (size, size), of the shape (posed as ``shape_polygon`` says),
    anti-aliased by supersampling."""
    big = np.zeros((size * SUPERSAMPLE, size * SUPERSAMPLE), np.uint8)
    s = SUPERSAMPLE
    poly = shape_polygon(shape, cx * s, cy * s, r * s, angle, aspect)
    if poly is None and aspect != 1.0:  # a stretched circle is an ellipse; its turn does not show
        axes = (round(r * s / np.sqrt(aspect)), round(r * s * np.sqrt(aspect)))
        cv2.ellipse(big, (round(cx * s), round(cy * s)), axes, 0, 0, 360, 255, -1, lineType=cv2.LINE_AA)
    elif poly is None:
        cv2.circle(big, (round(cx * s), round(cy * s)), round(r * s), 255, -1, lineType=cv2.LINE_AA)
    else:
        cv2.fillPoly(big, [np.round(poly).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def object_path(motion: str, params: tuple[float, ...], radius: float, size: int, n_frames: int) -> np.ndarray:
    """Object centres (F, 2) in pixels for a motion pattern; the object stays inside the frame."""
    u = np.linspace(0.0, 1.0, n_frames)
    lo, hi = radius + 1, size - radius - 1
    if motion in ("run", "squash"):
        # params: start, end (fractions of the free width), hops, hop height (fraction of size)[, squash]
        start, end, hops, height = params[:4]
        x = lo + (hi - lo) * (start + (end - start) * u)
        y = hi - height * size * np.abs(np.sin(np.pi * hops * u))
    elif motion == "spin":
        # params: start, end (fractions of the free width), height (fraction of the free height), turns
        start, end, level = params[:3]
        x = lo + (hi - lo) * (start + (end - start) * u)
        y = np.full_like(u, lo + (hi - lo) * level)
    elif motion == "jump":
        # params: x position (fraction), jumps, jump height (fraction of size)
        xpos, jumps, height = params
        x = np.full_like(u, lo + (hi - lo) * xpos)
        y = hi - height * size * np.abs(np.sin(np.pi * jumps * u))
    elif motion == "circle":
        # params: orbit radius (fraction of free half-width), start angle, turns (sign = direction)
        orbit, angle, turns = params
        c, rr = size / 2, orbit * (hi - lo) / 2
        x = c + rr * np.cos(angle + 2 * np.pi * turns * u)
        y = c + rr * np.sin(angle + 2 * np.pi * turns * u)
    else:
        raise ValueError(f"unknown motion '{motion}', expected one of {sorted(MOTIONS)}")
    return np.stack([np.clip(x, lo, hi), np.clip(y, lo, hi)], axis=1)


def object_pose(motion: str, params: tuple[float, ...], n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """What the motion does to the shape itself: its turn (radians, clockwise) and aspect (height /
    width) in each frame, float64 (F,) each; (0, 1) throughout for the rigid motions."""
    u = np.linspace(0.0, 1.0, n_frames)
    angle, aspect = np.zeros(n_frames), np.ones(n_frames)
    if motion == "spin":
        # params[3]: turns over the video, the sign its direction: a steady angular speed
        angle = 2 * np.pi * params[3] * u
    elif motion == "squash":
        # params[4]: log of the aspect at the top of a hop; the landing squashes by its inverse
        hops, amount = params[2], params[4]
        aspect = np.exp(amount * (2 * np.abs(np.sin(np.pi * hops * u)) - 1))
    return angle, aspect


def random_motion_params(motion: str, rng: np.random.Generator) -> tuple[float, ...]:
    if motion == "run":
        return (rng.uniform(0.0, 0.15), rng.uniform(0.85, 1.0), float(rng.integers(2, 4)), rng.uniform(0.15, 0.3))
    if motion == "jump":
        return (rng.uniform(0.25, 0.75), float(rng.integers(1, 3)), rng.uniform(0.25, 0.45))
    if motion == "circle":
        return (rng.uniform(0.5, 0.9), rng.uniform(0, 2 * np.pi), float(rng.choice([-1.0, 1.0])))
    if motion == "spin":
        # 0.5-0.9 turns in a video: at most ~20 degrees a frame over 16 frames, under half of the
        # square's 90-degree symmetry, so the turn's direction can be read from the frames
        turns = rng.uniform(0.5, 0.9) * rng.choice([-1.0, 1.0])
        return (rng.uniform(0.0, 0.15), rng.uniform(0.85, 1.0), rng.uniform(0.3, 0.8), float(turns))
    if motion == "squash":
        # aspect exp(+-0.3..0.47): 1.35-1.6 at the top of a hop, 0.63-0.74 on landing
        return (
            rng.uniform(0.0, 0.15),
            rng.uniform(0.85, 1.0),
            float(rng.integers(2, 4)),
            rng.uniform(0.15, 0.3),
            rng.uniform(0.3, 0.47),
        )
    raise ValueError(f"unknown motion '{motion}'")


def pattern_params(motion: str, params: tuple[float, ...]) -> tuple[float, ...]:
    """``params`` with what makes a motion pattern fixed, so that a few-shot set shares it: spin turns
    clockwise at 0.75 turns in 16 frames (18 degrees a frame), squash hops twice at aspect e^0.4 (1.49
    tall, 0.67 wide). Where and how far the object travels stays each video's own; the rigid motions
    are left as drawn."""
    if motion == "spin":
        return (*params[:3], 0.75)
    if motion == "squash":
        return (params[0], params[1], 2.0, params[3], 0.4)
    return params


def render_objects(
    objects: list[ToyObject],
    ground: str,
    size: int,
    n_frames: int,
    rng: np.random.Generator,
    paths: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 (F, H, W, 3) and each object's visible masks bool (K, F, H, W): the objects drawn
    in order over one ground, so where two overlap the later one is in front and hides the other.
    ``paths``: each object's centres (F, 2) in pixels, instead of its motion's path (a drawn path);
    the motion still poses the shape (a spin turns along any path)."""
    frames = render_ground(ground, size, rng, n_frames)
    # a gentle top-to-bottom shade makes an object look lit without breaking its colour identity
    shade = 1.08 - 0.16 * np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    covers = np.zeros((len(objects), n_frames, size, size), np.float32)
    for k, obj in enumerate(objects):
        body = np.clip(np.array(COLOURS[obj.colour], np.float32) * shade, 0, 255)
        path = object_path(obj.motion, obj.params, obj.radius, size, n_frames) if paths is None else paths[k]
        angles, aspects = object_pose(obj.motion, obj.params, n_frames)
        for t, (cx, cy) in enumerate(path):
            angle, aspect = obj.angle + angles[t], obj.aspect * aspects[t]
            covers[k, t] = render_object_mask(obj.shape, cx, cy, obj.radius, size, float(angle), float(aspect))
            frames[t] = frames[t] * (1 - covers[k, t, ..., None]) + body * covers[k, t, ..., None]
    masks = covers >= 0.5
    for k in range(len(objects) - 1):
        masks[k] &= ~masks[k + 1 :].any(0)  # hidden behind a later object
    return np.clip(frames + 0.5, 0, 255).astype(np.uint8), masks


def render_video(scene: Scene, size: int, n_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Render a scene: frames uint8 (F, H, W, 3) and ground-truth masks bool (F, H, W)."""
    frames, masks = render_objects([scene.object], scene.ground, size, n_frames, rng)
    return frames, masks[0]
