"""Leaf images: rendered stand-ins drawn from (margin, shape, texture), or a user's photographs.

No leaf photographs can be fetched here, so by default the images are *synthetic stand-ins*,
rendered with numpy: a leaf outline whose half-width along the midrib follows the shape, whose
edge is modulated by the margin, and whose surface is painted by the texture, then rotated,
scaled, shifted, recoloured and noised. They are not photographs of the 11 species, and numbers
measured on them say nothing about the ISED paper's leaf data set.

* shape (half-width w(t) along the midrib, t = 0 at the base, 1 at the tip): elliptical
  (widest in the middle), lanceolate (long and narrow), oblong (parallel sides), obovate (widest
  near the tip), ovate (widest near the base);
* margin (relative change of the half-width along the edge): entire (none), indented (a few deep
  notches), lobed (three deep lobes), serrate (coarse saw teeth), serrulate (fine saw teeth),
  undulate (smooth waves);
* texture: glossy (bright highlight), leathery (dark, strong veins), smooth (flat matte),
  rough (speckled).

Real photographs: set ``BLACKPROP_LEAF_DATA`` (or pass ``root``) to a folder laid out as
``<root>/train/<species>/*.{png,jpg,jpeg}`` and ``<root>/test/<species>/*...`` with the species
folders named exactly as in ``SPECIES`` (e.g. ``Citrus limon``); images are resized to 64x64.
Their feature symbols are unknown, so only the species accuracy is measured.

Example:
    >>> image = render_leaf("serrate", "ovate", "glossy", np.random.default_rng(0))
    >>> image.shape, image.dtype
    ((3, 64, 64), dtype('float32'))
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SIZE", "MARGINS", "SHAPES", "SPECIES", "TEXTURES", "load_leaf_folder", "render_leaf"]

IMAGE_SIZE = 64
MARGINS = ("entire", "indented", "lobed", "serrate", "serrulate", "undulate")
SHAPES = ("elliptical", "lanceolate", "oblong", "obovate", "ovate")
TEXTURES = ("glossy", "leathery", "smooth", "rough")
SPECIES = (
    "Alstonia Scholaris", "Citrus limon", "Jatropha curcas", "Mangifera indica", "Ocimum basilicum",
    "Platanus orientalis", "Pongamia Pinnata", "Psidium guajava", "Punica granatum", "Syzygium cumini",
    "Terminalia Arjuna",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _half_width(shape: str, t: np.ndarray) -> np.ndarray:
    """Half-width of the leaf blade at position t in [0, 1] along the midrib (leaf length 2)."""
    t = np.clip(t, 0.0, 1.0)
    if shape == "oblong":
        return 0.36 * np.sqrt(np.clip(1 - np.abs(2 * t - 1) ** 6, 0, 1))
    peak, width = {"elliptical": (0.5, 0.46), "lanceolate": (0.35, 0.2), "obovate": (0.72, 0.45),
                   "ovate": (0.28, 0.45)}[shape]
    a = 1.2 * peak / (1 - peak) if shape != "elliptical" else 0.6
    b = 1.2 if shape != "elliptical" else 0.6
    profile = t**a * (1 - t) ** b
    top = peak**a * (1 - peak) ** b
    return width * profile / top


def _margin(margin: str, t: np.ndarray, phase: float) -> np.ndarray:
    """Relative change of the half-width along the edge."""
    if margin == "entire":
        return np.zeros_like(t)
    if margin == "undulate":
        return 0.2 * np.sin(2 * np.pi * (4 * t + phase))
    if margin == "serrate":
        return -0.4 * np.mod(8 * t + phase, 1.0)
    if margin == "serrulate":
        return -0.18 * np.mod(18 * t + phase, 1.0)
    if margin == "indented":
        return -0.75 * np.clip(np.cos(2 * np.pi * (3 * t + phase)), 0, 1) ** 12
    if margin == "lobed":
        return 0.6 * np.abs(np.sin(np.pi * 3 * t)) ** 0.5 - 0.6
    raise ValueError(f"unknown margin {margin!r}; valid: {', '.join(MARGINS)}")


def render_leaf(margin: str, shape: str, texture: str, rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    """One RGB image ``[3, size, size]`` with values in [0, 1] of a leaf with the given features."""
    for name, value, valid in (("margin", margin, MARGINS), ("shape", shape, SHAPES), ("texture", texture, TEXTURES)):
        if value not in valid:
            raise ValueError(f"render_leaf({name}=...): expected one of {valid}, got {value!r}")
    coords = (np.arange(size) + 0.5) / size * 2 - 1
    x, y = np.meshgrid(coords, coords)
    angle = rng.uniform(0, 2 * np.pi)
    scale = rng.uniform(0.8, 1.0)
    cx, cy = rng.uniform(-0.08, 0.08, size=2)
    u = ((x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)) / scale
    v = (-(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)) / scale
    t = (u + 0.9) / 1.8  # base at u = -0.9, tip at u = +0.9
    width = _half_width(shape, t) * (1 + _margin(margin, t, rng.uniform(0, 1)))
    blade = (t >= 0) & (t <= 1) & (np.abs(v) <= width)
    outline = (t >= -0.02) & (t <= 1.02) & (np.abs(v) <= width + 0.035) & ~blade
    stem = (t < 0) & (t > -0.12) & (np.abs(v) < 0.025)

    background = rng.uniform(0.75, 1.0, size=3) * rng.uniform(0.7, 1.0)
    image = np.broadcast_to(background[:, None, None], (3, size, size)).copy()
    hue_shift = rng.uniform(-0.08, 0.08)
    green = np.array([0.2 + hue_shift, 0.55 + rng.uniform(-0.1, 0.1), 0.15 - hue_shift / 2])
    midrib = np.exp(-((v / 0.025) ** 2))
    lateral = np.cos(2 * np.pi * (6 * t - 2.0 * np.abs(v))) ** 16
    veins = np.maximum(midrib, 0.6 * lateral)
    if texture == "glossy":
        highlight = np.exp(-(((u - rng.uniform(-0.3, 0.3)) / 0.35) ** 2 + ((v - 0.08) / 0.12) ** 2))
        leaf = green[:, None, None] * 1.15 + 0.55 * highlight[None] - 0.1 * veins[None]
    elif texture == "leathery":
        leaf = green[:, None, None] * 0.6 - 0.25 * veins[None] + 0.02 * rng.standard_normal((1, size, size))
    elif texture == "smooth":
        leaf = green[:, None, None] * (0.95 + 0.1 * t[None]) - 0.04 * veins[None]
    else:  # rough
        speckle = rng.standard_normal((1, size, size))
        leaf = green[:, None, None] * (0.85 + 0.35 * speckle) - 0.08 * veins[None]
    image = np.where(blade[None], leaf, image)
    image = np.where((stem | outline)[None], (green * 0.35)[:, None, None], image)
    image = image * rng.uniform(0.85, 1.15) + rng.normal(0, 0.03, size=image.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def load_leaf_folder(split: str, root: str | os.PathLike[str] | None = None,
                     size: int = IMAGE_SIZE) -> tuple[np.ndarray, list[str]]:
    """Images ``[N, 3, size, size]`` in [0, 1] and species names from ``<root>/<split>/<species>/``."""
    from PIL import Image

    root = root or os.environ.get("BLACKPROP_LEAF_DATA")
    if not root:
        raise ValueError("load_leaf_folder: give root= or set BLACKPROP_LEAF_DATA to the leaf photo folder")
    folder = Path(root) / split
    if not folder.is_dir():
        raise FileNotFoundError(f"leaf photos: {folder} is not a folder; expected <root>/{split}/<species>/*.jpg")
    images, labels = [], []
    for species_folder in sorted(p for p in folder.iterdir() if p.is_dir()):
        if species_folder.name not in SPECIES:
            raise ValueError(f"leaf photos: folder {species_folder.name!r} is not a species; valid: {', '.join(SPECIES)}")
        for path in sorted(species_folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                with Image.open(path) as picture:
                    rgb = picture.convert("RGB").resize((size, size))
                    images.append(np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0)
                labels.append(species_folder.name)
    if not images:
        raise FileNotFoundError(f"leaf photos: no {'/'.join(IMAGE_SUFFIXES)} images under {folder}")
    return np.stack(images), labels
