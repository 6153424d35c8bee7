#!/usr/bin/env python3
"""Echo client on the Python `websockets` package (tested with 10.4), a
reference peer for the conformance runner's client role:

  py_client_echo.py URL

Like `wscat --echo`: sends every message back unchanged (same opcode),
answers pings, accepts messages up to 16 MiB, no compression, no keepalive
pings, and exits when the connection is closed: status 0 after a close
handshake with 1000 (or no code), 1 if the connection never opened, 3
otherwise.
"""
import asyncio
import sys

import websockets


async def main(url):
    try:
        ws = await websockets.connect(url, max_size=16 * 1024 * 1024,
                                      ping_interval=None, compression=None,
                                      open_timeout=10)
    except Exception as e:  # noqa: BLE001 - any failure to open
        print("py_client_echo: %s" % e, file=sys.stderr)
        return 1
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    return 0 if ws.close_code in (1000, 1005) else 3


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
