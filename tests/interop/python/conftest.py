"""Start `volley serve` on a free port for the interop tests."""

import os
import re
import subprocess
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def volley_bin() -> str:
    return os.environ.get("VOLLEY_BIN", str(ROOT / "target" / "release" / "volley"))


@pytest.fixture(scope="session")
def server_url():
    proc = subprocess.Popen(
        [volley_bin(), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = proc.stdout.readline()
    m = re.search(r"http://([^/]+)/", line)
    assert m, f"no listening line from volley serve: {line!r}"
    yield f"ws://{m.group(1)}"
    proc.terminate()
    assert proc.wait(timeout=10) is not None
