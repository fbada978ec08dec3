#!/usr/bin/env python3
"""A private network for the embedded SeaweedFS, and the one door out of it (Linux).

SeaweedFS's master, volume, filer and admin HTTP servers have routes that no setting closes (the
volume server's ``/status`` and the master's ``/``, ``/cluster/status`` are registered unguarded in
weed/server/volume_server.go and weed/command/master.go, and its IP white list cannot tell one local
process from another: every loopback client is 127.0.0.1). So ``weed mini`` runs in a network namespace
of its own (an unprivileged user namespace mapping only the caller's uid, plus a new network namespace
with just ``lo``): none of its TCP ports exists outside it. The S3 gateway alone is reachable, through
its unix socket in the 0700 data folder, and ``proxy`` forwards a loopback TCP port to that socket
byte for byte (SigV4 signatures, Host header and bodies are untouched; splice(2), no copy through Python).

    python -m pipelines.s3_netns check                    # exit 0 when a private network can be made here
    python -m pipelines.s3_netns exec -- CMD ARGS...      # run CMD inside a new private network
    python -m pipelines.s3_netns proxy HOST PORT SOCKET [PORT...]  # forward HOST:PORT (TCP) to SOCKET (unix)
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import socket
import struct
import sys
import threading

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


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Move bytes src → dst until src closes, in the kernel (splice(2) through a pipe: no copy into
    Python), then half-close dst so the other side sees the end of the stream."""
    r, w = os.pipe()
    try:
        while True:
            n = os.splice(src.fileno(), w, 1 << 20)
            if n == 0:
                break
            while n:
                n -= os.splice(r, dst.fileno(), n)
    except OSError:
        pass
    finally:
        os.close(r)
        os.close(w)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _connection(client: socket.socket, path: str) -> None:
    with client, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
        try:
            upstream.connect(path)
        except OSError:
            return
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()


def serve(host: str, port: int, path: str, reserve: list[int] = ()) -> None:
    """Forward each TCP connection on host:port to the unix socket ``path``, one thread per direction.
    ``reserve``: ports bound here but never listened on (connections are refused), so that no other
    server on this machine takes the numbers the private network uses: SeaweedFS names its gRPC unix
    sockets /tmp/seaweedfs-<component>-grpc-<port>.sock, and two servers with one number would mix."""
    held = []
    for p in reserve:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as _free() checks: TIME_WAIT is no conflict
        s.bind((host, p))
        held.append(s)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((host, port))
        srv.listen(256)
        while True:
            client, _ = srv.accept()
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=_connection, args=(client, path), daemon=True).start()


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
    elif argv[:1] == ["proxy"] and len(argv) >= 4:
        with contextlib.suppress(KeyboardInterrupt):
            serve(argv[1], int(argv[2]), argv[3], [int(p) for p in argv[4:]])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
