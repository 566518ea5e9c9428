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

The archive is the ``mdas_symbol_dataset`` of jdmacleod/handwritten-calculator on GitHub, released
under the MIT licence (keep its licence notice with any copy). Where it is looked for, in order:
1. the ``path`` argument, 2. ``$BLACKPROP_SYMBOLS`` (the zip file, or a folder holding it),
3. the cache folder: ``$BLACKPROP_DATA/mdas_symbols_v1.zip`` (default ``~/.cache/blackprop/``),
4. a download into the cache from its upstream at a pinned commit (``ARCHIVE_URL``, or
   ``$BLACKPROP_SYMBOLS_URL``), refused unless its sha256 is ``ARCHIVE_SHA256``.

PNGs are decoded with Pillow.

Example:
    >>> images, operators, glyphs = load_operator_symbols("test")    # doctest: +SKIP
    >>> images.shape, images.dtype, sorted(set(operators))  # doctest: +SKIP
    (torch.Size([603, 28, 28]), torch.uint8, ['*', '+', '-', '/'])
"""

from __future__ import annotations

import functools
import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from ._cache import DataUnavailable, cache_dir, download, verified

__all__ = ["ARCHIVE_NAME", "ARCHIVE_SHA256", "ARCHIVE_URL", "GLYPH_OPERATORS", "decode_png", "find_symbols_archive",
           "load_operator_symbols"]

ARCHIVE_NAME = "mdas_symbols_v1.zip"
#: the upstream archive at a pinned commit (MIT licence)
ARCHIVE_URL = ("https://github.com/jdmacleod/handwritten-calculator/raw/fffcb836f45ddac77e313cdec93e17cd4ba857ca/"
               "mdas_symbol_dataset/mdas_symbols_v1.zip")
#: sha256 of that archive: a download is kept only if it matches (a user's own file is used as given)
ARCHIVE_SHA256 = "c779edb082fbe932e02ba129d4a0f7eee5e539873f988b587284d46a947d8791"
LICENCE = "MIT licence, (c) the handwritten-calculator authors (github.com/jdmacleod/handwritten-calculator)"
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


def find_symbols_archive(path: str | os.PathLike[str] | None = None, download_missing: bool = True) -> Path:
    """The operator-symbol archive: the user's, the cached one, or (``download_missing``) a checked
    download into the cache."""
    explicit = path or os.environ.get("BLACKPROP_SYMBOLS")
    if explicit:
        given = Path(explicit)
        given = given / ARCHIVE_NAME if given.is_dir() else given
        if not given.is_file():
            raise DataUnavailable(
                f"operator symbols: {given} (from {'path=' if path else 'BLACKPROP_SYMBOLS'}) is not a file; "
                f"point it at {ARCHIVE_NAME} or at the folder that holds it"
            )
        return given
    cached = cache_dir() / ARCHIVE_NAME
    if verified(cached, ARCHIVE_SHA256):
        return cached
    if not download_missing:
        raise DataUnavailable(f"operator symbols: {ARCHIVE_NAME} is not in {cache_dir()} and BLACKPROP_SYMBOLS is not set")
    url = os.environ.get("BLACKPROP_SYMBOLS_URL") or ARCHIVE_URL
    print(f"blackprop: downloading the hand-written operator symbols ({LICENCE}) from {url}", file=sys.stderr)
    try:
        return download(url, cached, ARCHIVE_SHA256, "operator symbols")
    except DataUnavailable as error:
        raise DataUnavailable(
            f"{error}\nDownload {ARCHIVE_NAME} yourself (sha256 {ARCHIVE_SHA256}) and set BLACKPROP_SYMBOLS to its path"
        ) from None


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
    """Pixels ``uint8 [H, W]`` of a PNG, in grayscale."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise DataUnavailable(f"decode_png: a {image.format} image, not a PNG")
            return np.asarray(image.convert("L"))
    except UnidentifiedImageError:
        raise DataUnavailable("decode_png: not a PNG file (Pillow cannot identify it)") from None
