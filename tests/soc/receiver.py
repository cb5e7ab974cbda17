"""A syslog collector over TLS for the tests (RFC 5425 octet counting), run as its own process
so that a test can kill it (SIGKILL) mid-stream and start it again on the same port.

Every message read is appended to ``--out`` as one JSON line ``[connection, message]`` and
flushed; ``--delay`` slows reading (the sender then waits on TCP flow control); ``--rcvbuf``
shrinks the socket's receive buffer. Prints ``ready <port>`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import ssl
from typing import TextIO


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """``MSG-LEN SP SYSLOG-MSG``; IncompleteReadError at the end of the stream."""
    digits = await reader.readuntil(b" ")
    if not digits[:-1].isdigit() or len(digits) > 11:
        raise ValueError(f"not an octet count: {digits[:20]!r}")
    return await reader.readexactly(int(digits[:-1]))


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--rcvbuf", type=int, default=0)
    return parser.parse_args()


async def main(args: argparse.Namespace, out: TextIO) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    numbers = itertools.count(1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = f"{os.getpid()}-{next(numbers)}"
        try:
            while True:
                frame = await read_frame(reader)
                out.write(json.dumps([connection, frame.decode("utf-8")]) + "\n")
                out.flush()
                if args.delay:
                    await asyncio.sleep(args.delay)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(16)
    server = await asyncio.start_server(handle, sock=sock, ssl=context)
    print(f"ready {sock.getsockname()[1]}", flush=True)  # noqa: T201
    await server.serve_forever()


if __name__ == "__main__":
    options = arguments()
    with open(options.out, "a", encoding="utf-8") as sink:
        asyncio.run(main(options, sink))
