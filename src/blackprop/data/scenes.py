"""Indoor scenes as lists of object crops: rendered stand-ins from emoji glyphs, or a user's crops.

No indoor photographs (nor the object detector the ISED paper ran on them) are available here,
so by default every scene is a *synthetic stand-in*: a room is drawn, then 3 to 10 objects,
mostly from that room's typical objects (``ROOM_OBJECTS``), some clutter (``skip``: a crop with
no known object, ``ball``, or another room's object); each object becomes a 32x32 crop rendered
from a glyph with a random size, rotation, position, background, brightness and noise. Numbers
measured on them say nothing about the paper's scene data set.

Glyphs: the colour emoji of Noto Color Emoji (Debian: ``apt-get install fonts-noto-color-emoji``;
or point ``BLACKPROP_EMOJI_FONT`` at any colour emoji font file). Several glyphs are loose
stand-ins for their label (e.g. ``printer`` is the printer emoji, but ``wardrobe`` is a dress).
Without such a font, or with ``BLACKPROP_SCENE_GLYPHS=shapes``, each label is instead a fixed
random pictogram (coloured polygons seeded by the label), so the task runs anywhere;
``glyph_source()`` says which is in use, and the two give different images.

Real crops: set ``BLACKPROP_SCENE_DATA`` (or pass ``root``) to a folder laid out as
``<root>/<split>/<room>/<scene id>/*.{png,jpg,jpeg}``: one folder per scene holding its object
crops (at most ``MAX_OBJECTS``, in file-name order), ``<room>`` one of ``ROOMS``. Crops are
resized to 32x32; their object labels are unknown.

Example:
    >>> pool, index, objects, rooms = generate_scenes(4, seed=0)   # doctest: +SKIP
    >>> pool.shape[1:], index.shape                                # doctest: +SKIP
    ((3, 32, 32), (4, 10))
"""

from __future__ import annotations

import functools
import os
import warnings
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = [
    "CROP_SIZE", "GLYPHS", "MAX_OBJECTS", "OBJECTS", "ROOMS", "ROOM_OBJECTS", "compose_scene", "emoji_font_path",
    "generate_scenes", "glyph_description", "glyph_source", "load_scene_folder", "render_object",
]

CROP_SIZE = 32
MAX_OBJECTS = 10
ROOMS = ("basement", "bathroom", "bedroom", "dining", "kitchen", "lab", "living", "lobby", "office")
ROOM_OBJECTS = {
    "bathroom": ("toilet", "shampoo", "hairdryer", "towel", "shower curtain"),
    "bedroom": ("bed", "pillows", "nightstand", "wardrobe", "blanket"),
    "office": ("desk", "computer", "printer", "whiteboard", "stationary"),
    "lab": ("microscope", "fume hood", "safety goggles", "machines", "chemicals"),
    "lobby": ("coat rack", "shoe rack", "umbrella stand", "key holder", "shoes"),
    "basement": ("washer", "storage boxes", "generator", "bicycles", "toolbox"),
    "dining": ("dining table", "wine glasses", "placemats", "wine rack", "silverware"),
    "kitchen": ("dishwasher", "refrigerator", "oven", "stove", "kettle"),
    "living": ("sofa", "tv", "fire place", "gaming console", "coffee table"),
}
CLUTTER = ("skip", "ball")
OBJECTS = tuple(o for objects in ROOM_OBJECTS.values() for o in objects) + CLUTTER  # the 47 object labels
GLYPHS = {
    "toilet": "\U0001f6bd", "shampoo": "\U0001f9f4", "hairdryer": "\U0001f4a8", "towel": "\U0001f9d6",
    "shower curtain": "\U0001f6bf", "bed": "\U0001f6cf", "pillows": "\U0001f6cc", "nightstand": "\u23f0",
    "wardrobe": "\U0001f457", "blanket": "\U0001f9e3", "desk": "\U0001f5c4", "computer": "\U0001f4bb",
    "printer": "\U0001f5a8", "whiteboard": "\U0001f4cb", "stationary": "\u270f", "microscope": "\U0001f52c",
    "fume hood": "\u2697", "safety goggles": "\U0001f97d", "machines": "\u2699", "chemicals": "\U0001f9ea",
    "coat rack": "\U0001f9e5", "shoe rack": "\U0001f45e", "umbrella stand": "\u2602", "key holder": "\U0001f511",
    "shoes": "\U0001f45f", "washer": "\U0001f9fa", "storage boxes": "\U0001f4e6", "generator": "\U0001f50b",
    "bicycles": "\U0001f6b2", "toolbox": "\U0001f9f0", "dining table": "\U0001fa91", "wine glasses": "\U0001f377",
    "placemats": "\U0001f962", "wine rack": "\U0001f37e", "silverware": "\U0001f374", "dishwasher": "\U0001fae7",
    "refrigerator": "\U0001f9ca", "oven": "\U0001f967", "stove": "\U0001f373", "kettle": "\U0001fad6",
    "sofa": "\U0001f6cb", "tv": "\U0001f4fa", "fire place": "\U0001f525", "gaming console": "\U0001f3ae",
    "coffee table": "\u2615", "ball": "\u26bd",
}  # "skip" has no glyph: a crop of background clutter
EMOJI_FONTS = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
)
SPRITE_SIZE = 64
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def emoji_font_path() -> Path | None:
    """``$BLACKPROP_EMOJI_FONT`` or the first Noto Color Emoji file found, else None."""
    override = os.environ.get("BLACKPROP_EMOJI_FONT")
    if override:
        if not Path(override).is_file():
            raise FileNotFoundError(f"BLACKPROP_EMOJI_FONT={override!r} is not a file; point it at a colour emoji .ttf")
        return Path(override)
    return next((Path(p) for p in EMOJI_FONTS if Path(p).is_file()), None)


