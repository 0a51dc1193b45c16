"""Start `volley serve` on a free port for the interop tests."""

import os
import re
import subprocess
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def volley_bin() -> str:
    return os.environ.get("VOLLEY_BIN", str(ROOT / "target" / "release" / "volley"))


def start(*extra):
    proc = subprocess.Popen(
        [volley_bin(), "serve", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = proc.stdout.readline()
    m = re.search(r"http://([^/]+)/", line)
    assert m, f"no listening line from volley serve: {line!r}"
    return proc, f"ws://{m.group(1)}"


@pytest.fixture(scope="session")
def server_url():
    proc, url = start()
    yield url
    proc.terminate()
    assert proc.wait(timeout=10) is not None


@pytest.fixture(scope="session", params=["shared", "dedicated"])
def deflate_url(request):
    """`volley serve --deflate=MODE`: every outgoing message compressed."""
    proc, url = start(f"--deflate={request.param}")
    yield url
    proc.terminate()
    assert proc.wait(timeout=10) is not None
