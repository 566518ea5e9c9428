"""The data cache folder and checked downloads.

* ``cache_dir()``: ``$BLACKPROP_DATA``, default ``~/.cache/blackprop``.
* ``download(url, path, sha256)``: streams ``url`` into a temporary file beside ``path`` with a
  progress bar, checks its sha256 and only then gives it its final name (a half-written or wrong
  file never has it). Connections give up after ``$BLACKPROP_DOWNLOAD_TIMEOUT`` seconds (default
  10) without an answer, so an offline machine hears why within seconds.
* ``DataUnavailable``: the one error a data loader raises when data cannot be had; its message
  says what failed (the URL's or the command's own message) and how to provide the data instead.

Example:
    >>> cache_dir().name in ("blackprop", os.environ.get("BLACKPROP_DATA", "").rstrip("/").split("/")[-1])
    True
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["DataUnavailable", "cache_dir", "download", "download_timeout", "sha256_of", "verified"]


class DataUnavailable(RuntimeError):
    """Data cannot be found, downloaded or verified; the message says why and what to do instead."""


def cache_dir() -> Path:
    """``$BLACKPROP_DATA`` or ``~/.cache/blackprop``."""
    return Path(os.environ.get("BLACKPROP_DATA") or Path.home() / ".cache" / "blackprop")


def download_timeout() -> float:
    """Seconds a connection may stay silent: ``$BLACKPROP_DOWNLOAD_TIMEOUT`` (default 10)."""
    value = os.environ.get("BLACKPROP_DOWNLOAD_TIMEOUT", "10")
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise DataUnavailable(f"BLACKPROP_DOWNLOAD_TIMEOUT={value!r}: expected a number of seconds > 0, e.g. 10")
    return seconds


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verified(path: Path, digest: str) -> bool:
    """``path`` exists and has sha256 ``digest`` (a ``.sha256`` stamp newer than the file saves re-hashing)."""
    stamp = path.with_name(path.name + ".sha256")
    if not path.exists():
        return False
    if stamp.exists() and stamp.read_text().strip() == digest and stamp.stat().st_mtime >= path.stat().st_mtime:
        return True
    if sha256_of(path) != digest:
        return False
    try:
        stamp.write_text(digest)
    except OSError:  # a read-only cache of verified files is fine: the stamp only saves re-hashing
        pass
    return True


def download(url: str, path: Path, sha256: str | None, what: str) -> Path:
    """Fetch ``url`` to ``path``, refusing it unless its sha256 is ``sha256`` (None: the caller checks
    the content itself); raises ``DataUnavailable`` naming the URL and the reason."""
    from tqdm import tqdm

    timeout = download_timeout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as error:
        raise DataUnavailable(
            f"{what}: cannot write into {path.parent} ({type(error).__name__}: {error}); set BLACKPROP_DATA to a "
            "writable folder"
        ) from None
    temporary = Path(temporary_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": "blackprop"})
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) URLs only)
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"{what} {Path(url).name}", leave=False,
                          disable=None) as bar:
                    for block in iter(lambda: response.read(1 << 16), b""):
                        out.write(block)
                        h.update(block)
                        bar.update(len(block))
        actual = h.hexdigest()
        if sha256 is not None and actual != sha256:
            raise DataUnavailable(
                f"{what}: {url} has sha256 {actual}, expected {sha256}; the file was refused (not kept). The mirror "
                "may serve another version: use another mirror, or provide the file yourself"
            )
        os.replace(temporary, path)
        if sha256 is not None:
            path.with_name(path.name + ".sha256").write_text(sha256)
        return path
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise DataUnavailable(f"{what}: cannot download {url} ({_reason(error)})") from None
    finally:
        temporary.unlink(missing_ok=True)


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        if not isinstance(error.reason, BaseException):
            return str(error.reason)
        error = error.reason
    if isinstance(error, TimeoutError):
        return f"no answer within {download_timeout():g} s (BLACKPROP_DOWNLOAD_TIMEOUT); offline?"
    return f"{type(error).__name__}: {error}"
