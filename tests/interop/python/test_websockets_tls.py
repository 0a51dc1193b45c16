"""`wss://` interop: Python `websockets` over TLS against `volley serve --tls-cert --tls-key`."""

import ssl

import pytest
import websockets

from test_websockets_client import payload, run


@pytest.mark.parametrize("size", [0, 125, 65536, 1024 * 1024])
def test_wss_echo(tls_server, size):
    url, cert = tls_server
    assert url.startswith("wss://")
    ctx = ssl.create_default_context(cafile=str(cert))

    async def go():
        async with websockets.connect(url + "/echo", ssl=ctx, max_size=None) as ws:
            for binary in (False, True):
                msg = payload(size, binary)
                await ws.send(msg)
                assert await ws.recv() == msg
            await ws.close(4000, "tls done")
            assert ws.protocol.close_rcvd.code == 4000

    run(go())


def test_wss_rejects_an_untrusted_client_setup(tls_server):
    url, _ = tls_server

    async def go():
        with pytest.raises(ssl.SSLCertVerificationError):
            async with websockets.connect(url + "/echo", ssl=ssl.create_default_context()):
                pass

    run(go())
