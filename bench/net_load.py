#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""TCP load for bench/net.sh (stdlib only; every loop bounded in time and count).

  net_load.py sink ADDR PORT[,PORT...] SECS INTERVAL_S
      Listens on each port (any number of connections per port) and prints "ready" once
      listening. From the first data byte on, prints about every INTERVAL_S one line
      "t_ms bytes_port0 bytes_port1 ...": t_ms since the first byte, and the bytes TCP received
      on each port since the previous line, from the kernel's own per-socket counter
      (TCP_INFO tcpi_bytes_received, counted in softirq as segments arrive), so a sink that
      is scheduled late still attributes bytes to the right interval. Runs SECS seconds.

  net_load.py send ADDR PORT FLOWS SECS GOFILE READYFILE
      Opens FLOWS connections to ADDR:PORT, writes READYFILE, waits (at most 60 s) for GOFILE
      to exist, then keeps every connection's send buffer full for SECS seconds.
"""
import os
import selectors
import socket
import struct
import sys
import time

CHUNK = 64 * 1024
MAX_LOOPS = 50_000_000  # a hard bound on any event loop, far above what SECS allows


TCP_INFO_LEN = 232
BYTES_RECEIVED = struct.Struct("=Q")  # struct tcp_info.tcpi_bytes_received, at offset 128
BYTES_RECEIVED_OFF = 128
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
RCVBUF = 2 * 1024 * 1024  # so a sink scheduled late under TCG does not close the window


def bytes_received(sock):
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_LEN)
    if len(info) < BYTES_RECEIVED_OFF + 8:
        return 0
    return BYTES_RECEIVED.unpack_from(info, BYTES_RECEIVED_OFF)[0]


def sink(addr, ports, secs, interval):
    sel = selectors.DefaultSelector()
    for i, p in enumerate(ports):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:  # before listen(), so accepted sockets inherit it (and their window scale)
            ls.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except OSError:
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        ls.bind((addr, p))
        ls.listen(64)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ, ("listen", i))
    print("ready", flush=True)
    buf = bytearray(256 * 1024)
    view = memoryview(buf)
    conns = {}  # socket -> [port index, bytes counted so far]
    start = None
    next_tick = None
    idle_deadline = time.monotonic() + 120  # give up if no data ever comes
    loops = 0

    pending = [0] * len(ports)  # bytes of connections that closed since the last line

    def collect():
        counts = pending[:]
        pending[:] = [0] * len(ports)
        for c, st in conns.items():
            try:
                now_b = bytes_received(c)
            except OSError:
                continue
            counts[st[0]] += now_b - st[1]
            st[1] = now_b
        return counts

    while loops < MAX_LOOPS:
        loops += 1
        now = time.monotonic()
        if start is None and now > idle_deadline:
            print("sink: no data within 120 s", file=sys.stderr)
            return 1
        if start is not None and now >= next_tick:
            counts = collect()
            print(round((time.monotonic() - start) * 1000), *counts, flush=True)
            next_tick += interval
            if next_tick < now:  # late by more than an interval: do not bunch samples up
                next_tick = now + interval
            if now - start >= secs - 1e-3:
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
                conns[c] = [i, 0]
                continue
            try:
                n = key.fileobj.recv_into(view)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                n = 0
            if n == 0:  # count what it got, then forget it
                c = key.fileobj
                sel.unregister(c)
                st = conns.pop(c)
                try:
                    pending[st[0]] += bytes_received(c) - st[1]
                except OSError:
                    pass
                c.close()
                continue
            if start is None:
                start = time.monotonic()
                next_tick = start + interval
                for c, st in conns.items():  # the clock starts now: bytes so far are not counted
                    st[1] = bytes_received(c)
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
