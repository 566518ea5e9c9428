"""Hand-written operator symbols (+ - * /) from the ``mdas_symbols_v1.zip`` archive (MIT licence).

The archive holds 28x28 8-bit grayscale PNGs, white ink on black like MNIST, under
``symbols_partitioned/<split>/<glyph>/<name>.png`` with splits ``train`` (800 per glyph), ``val`` and
``test`` (100 per glyph each) and six glyphs, two of which share an operator:

| folder | operator |
|---|---|
| addition_plus | + |
| subtraction_minus | - |
| multiplication_cross, multiplication_dot | * |
| division_slash, division_obelus | / |

Where the archive is looked for, in order (the first that exists wins):
1. the ``path`` argument, 2. the ``BLACKPROP_SYMBOLS`` variable (the zip file, or a folder holding it),
3. the cache folder ``$BLACKPROP_DATA/mdas_symbols_v1.zip`` (default ``~/.cache/blackprop/``),
4. ``shared/data/mdas_symbols_v1.zip`` beside the repository (``<repo>/../shared/data``).
Nothing is downloaded; when none exists the error names these places.

PNGs are decoded by a small built-in decoder (8-bit grayscale, the archive's only format), so
Pillow is needed only for other image formats.

Example:
    >>> images, operators, glyphs = load_operator_symbols("test")    # doctest: +SKIP
    >>> images.shape, images.dtype, sorted(set(operators))  # doctest: +SKIP
    (torch.Size([603, 28, 28]), torch.uint8, ['*', '+', '-', '/'])
"""

from __future__ import annotations

import functools
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from .mnist import DataUnavailable, cache_dir

__all__ = ["ARCHIVE_NAME", "GLYPH_OPERATORS", "decode_png", "find_symbols_archive", "load_operator_symbols"]

ARCHIVE_NAME = "mdas_symbols_v1.zip"
#: sha256 of the archive this loader was written against (any archive with the same layout works)
ARCHIVE_SHA256 = "c779edb082fbe932e02ba129d4a0f7eee5e539873f988b587284d46a947d8791"
ROOT_FOLDER = "symbols_partitioned"
SPLITS = ("train", "val", "test")
GLYPH_OPERATORS = {
    "addition_plus": "+",
    "subtraction_minus": "-",
    "multiplication_cross": "*",
    "multiplication_dot": "*",
    "division_slash": "/",
    "division_obelus": "/",
}


def candidate_paths(path: str | os.PathLike[str] | None = None) -> list[Path]:
    """The places searched for the archive, in order."""
    places: list[Path] = []
    for given in (path, os.environ.get("BLACKPROP_SYMBOLS")):
        if given:
            given = Path(given)
            places.append(given / ARCHIVE_NAME if given.is_dir() else given)
    places.append(cache_dir() / ARCHIVE_NAME)
    repository = Path(__file__).resolve().parents[3]
    places.append(repository.parent / "shared" / "data" / ARCHIVE_NAME)
    return places


def find_symbols_archive(path: str | os.PathLike[str] | None = None) -> Path:
    """The operator-symbol archive; raises ``DataUnavailable`` naming every place searched."""
    explicit = path or os.environ.get("BLACKPROP_SYMBOLS")
    places = candidate_paths(path)
    if explicit and not places[0].is_file():
        raise DataUnavailable(
            f"operator symbols: {places[0]} (from {'path=' if path else 'BLACKPROP_SYMBOLS'}) is not a file; "
            f"point it at {ARCHIVE_NAME} or at the folder that holds it"
        )
    for place in places:
        if place.is_file():
            return place
    searched = "\n  ".join(str(p) for p in places)
    raise DataUnavailable(
        f"operator symbols: {ARCHIVE_NAME} not found; searched\n  {searched}\n"
        f"Copy {ARCHIVE_NAME} (and its licence file) to {cache_dir()}, or set BLACKPROP_SYMBOLS to its path"
    )


def load_operator_symbols(
    split: str, path: str | os.PathLike[str] | None = None
) -> tuple[torch.Tensor, list[str], list[str]]:
    """``(images uint8 [N, 28, 28], operator of each image, glyph folder of each image)`` of a split.

    Images are in sorted member order, so the result is the same on every machine.
    """
    if split not in SPLITS:
        raise ValueError(f"load_operator_symbols(split=...): expected one of {', '.join(SPLITS)}, got {split!r}")
    return _load(find_symbols_archive(path).resolve(), split)


@functools.lru_cache(maxsize=4)
def _load(archive: Path, split: str) -> tuple[torch.Tensor, list[str], list[str]]:
    try:
        bundle = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as error:
        raise DataUnavailable(f"operator symbols: {archive} is not a zip archive ({error})") from None
    with bundle:
        prefix = f"{ROOT_FOLDER}/{split}/"
        members = sorted(n for n in bundle.namelist() if n.startswith(prefix) and not n.endswith("/"))
        images: list[np.ndarray] = []
        operators: list[str] = []
        glyphs: list[str] = []
        for name in members:
            glyph = name[len(prefix):].split("/", 1)[0]
            if glyph not in GLYPH_OPERATORS:
                continue
            image = decode_png(bundle.read(name))
            if image.shape != (28, 28):
                raise DataUnavailable(f"operator symbols: {archive}:{name} is {image.shape}, expected 28x28")
            images.append(image)
            operators.append(GLYPH_OPERATORS[glyph])
            glyphs.append(glyph)
    missing = sorted(set(GLYPH_OPERATORS.values()) - set(operators))
    if missing:
        raise DataUnavailable(
            f"operator symbols: {archive} has no {split} images of {', '.join(missing)} under {prefix}<glyph>/; "
            f"expected glyph folders {', '.join(GLYPH_OPERATORS)}"
        )
    return torch.from_numpy(np.stack(images)), operators, glyphs


def decode_png(data: bytes) -> np.ndarray:
    """Pixels ``uint8 [H, W]`` of a PNG: 8-bit grayscale directly, other formats through Pillow."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise DataUnavailable("decode_png: not a PNG file (bad signature)")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if depth != 8 or colour != 0 or interlace != 0:
        return _decode_with_pillow(data)
    chunks, position = [], 8
    while position < len(data):
        (size,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            chunks.append(data[position + 8 : position + 8 + size])
        position += 12 + size
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8).reshape(height, width + 1)
    return _unfilter(raw[:, 1:].astype(np.int32), raw[:, 0])


def _unfilter(rows: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Undo PNG scanline filters (None, Sub, Up, Average, Paeth) for one byte per pixel."""
    out = np.zeros_like(rows)
    previous = np.zeros(rows.shape[1], dtype=np.int32)
    for r, kind in enumerate(filters.tolist()):
        line = rows[r]
        if kind == 0:
            current = line
        elif kind == 2:
            current = (line + previous) & 0xFF
        else:
            current = np.zeros_like(line)
            left = 0
            for c in range(line.shape[0]):
                up = int(previous[c])
                if kind == 1:
                    value = line[c] + left
                elif kind == 3:
                    value = line[c] + ((left + up) >> 1)
                elif kind == 4:
                    upper_left = int(previous[c - 1]) if c else 0
                    value = line[c] + _paeth(left, up, upper_left)
                else:
                    raise DataUnavailable(f"decode_png: unknown filter type {kind}")
                left = int(value) & 0xFF
                current[c] = left
        out[r] = current
        previous = current
    return out.astype(np.uint8)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _decode_with_pillow(data: bytes) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise DataUnavailable(
            "decode_png: this PNG is not 8-bit grayscale and Pillow is not installed; pip install pillow"
        ) from None
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))