def glyph_source() -> str:
    """``"emoji:<font file>"`` or ``"shapes"`` (see the module docstring)."""
    choice = os.environ.get("BLACKPROP_SCENE_GLYPHS", "auto")
    if choice not in ("auto", "emoji", "shapes"):
        raise ValueError(f"BLACKPROP_SCENE_GLYPHS={choice!r}: expected auto, emoji or shapes")
    if choice == "shapes":
        return "shapes"
    font = emoji_font_path()
    if font is None:
        if choice == "emoji":
            raise FileNotFoundError("no colour emoji font: apt-get install fonts-noto-color-emoji, or set BLACKPROP_EMOJI_FONT")
        warnings.warn("no colour emoji font found (apt-get install fonts-noto-color-emoji); scene objects are drawn "
                      "as random pictograms instead", RuntimeWarning, stacklevel=2)
        return "shapes"
    return f"emoji:{font}"


def glyph_description(source: str) -> str:
    """Words for the training rows: which glyphs a ``glyph_source()`` value draws, and why."""
    if source.startswith("emoji:"):
        return f"colour emoji font {source.split(':', 1)[1]}"
    if os.environ.get("BLACKPROP_SCENE_GLYPHS") == "shapes":
        return "random pictograms (BLACKPROP_SCENE_GLYPHS=shapes)"
    return "font fallback: random pictograms (no colour emoji font found)"


@functools.lru_cache(maxsize=2)
def _sprites(source: str) -> dict[str, PILImage]:
    """RGBA sprite (SPRITE_SIZE square) of every label but ``skip``."""
    from PIL import Image, ImageDraw, ImageFont

    sprites: dict[str, PILImage] = {}
    if source.startswith("emoji:"):
        font = ImageFont.truetype(source.split(":", 1)[1], 109)  # bitmap colour fonts come at size 109
        for label, char in GLYPHS.items():
            canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
            ImageDraw.Draw(canvas).text((10, 10), char, font=font, embedded_color=True)
            box = canvas.getbbox()
            if box is None:
                raise ValueError(f"the emoji font {source} has no glyph for {label!r} ({char!r}); use fonts-noto-color-emoji")
            sprites[label] = _square(canvas.crop(box)).resize((SPRITE_SIZE, SPRITE_SIZE), Image.Resampling.LANCZOS)
        return sprites
    for label in GLYPHS:
        rng = np.random.default_rng(zlib.crc32(label.encode()))
        canvas = Image.new("RGBA", (SPRITE_SIZE, SPRITE_SIZE), (0, 0, 0, 0))
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(2, 4))):
            corners = int(rng.integers(3, 7))
            centre = rng.uniform(18, 46, size=2)
            radius = rng.uniform(10, 22)
            angles = np.sort(rng.uniform(0, 2 * np.pi, size=corners))
            points = [(float(centre[0] + radius * np.cos(a)), float(centre[1] + radius * np.sin(a))) for a in angles]
            colour = tuple(int(c) for c in rng.integers(0, 256, size=3)) + (255,)
            draw.polygon(points, fill=colour)
        sprites[label] = canvas
    return sprites


