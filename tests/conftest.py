from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from arbench.data.format import save_dataset

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """`../shared/data` beside the checkout; tests that need it skip, saying why, without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@dataclass
class Route:
    body: bytes
    content_type: str = "application/octet-stream"
    status: int = 200
    drop_after: int | None = None  # send this many bytes, then close the connection
    fail_first: int = 0  # answer 503 to this many requests before serving
    trickle: float | None = None  # send one byte every this many seconds
    hits: int = 0


@dataclass
class LocalServer:
    """A real HTTP server on 127.0.0.1 serving routes the test defines."""

    routes: dict[str, Route] = field(default_factory=dict)
    port: int = 0

    def serve(self, path: str, body: bytes, **options) -> str:
        self.routes[path] = Route(body, **options)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def http_server():
    server_state = LocalServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server dispatches to)
            route = server_state.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            route.hits += 1
            if route.hits <= route.fail_first:
                self.send_error(503)
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            if route.trickle is not None:
                for byte in route.body:
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:  # the client gave up
                        return
                    time.sleep(route.trickle)
            elif route.drop_after is None:
                self.wfile.write(route.body)
            else:
                self.wfile.write(route.body[: route.drop_after])
                self.wfile.flush()
                self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server_state
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: what a machine without network sees."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


@pytest.fixture
def tiny_data(tmp_path):
    """A small binary dataset (4x4 images near four prototypes) saved in the common format."""
    rng = np.random.default_rng(0)
    prototypes = rng.random((4, 1, 4, 4)) < 0.5

    def make(n):
        flips = rng.random((n, 1, 4, 4)) < 0.1
        return (prototypes[rng.integers(0, 4, n)] ^ flips).astype(np.uint8)

    splits = {"train": make(300), "valid": make(60), "test": make(60)}
    return save_dataset(tmp_path / "tiny.npz", splits, 2, {"source": "test"})


@pytest.fixture
def small_filesystem(tmp_path):
    """A 1 MiB filesystem (tmpfs) that runs out of space for real, with errno ENOSPC; skips,
    saying why, where this process may not mount one."""
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"could not mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
