#!/usr/bin/env python3
"""A private network for the embedded SeaweedFS, and the one door out of it (Linux).

SeaweedFS's master, volume, filer and admin HTTP servers have routes that no setting closes (the
volume server's ``/status`` and the master's ``/``, ``/cluster/status`` are registered unguarded in
weed/server/volume_server.go and weed/command/master.go, and its IP white list cannot tell one local
process from another: every loopback client is 127.0.0.1). So ``weed mini`` runs in a network namespace
of its own (an unprivileged user namespace mapping only the caller's uid, plus a new network namespace
with just ``lo``): none of its TCP ports exists outside it. The S3 gateway alone is reachable, through
its unix socket in the 0700 data folder, and ``proxy`` forwards a loopback TCP port to that socket
byte for byte (SigV4 signatures, Host header and bodies are untouched).

    python scripts/s3_netns.py check                    # exit 0 when a private network can be made here
    python scripts/s3_netns.py exec -- CMD ARGS...      # run CMD inside a new private network
    python scripts/s3_netns.py proxy HOST PORT SOCKET   # forward HOST:PORT (TCP) to SOCKET (unix)
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import os
import socket
import struct
import sys

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
SIOCSIFFLAGS, IFF_UP, IFF_LOOPBACK, IFF_RUNNING = 0x8914, 0x1, 0x8, 0x40


def enter_private_network() -> None:
    """unshare(2) a user + network namespace for this process and bring its loopback up."""
    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"unshare(CLONE_NEWUSER|CLONE_NEWNET): {os.strerror(e)}")
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:  # the same uid inside: files keep their owner
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", IFF_UP | IFF_LOOPBACK | IFF_RUNNING))


async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while data := await r.read(1 << 16):
            w.write(data)
            await w.drain()
        if w.can_write_eof():
            w.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        if r.at_eof() or w.is_closing():
            w.close()


async def _serve(host: str, port: int, path: str) -> None:
    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_unix_connection(path)
        except OSError:
            cw.close()
            return
        await asyncio.gather(_pipe(cr, uw), _pipe(ur, cw))
        cw.close()
        uw.close()

    server = await asyncio.start_server(handle, host, port, reuse_address=True, backlog=256)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> None:
    if argv[:1] == ["check"]:
        try:
            enter_private_network()
        except OSError as e:
            print(e, file=sys.stderr)
            raise SystemExit(1) from None
    elif argv[:2] == ["exec", "--"] and len(argv) > 2:
        enter_private_network()
        os.execv(argv[2], argv[2:])
    elif argv[:1] == ["proxy"] and len(argv) == 4:
        try:
            asyncio.run(_serve(argv[1], int(argv[2]), argv[3]))
        except KeyboardInterrupt:
            pass
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