def _square(image: PILImage) -> PILImage:
    from PIL import Image

    side = max(image.size)
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(image, ((side - image.size[0]) // 2, (side - image.size[1]) // 2))
    return canvas


def render_object(label: str, rng: np.random.Generator, source: str | None = None, size: int = CROP_SIZE) -> np.ndarray:
    """One crop ``[3, size, size]`` in [0, 1] of ``label`` (``"skip"``: background clutter only)."""
    from PIL import Image, ImageDraw

    if label not in OBJECTS:
        raise ValueError(f"render_object(label=...): {label!r} is not one of the {len(OBJECTS)} object labels")
    background = tuple(int(c) for c in rng.integers(120, 256, size=3))
    crop = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(crop)
    for _ in range(int(rng.integers(0, 3)) + (3 if label == "skip" else 0)):  # clutter strokes
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, size, size=4))
        draw.line((x0, y0, x1, y1), fill=tuple(int(c) for c in rng.integers(0, 256, size=3)), width=int(rng.integers(1, 4)))
    if label != "skip":
        sprite = _sprites(source or glyph_source())[label]
        side = int(size * rng.uniform(0.6, 0.95))
        glyph = sprite.rotate(float(rng.uniform(-25, 25)), resample=Image.Resampling.BILINEAR, expand=True)
        glyph = glyph.resize((side, side), Image.Resampling.BILINEAR)
        offset = rng.integers(-(size // 8), size // 8 + 1, size=2)
        crop.paste(glyph, (int((size - side) // 2 + offset[0]), int((size - side) // 2 + offset[1])), glyph)
    image = np.asarray(crop, dtype=np.float32).transpose(2, 0, 1) / 255.0
    image = image * rng.uniform(0.75, 1.2) + rng.uniform(-0.1, 0.1) + rng.normal(0, 0.04, size=image.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def compose_scene(room: str, rng: np.random.Generator) -> list[str]:
    """3 to 10 object labels: at least 2 of ``room``'s typical objects, each other slot a room object
    (75%), ``skip`` (10%), ``ball`` (5%) or another room's object (10%)."""
    count = int(rng.integers(3, MAX_OBJECTS + 1))
    own = ROOM_OBJECTS[room]
    others = [o for r, objs in ROOM_OBJECTS.items() if r != room for o in objs]
    labels = [own[int(rng.integers(len(own)))] for _ in range(2)]
    for _ in range(count - 2):
        draw = rng.uniform()
        if draw < 0.75:
            labels.append(own[int(rng.integers(len(own)))])
        elif draw < 0.85:
            labels.append("skip")
        elif draw < 0.9:
            labels.append("ball")
        else:
            labels.append(others[int(rng.integers(len(others)))])
    rng.shuffle(labels)
    return labels


def generate_scenes(num_scenes: int, seed: int, source: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``(pool [M, 3, 32, 32], index [num_scenes, 10], objects [num_scenes, 10], rooms)``.

    Rooms are balanced in turn (scene i has room ``ROOMS[i % 9]`` before a seeded shuffle);
    ``index`` and ``objects`` (label indices into ``OBJECTS``) are -1 past a scene's last object.
    """
    rng = np.random.default_rng(seed)
    source = source or glyph_source()
    rooms = [ROOMS[i % len(ROOMS)] for i in range(num_scenes)]
    rng.shuffle(rooms)
    index = np.full((num_scenes, MAX_OBJECTS), -1, dtype=np.int64)
    objects = np.full((num_scenes, MAX_OBJECTS), -1, dtype=np.int64)
    crops: list[np.ndarray] = []
    for i, room in enumerate(rooms):
        for j, label in enumerate(compose_scene(room, rng)):
            index[i, j] = len(crops)
            objects[i, j] = OBJECTS.index(label)
            crops.append(render_object(label, rng, source))
    return np.stack(crops), index, objects, rooms


def load_scene_folder(split: str, root: str | os.PathLike[str] | None = None
                      ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(pool, index, rooms)`` from ``<root>/<split>/<room>/<scene id>/`` crop folders."""
    from PIL import Image

    root = root or os.environ.get("BLACKPROP_SCENE_DATA")
    if not root:
        raise ValueError("load_scene_folder: give root= or set BLACKPROP_SCENE_DATA to the scene crop folder")
    folder = Path(root) / split
    if not folder.is_dir():
        raise FileNotFoundError(f"scene crops: {folder} is not a folder; expected <root>/{split}/<room>/<scene>/*.png")
    crops: list[np.ndarray] = []
    rows: list[list[int]] = []
    rooms: list[str] = []
    for room_folder in sorted(p for p in folder.iterdir() if p.is_dir()):
        if room_folder.name not in ROOMS:
            raise ValueError(f"scene crops: folder {room_folder.name!r} is not a room; valid: {', '.join(ROOMS)}")
        for scene in sorted(p for p in room_folder.iterdir() if p.is_dir()):
            files = sorted(p for p in scene.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:MAX_OBJECTS]
            if not files:
                continue
            row = []
            for path in files:
                with Image.open(path) as picture:
                    rgb = picture.convert("RGB").resize((CROP_SIZE, CROP_SIZE))
                    crops.append(np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0)
                row.append(len(crops) - 1)
            rows.append(row + [-1] * (MAX_OBJECTS - len(row)))
            rooms.append(room_folder.name)
    if not crops:
        raise FileNotFoundError(f"scene crops: no scene folders with images under {folder}")
    return np.stack(crops), np.asarray(rows, dtype=np.int64), rooms
