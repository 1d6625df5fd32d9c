#!/usr/bin/env python3
"""Timestamps TCP segments on the loopback interface (Python 3 stdlib; needs root / CAP_NET_RAW).

Used by sse_streams.py to measure what a proxy adds to a stream's first byte without the
upstream's own timer jitter: the kernel stamps every segment as its sender hands it to `lo`, so
  (proxy -> client segment with the first `data:`) - (upstream -> proxy segment with the first `data:`)
is the proxy's own delay for that stream, to the microsecond: from the upstream's send to the
proxy's, which includes waking the proxy and excludes waking the client.

The capture must not compete for the CPUs with what it measures: on a 2-CPU machine a process
woken for every segment is often runnable at the very moment the proxy is woken by the same
segment. So this process does not read while a stream is in flight. The kernel stamps each
segment as it queues it on the capture socket (a large receive buffer holds them), and the
segments are read only when the client asks, between streams, by a line on stdin:
    "drain"  read everything queued so far; answer "drained" on stderr
    EOF      drain, then write the rows and the kernel's counts, and exit
Rows go to stdout at the end, one per TCP segment with payload to or from one of the PORTs:
    <kernel timestamp ns> <src port> <dst port> <P: payload starts with "POST"> <D: has "data:">
and a last line "# packets <n> drops <n>" (the kernel's PACKET_STATISTICS: frames seen on lo, both
copies of every segment and other traffic included, and those it could not queue because the
buffer was full, which are missing from the rows).

Usage: lo_capture.py PORT [PORT ...]
Prints "ready" on stderr once capturing. Exit 3 when the capture socket cannot be opened
(not root, no AF_PACKET).
"""
import socket
import struct
import sys

SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
ETH_P_ALL = 0x0003   # outgoing copies reach only the taps of all protocols
ETH_P_IP = 0x0800
QUEUE_BYTES = 256 << 20       # kernel memory per queued segment is ~1-2 KiB on lo


def open_capture():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind(("lo", 0))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, QUEUE_BYTES)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, QUEUE_BYTES)
    s.setblocking(False)
    return s


def row_of(data, anc, addr, ports):
    """The row for one captured frame, or None when it is not a TCP segment with payload on PORTs."""
    # Every segment on lo is seen twice: as it leaves its sender (stamped inside the sender's
    # send call, before anything receives it) and as it arrives. Measured on the benchmark's
    # machine, the arriving copy's stamp came after the receiving socket's processing of it,
    # which wakes the receiving process (on that virtual machine, once in a while, milliseconds
    # later): that time is the receiver's, not the sender's.
    if addr[2] != PACKET_OUTGOING:
        return None
    if len(data) < 34 or struct.unpack("!H", data[12:14])[0] != ETH_P_IP:
        return None
    ip = data[14:]
    if len(ip) < 20 or ip[9] != 6:
        return None
    ihl = (ip[0] & 0x0F) * 4
    tot = struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:]
    if len(tcp) < 20:
        return None
    sport, dport = struct.unpack("!HH", tcp[:4])
    if sport not in ports and dport not in ports:
        return None
    off = (tcp[12] >> 4) * 4
    payload = tcp[off:tot - ihl]
    if not payload:
        return None
    for level, kind, val in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack("qq", val[:16])
            ts = sec * 1_000_000_000 + nsec
            return f"{ts} {sport} {dport} {1 if payload.startswith(b'POST') else 0} {1 if b'data:' in payload else 0}"
    return None


def drain(s, ports, rows):
    while True:
        try:
            data, anc, _flags, addr = s.recvmsg(4096, 64)
        except (BlockingIOError, InterruptedError):
            return
        row = row_of(data, anc, addr, ports)
        if row is not None:
            rows.append(row)


def main():
    ports = {int(p) for p in sys.argv[1:]}
    try:
        s = open_capture()
    except (OSError, AttributeError) as e:
        print(f"lo_capture: cannot capture on lo: {e}", file=sys.stderr)
        return 3
    rows = []
    print("ready", file=sys.stderr, flush=True)
    for line in iter(sys.stdin.readline, ""):
        if line.strip() == "drain":
            drain(s, ports, rows)
            print("drained", file=sys.stderr, flush=True)
    drain(s, ports, rows)
    packets, drops = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    sys.stdout.write("\n".join(rows) + ("\n" if rows else ""))
    sys.stdout.write(f"# packets {packets} drops {drops}\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
