import hashlib
import io
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from arbench.data.anime import UnsafeArchiveError, anime_faces, extract_archive, read_image_folder
from arbench.data.download import VerificationError

REAL_ARCHIVE_SHA256 = "87a424fb90197ce17439c9ced05f97de0a57edaf52d52636d0de4b9b6d343253"


def png_bytes(mode, size, colour):
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes(size=(40, 30), colour=(200, 10, 10)):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def mixed_folder(folder):
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg_bytes((40, 30)))
    (folder / "b.png").write_bytes(png_bytes("L", (12, 50), 90))
    (folder / "c.png").write_bytes(png_bytes("RGBA", (64, 64), (0, 255, 0, 128)))
    palette = Image.new("P", (20, 20), 3)
    palette.putpalette([0, 0, 0, 255, 255, 255, 10, 20, 30, 250, 0, 250] + [0] * 756)
    palette.save(folder / "d.gif")
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(jpeg_bytes()[:40])
    return folder


def test_mixed_sizes_and_modes_decode_and_bad_files_are_counted(tmp_path):
    images, report = read_image_folder(mixed_folder(tmp_path / "faces"), (8, 8))
    assert images.shape == (4, 3, 8, 8) and images.dtype == np.uint8
    assert report["decoded"] == 4 and report["skipped"] == 2
    assert sorted(report["skipped_examples"]) == ["broken.jpg", "notes.txt"]
    assert set(report["modes"]) == {"RGB", "L", "RGBA", "P"}
    gray = images[1]  # b.png: a gray image becomes three equal channels
    assert (
        (gray[0] == gray[1]).all()
        and (gray[1] == gray[2]).all()
        and abs(int(gray[0, 4, 4]) - 90) <= 1
    )
    assert tuple(images[3][:, 4, 4]) == (250, 0, 250)  # palette index 3


def test_folder_with_no_decodable_images_is_an_error(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    (folder / "a.jpg").write_text("html?")
    with pytest.raises(VerificationError, match="no decodable images .1 files, 1 skipped"):
        read_image_folder(folder, (8, 8))


def zip_with(tmp_path, entries, name="a.zip"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    return path


@pytest.mark.parametrize("entry", ["../evil.jpg", "faces/../../evil.jpg", "/abs/evil.jpg"])
def test_zip_entries_escaping_the_folder_are_refused_before_writing(tmp_path, entry):
    archive = zip_with(tmp_path, {"faces/ok.jpg": jpeg_bytes(), entry: jpeg_bytes()})
    (tmp_path / "out").mkdir()
    with pytest.raises(UnsafeArchiveError, match="refused"):
        extract_archive(archive, tmp_path / "out" / "x")
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "evil.jpg").exists()


def test_tar_link_is_refused(tmp_path):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        link = tarfile.TarInfo("faces/link.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(UnsafeArchiveError, match="is a link"):
        extract_archive(archive, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_empty_archive_is_refused(tmp_path):
    archive = zip_with(tmp_path, {"faces/": b""})
    with pytest.raises(VerificationError, match="holds no files"):
        extract_archive(archive, tmp_path / "x")


def test_tar_archive_from_local_path_builds_a_dataset(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    for i in range(10):
        (folder / f"{i}.jpg").write_bytes(jpeg_bytes(colour=(25 * i, 0, 0)))
    archive = tmp_path / "faces.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="faces")
    spec = {"path": str(archive), "size": [8, 8], "levels": 16, "seed": 1}
    splits, levels, meta = anime_faces(spec, tmp_path / "res")
    assert levels == 16 and sum(len(s) for s in splits.values()) == 10
    assert meta["images"]["skipped"] == 0


def test_archive_downloaded_with_checksum(http_server, tmp_path):
    data = zip_with(tmp_path, {f"faces/{i}.jpg": jpeg_bytes() for i in range(6)}).read_bytes()
    url = http_server.serve("/anime.zip", data)
    spec = {"url": url, "sha256": hashlib.sha256(data).hexdigest(), "size": [4, 4]}
    splits, _, meta = anime_faces(spec, tmp_path / "res")
    assert meta["files"]["archive"]["url"] == url
    with pytest.raises(VerificationError, match="sha256"):
        anime_faces({**spec, "sha256": "0" * 64}, tmp_path / "res2")


def test_real_archive_becomes_a_dataset(shared_data, tmp_path):
    spec = {
        "path": str(shared_data / "anime_faces/anime_faces_96px_2000.zip"),
        "sha256": REAL_ARCHIVE_SHA256,
        "size": [32, 32],
        "levels": 256,
        "seed": 0,
    }
    splits, levels, meta = anime_faces(spec, tmp_path)
    assert {k: v.shape for k, v in splits.items()} == {
        "train": (1600, 3, 32, 32),
        "valid": (200, 3, 32, 32),
        "test": (200, 3, 32, 32),
    }
    assert meta["images"] == {**meta["images"], "decoded": 2000, "skipped": 0}
    assert 60 < splits["train"].mean() < 200
