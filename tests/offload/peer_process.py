"""A plain aioquic endpoint in its own process, for tests that pause or kill the peer.

    python peer_process.py server CERT KEY IDLE_TIMEOUT      # prints "READY <port>"
    python peer_process.py client HOST PORT IDLE_TIMEOUT     # prints "READY <local port>"

Either side echoes streams; the client makes one request, then idles.  Both run until
killed, and stop by themselves after a minute at most.
"""

from __future__ import annotations

import asyncio
import ssl
import sys

from aioquic.asyncio import connect, serve
from aioquic.quic.configuration import QuicConfiguration

ALPN = ["offload-test"]
LIFETIME = 60.0


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.read())
    writer.write_eof()


def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    asyncio.ensure_future(echo(reader, writer))


async def run_server(cert: str, key: str, idle: float) -> None:
    config = QuicConfiguration(is_client=False, alpn_protocols=ALPN, idle_timeout=idle)
    config.load_cert_chain(cert, key)
    server = await serve("127.0.0.1", 0, configuration=config, stream_handler=handler)
    print("READY", server._transport.get_extra_info("sockname")[1], flush=True)
    await asyncio.sleep(LIFETIME)


async def run_client(host: str, port: int, idle: float) -> None:
    config = QuicConfiguration(is_client=True, alpn_protocols=ALPN, idle_timeout=idle,
                               verify_mode=ssl.CERT_NONE)
    async with connect(host, port, configuration=config, stream_handler=handler) as client:
        reader, writer = await client.create_stream()
        writer.write(b"hello")
        writer.write_eof()
        await reader.read()
        print("READY", client._transport.get_extra_info("sockname")[1], flush=True)
        await asyncio.sleep(LIFETIME)


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "server":
        asyncio.run(run_server(sys.argv[2], sys.argv[3], float(sys.argv[4])))
    else:
        asyncio.run(run_client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
