#!/usr/bin/env python3
"""Timestamps TCP segments on the loopback interface (Python 3 stdlib; needs root / CAP_NET_RAW).

Used by sse_streams.py to measure what a proxy adds to a stream's first byte without the
upstream's own timer jitter: the kernel stamps every segment as it crosses `lo`, so
  (proxy -> client segment with the first `data:`) - (upstream -> proxy segment with the first `data:`)
is the proxy's own delay for that stream, to the microsecond.

Usage: lo_capture.py PORT [PORT ...]
Prints "ready" on stderr once capturing, then on SIGTERM/SIGINT writes one line per TCP segment
with payload to or from one of the PORTs, on stdout:
    <kernel timestamp ns> <src port> <dst port> <P: payload starts with "POST"> <D: has "data:">
Exit 3 when the capture socket cannot be opened (not root, no AF_PACKET).
"""
import signal
import socket
import struct
import sys

SO_TIMESTAMPNS = 35
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4


def main():
    ports = {int(p) for p in sys.argv[1:]}
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
        s.bind(("lo", 0))
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except (OSError, AttributeError) as e:
        print(f"lo_capture: cannot capture on lo: {e}", file=sys.stderr)
        return 3
    stop = {"now": False}

    def on_signal(*_):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    s.settimeout(0.2)
    rows = []
    print("ready", file=sys.stderr, flush=True)
    while not stop["now"]:
        try:
            data, anc, _flags, addr = s.recvmsg(4096, 64)
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        if addr[2] == PACKET_OUTGOING:   # loopback segments are seen going out and coming in
            continue
        ip = data[14:]
        if len(ip) < 20 or ip[9] != 6:
            continue
        ihl = (ip[0] & 0x0F) * 4
        tot = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:]
        if len(tcp) < 20:
            continue
        sport, dport = struct.unpack("!HH", tcp[:4])
        if sport not in ports and dport not in ports:
            continue
        off = (tcp[12] >> 4) * 4
        payload = tcp[off:tot - ihl]
        if not payload:
            continue
        ts = None
        for level, kind, val in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", val[:16])
                ts = sec * 1_000_000_000 + nsec
        if ts is None:
            continue
        rows.append(f"{ts} {sport} {dport} {1 if payload.startswith(b'POST') else 0} {1 if b'data:' in payload else 0}")
    sys.stdout.write("\n".join(rows) + ("\n" if rows else ""))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
