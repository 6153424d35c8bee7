#!/usr/bin/env python3
"""Echo server on the Python `websockets` package (tested with 10.4), a
reference peer for the conformance runner:

  py_echo.py [--port N]       (0 or nothing: a free port)

Same contract as examples/echo_server: echoes text as text and binary as
binary, answers pings, messages up to 16 MiB, no keepalive pings, no
compression; prints "listening on 127.0.0.1:PORT" once ready; SIGTERM or
SIGINT stops it.
"""
import argparse
import asyncio
import signal
import sys

import websockets


async def echo(ws, path=None):
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(
            sig, lambda: stop.done() or stop.set_result(None))
    async with websockets.serve(echo, "127.0.0.1", args.port,
                                max_size=16 * 1024 * 1024,
                                ping_interval=None, compression=None) as srv:
        port = srv.sockets[0].getsockname()[1]
        print("listening on 127.0.0.1:%d (websockets %s)" % (
            port, websockets.__version__), flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
