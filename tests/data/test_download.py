import hashlib

import pytest

from arbench.data.download import DownloadError, VerificationError, fetch

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, so a mid-file drop really cuts the stream
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_download_is_verified_and_renamed_into_place(http_server, tmp_path):
    url = http_server.serve("/data.bin", PAYLOAD)
    dest = fetch(url, tmp_path / "data.bin", sha256=SHA256)
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["data.bin"]


def test_verified_file_is_not_downloaded_again(http_server, tmp_path):
    url = http_server.serve("/data.bin", PAYLOAD)
    fetch(url, tmp_path / "data.bin", sha256=SHA256)
    fetch(url, tmp_path / "data.bin", sha256=SHA256)
    assert http_server.routes["/data.bin"].hits == 1


def test_checksum_mismatch_is_refused_and_leaves_nothing(http_server, tmp_path):
    url = http_server.serve("/data.bin", PAYLOAD[:-1] + b"x")
    with pytest.raises(VerificationError, match="sha256"):
        fetch(url, tmp_path / "data.bin", sha256=SHA256, backoff=0)
    assert leftovers(tmp_path) == []


def test_html_error_page_is_refused(http_server, tmp_path):
    page = b"<!DOCTYPE html>\n<html><body>Quota exceeded</body></html>"
    url = http_server.serve("/data.bin", page, content_type="text/html")
    with pytest.raises(VerificationError, match="HTML page"):
        fetch(url, tmp_path / "data.bin", backoff=0)
    assert leftovers(tmp_path) == []


def test_connection_dropped_mid_file_is_retried_then_refused(http_server, tmp_path):
    url = http_server.serve("/data.bin", PAYLOAD, drop_after=len(PAYLOAD) // 3)
    with pytest.raises(DownloadError, match="IncompleteRead"):
        fetch(url, tmp_path / "data.bin", retries=2, backoff=0)
    assert http_server.routes["/data.bin"].hits == 2
    assert leftovers(tmp_path) == []


def test_transient_server_errors_are_retried(http_server, tmp_path):
    url = http_server.serve("/data.bin", PAYLOAD, fail_first=2)
    fetch(url, tmp_path / "data.bin", sha256=SHA256, retries=3, backoff=0)
    assert http_server.routes["/data.bin"].hits == 3


def test_not_found_is_not_retried(http_server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        fetch(http_server.url("/missing.bin"), tmp_path / "x.bin", retries=3, backoff=0)


def test_no_network_names_url_and_where_to_place_the_file(closed_port_url, tmp_path):
    dest = tmp_path / "sub" / "file.bin"
    with pytest.raises(DownloadError) as caught:
        fetch(closed_port_url, dest, retries=2, backoff=0)
    message = str(caught.value)
    assert closed_port_url in message
    assert str(dest.resolve()) in message
    assert leftovers(dest.parent) == []


def test_file_placed_by_hand_is_used_after_verification(closed_port_url, tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(PAYLOAD)
    assert fetch(closed_port_url, dest, sha256=SHA256) == dest


def test_corrupt_file_placed_by_hand_is_refused(closed_port_url, tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"not it")
    with pytest.raises(VerificationError, match="Delete"):
        fetch(closed_port_url, dest, sha256=SHA256)


def test_validate_hook_refuses_bad_content(http_server, tmp_path):
    url = http_server.serve("/data.bin", PAYLOAD)

    def reject(path):
        raise VerificationError(f"{path}: bad content")

    with pytest.raises(VerificationError, match="bad content"):
        fetch(url, tmp_path / "data.bin", validate=reject)
    assert leftovers(tmp_path) == []
