#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""TCP load for bench/net.sh (stdlib only; every loop bounded in time and count).

  net_load.py sink ADDR PORT[,PORT...] SECS INTERVAL_S
      Listens on each port (any number of connections per port) and prints "ready" once
      listening. From the first data byte on, prints every INTERVAL_S one line
      "t_ms bytes_port0 bytes_port1 ..." (bytes received in that interval), for SECS seconds.

  net_load.py send ADDR PORT FLOWS SECS GOFILE READYFILE
      Opens FLOWS connections to ADDR:PORT, writes READYFILE, waits (at most 60 s) for GOFILE
      to exist, then keeps every connection's send buffer full for SECS seconds.
"""
import os
import selectors
import socket
import sys
import time

CHUNK = 64 * 1024
MAX_LOOPS = 50_000_000  # a hard bound on any event loop, far above what SECS allows


def sink(addr, ports, secs, interval):
    sel = selectors.DefaultSelector()
    port_of = {}
    for i, p in enumerate(ports):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((addr, p))
        ls.listen(64)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ, ("listen", i))
    print("ready", flush=True)
    buf = bytearray(256 * 1024)
    view = memoryview(buf)
    counts = [0] * len(ports)
    start = None
    next_tick = None
    idle_deadline = time.monotonic() + 120  # give up if no data ever comes
    loops = 0
    while loops < MAX_LOOPS:
        loops += 1
        now = time.monotonic()
        if start is None and now > idle_deadline:
            print("sink: no data within 120 s", file=sys.stderr)
            return 1
        if start is not None and now >= next_tick:
            t_ms = round((next_tick - start) * 1000)
            print(t_ms, *counts, flush=True)
            counts = [0] * len(ports)
            next_tick += interval
            if next_tick - start > secs + 1e-6:
                return 0
            continue
        timeout = 0.05 if start is None else max(0.0, next_tick - now)
        for key, _ in sel.select(timeout):
            kind, i = key.data
            if kind == "listen":
                try:
                    c, _ = key.fileobj.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, ("conn", i))
                port_of[c] = i
                continue
            try:
                n = key.fileobj.recv_into(view)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                n = 0
            if n == 0:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                continue
            if start is None:
                start = time.monotonic()
                next_tick = start + interval
            counts[i] += n
    return 1


def send(addr, port, flows, secs, gofile, readyfile):
    socks = []
    for _ in range(flows):
        s = socket.create_connection((addr, port), timeout=30)
        s.setblocking(False)
        socks.append(s)
    with open(readyfile, "w") as f:
        f.write("%d\n" % os.getpid())
    give_up = time.monotonic() + 60
    while not os.path.exists(gofile):
        if time.monotonic() > give_up:
            print("send: no go within 60 s", file=sys.stderr)
            return 1
        time.sleep(0.01)
    payload = memoryview(bytes(CHUNK))
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_WRITE)
    deadline = time.monotonic() + secs
    loops = 0
    while loops < MAX_LOOPS and socks:
        loops += 1
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for key, _ in sel.select(min(left, 0.2)):
            s = key.fileobj
            try:
                s.send(payload)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:  # the sink went away: this flow is done
                sel.unregister(s)
                s.close()
                socks.remove(s)
    for s in socks:  # reset, do not let the kernel keep sending what is queued
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    return 0


def main(argv):
    if len(argv) == 6 and argv[1] == "sink":
        ports = [int(p) for p in argv[3].split(",")]
        return sink(argv[2], ports, float(argv[4]), float(argv[5]))
    if len(argv) == 8 and argv[1] == "send":
        return send(argv[2], int(argv[3]), int(argv[4]), float(argv[5]), argv[6], argv[7])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
