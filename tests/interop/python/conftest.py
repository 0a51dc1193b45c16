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
    m = re.search(r"(https?)://([^/]+)/", line)
    assert m, f"no listening line from volley serve: {line!r}"
    scheme = "wss" if m.group(1) == "https" else "ws"
    return proc, f"{scheme}://{m.group(2)}"


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


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory):
    """`volley serve --tls-cert --tls-key` with a self-signed certificate made now."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    proc, url = start("--host", "localhost", "--tls-cert", str(cert), "--tls-key", str(key))
    yield url, cert
    proc.terminate()
    assert proc.wait(timeout=10) is not None
