"""The operator archive: downloaded from its (here: loopback) upstream, checked, cached, decoded with Pillow."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest
from loopback import serve
from PIL import Image

from blackprop.data import symbols


def small_archive() -> bytes:
    """A zip with the upstream layout: one 28x28 PNG per glyph folder and split."""
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(buffer, "w") as bundle:
        for split in symbols.SPLITS:
            for glyph in symbols.GLYPH_OPERATORS:
                png = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), mode="L").save(png, format="PNG")
                bundle.writestr(f"symbols_partitioned/{split}/{glyph}/0.png", png.getvalue())
    return buffer.getvalue()


@pytest.fixture
def upstream(tmp_path, monkeypatch):
    archive = small_archive()
    monkeypatch.delenv("BLACKPROP_SYMBOLS", raising=False)
    monkeypatch.setenv("BLACKPROP_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(symbols, "ARCHIVE_SHA256", hashlib.sha256(archive).hexdigest())
    with serve({"/pinned/mdas_symbols_v1.zip": archive}) as (url, requests):
        monkeypatch.setenv("BLACKPROP_SYMBOLS_URL", url + "/pinned/mdas_symbols_v1.zip")
        yield requests


def test_pinned_url_and_checksum_are_the_upstream_ones():
    assert symbols.ARCHIVE_URL == (
        "https://github.com/jdmacleod/handwritten-calculator/raw/fffcb836f45ddac77e313cdec93e17cd4ba857ca/"
        "mdas_symbol_dataset/mdas_symbols_v1.zip")
    assert symbols.ARCHIVE_SHA256 == "c779edb082fbe932e02ba129d4a0f7eee5e539873f988b587284d46a947d8791"
    assert "MIT licence" in symbols.__doc__ and "MIT licence" in symbols.LICENCE


def test_archive_is_downloaded_checked_cached_and_decoded(upstream, tmp_path, capsys):
    path = symbols.find_symbols_archive()
    assert path == tmp_path / "cache" / "mdas_symbols_v1.zip"
    assert "MIT licence" in capsys.readouterr().err
    images, operators, glyphs = symbols.load_operator_symbols("val")
    assert images.shape == (6, 28, 28) and sorted(operators) == ["*", "*", "+", "-", "/", "/"]
    assert symbols.find_symbols_archive() == path  # from the cache: no second request
    assert upstream == ["/pinned/mdas_symbols_v1.zip"]


def test_archive_with_another_checksum_is_refused(upstream, tmp_path, monkeypatch):
    monkeypatch.setattr(symbols, "ARCHIVE_SHA256", "0" * 64)
    with pytest.raises(symbols.DataUnavailable, match=r"has sha256 \w+, expected 0{64}; the file was refused"):
        symbols.find_symbols_archive()
    assert not (tmp_path / "cache" / "mdas_symbols_v1.zip").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # no partial file left behind


def test_missing_archive_without_download(tmp_path, monkeypatch):
    monkeypatch.delenv("BLACKPROP_SYMBOLS", raising=False)
    monkeypatch.setenv("BLACKPROP_DATA", str(tmp_path))
    with pytest.raises(symbols.DataUnavailable, match="is not in .* and BLACKPROP_SYMBOLS is not set"):
        symbols.find_symbols_archive(download_missing=False)


def test_not_a_png_is_refused():
    with pytest.raises(symbols.DataUnavailable, match="not a PNG file"):
        symbols.decode_png(b"GIF89a...")


def test_the_real_archive_passes_the_pinned_checksum(tmp_path, monkeypatch):
    """Served from 127.0.0.1, the user's copy of the real archive is accepted with the pinned sha256."""
    import os
    from pathlib import Path

    given = os.environ.get("BLACKPROP_SYMBOLS")
    if not given or not Path(given).is_file():
        pytest.skip("needs the real mdas_symbols_v1.zip in BLACKPROP_SYMBOLS")
    monkeypatch.delenv("BLACKPROP_SYMBOLS")
    monkeypatch.setenv("BLACKPROP_DATA", str(tmp_path))
    with serve({"/mdas_symbols_v1.zip": Path(given).read_bytes()}) as (url, _):
        monkeypatch.setenv("BLACKPROP_SYMBOLS_URL", url + "/mdas_symbols_v1.zip")
        path = symbols.find_symbols_archive()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == symbols.ARCHIVE_SHA256
    images, operators, _ = symbols.load_operator_symbols("test")
    assert images.shape == (603, 28, 28) and sorted(set(operators)) == ["*", "+", "-", "/"]
