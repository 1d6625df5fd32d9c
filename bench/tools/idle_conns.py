#!/usr/bin/env python3
"""Opens N keep-alive client connections to one HTTP server and holds them idle (Python 3 stdlib).

Every connection sends one request and reads its whole answer (Content-Length) before it goes
idle, so the server has set up everything a real keep-alive client costs it (the connection, its
parser and buffers, TLS-less session state). At most --batch requests are in flight at once, so
the server's upstream side stays small. When all are open it prints one JSON line on stdout,
{"ready": true, "opened": N, "ok": K, "failed": F, "first_error": "...", "open_s": S}, flushes,
and holds the connections until SIGTERM/SIGINT or --hold seconds, then closes them and exits 0.

Usage: idle_conns.py --host H --port P --path PATH --n N [--header 'k: v' ...] [--body B]
                     [--batch 100] [--hold 300]
Needs N + a few file descriptors (ulimit -n).
"""
import argparse
import errno
import json
import selectors
import signal
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--body", default="")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--hold", type=float, default=300)
    a = ap.parse_args()

    body = a.body.encode()
    head = [f"POST {a.path} HTTP/1.1", f"Host: {a.host}:{a.port}", "Content-Type: application/json",
            f"Content-Length: {len(body)}"] + a.header
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body

    sel = selectors.DefaultSelector()
    held = []
    ok = failed = 0
    first_error = ""
    started = time.monotonic()
    next_i = 0
    inflight = 0
    deadline = started + 120

    def fail(sock, why):
        nonlocal failed, first_error, inflight
        failed += 1
        inflight -= 1
        if not first_error:
            first_error = why[:200]
        try:
            sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    while (next_i < a.n or inflight > 0) and time.monotonic() < deadline:
        while next_i < a.n and inflight < a.batch:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rc = s.connect_ex((a.host, a.port))
            next_i += 1
            inflight += 1
            if rc not in (0, errno.EINPROGRESS):
                fail(s, f"connect: {errno.errorcode.get(rc, rc)}")
                continue
            sel.register(s, selectors.EVENT_WRITE, {"state": "connect", "buf": b"", "sent": 0})
        for key, _ in sel.select(timeout=1.0):
            s, st = key.fileobj, key.data
            try:
                if st["state"] == "connect":
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail(s, f"connect: {errno.errorcode.get(err, err)}")
                        continue
                    st["sent"] += s.send(request[st["sent"]:])
                    if st["sent"] == len(request):
                        st["state"] = "read"
                        sel.modify(s, selectors.EVENT_READ, st)
                    continue
                data = s.recv(65536)
            except OSError as e:
                fail(s, str(e))
                continue
            if not data:
                fail(s, "closed by the server before the answer ended")
                continue
            st["buf"] += data
            b = st["buf"]
            if b"\r\n\r\n" not in b:
                continue
            head_b, _, rest = b.partition(b"\r\n\r\n")
            lines = head_b.decode("latin-1").split("\r\n")
            length = 0
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            if len(rest) < length:
                continue
            status = int(lines[0].split()[1])
            if status != 200:
                fail(s, f"status {status}: {rest[:120]!r}")
                continue
            sel.unregister(s)
            inflight -= 1
            ok += 1
            held.append(s)

    for key in list(sel.get_map().values()):
        fail(key.fileobj, "timed out")
    print(json.dumps({"ready": True, "opened": a.n, "ok": ok, "failed": failed, "first_error": first_error,
                      "open_s": round(time.monotonic() - started, 2)}), flush=True)

    stop = {"now": False}

    def on_signal(*_):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    end = time.monotonic() + a.hold
    while not stop["now"] and time.monotonic() < end:
        time.sleep(0.1)
    for s in held:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
