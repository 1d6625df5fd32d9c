#!/usr/bin/env python3
"""Streaming client for bench/run.sh --suite streaming (Python 3 standard library only).

Runs N chat-completions streams against every target, interleaved (stream i goes to target 1,
then target 2, ..., then stream i+1), each target over its own keep-alive connection, one stream
at a time: every target sees the same machine conditions, and no stream competes with another.

For each stream it records, with time.perf_counter_ns():
  - ttft: from the last byte of the request handed to the kernel to the first byte of the first
    SSE `data:` line (the first body byte the client can act on);
  - the arrival time of every complete SSE event (blank-line terminated).

Reported per target: TTFT percentiles, and the pacing check: for every event, its arrival time
(from the request) minus the median arrival time of the same event index on the reference target
(`direct`, the upstream itself) = how much later than the upstream's own pace the event reached the
client ("event lag", which includes the TTFT difference); the gaps between consecutive token
events where the upstream paces them (should be token_ms; 0 means events were held back and
delivered together); and streams whose events did not match the reference's count or did not end
with `data: [DONE]`.

With "upstream_port" in the spec (the port the proxies stream from) it also runs lo_capture.py
(root only) and measures, per stream, the proxy's own delay from the kernel's timestamps of the
segments on `lo` (each stamped as its sender hands it to `lo`): wire_added_ttft = (proxy -> client segment carrying the first `data:`) -
(upstream -> proxy segment carrying the first `data:`), and request_forward = (proxy -> upstream
POST) - (client -> proxy POST). These do not depend on the upstream's timer jitter, which the
difference of two TTFT percentiles does. The capture reads its queue only between streams (it is
told to, on its stdin), so it never competes with a stream for the CPUs.

Usage: sse_streams.py SPEC.json  (SPEC: {"streams": N, "reference": "direct", "upstream_port": P,
  "targets": [{"name", "host", "port", "path", "headers": {..}, "body": "..."}]})
Prints one JSON object on stdout. Exit 1 if any stream failed.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import cpu_trace


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a list; None when empty."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


class Conn:
    def __init__(self, t):
        self.t = t
        self.sock = None
        self.buf = b""

    def connect(self):
        self.sock = socket.create_connection((self.t["host"], self.t["port"]), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request_bytes(self):
        body = self.t["body"].encode()
        head = [f"POST {self.t['path']} HTTP/1.1", f"Host: {self.t['host']}:{self.t['port']}",
                "Content-Type: application/json", "Accept: text/event-stream",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in self.t.get("headers", {}).items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    def recv(self):
        data = self.sock.recv(65536)
        now = time.perf_counter_ns()
        if not data:
            raise ConnectionError("connection closed by the server")
        return data, now


def one_stream(c):
    """One streaming request on connection c. Returns dict with ttft_ns, event times, events."""
    if c.sock is None:
        c.connect()
    req = c.request_bytes()
    local_port = c.sock.getsockname()[1]
    wall0 = time.time_ns()
    c.sock.sendall(req)
    t0 = time.perf_counter_ns()
    buf = c.buf
    now = t0
    # --- headers
    while b"\r\n\r\n" not in buf:
        data, now = c.recv()
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    chunked = "chunked" in hdrs.get("transfer-encoding", "").lower()
    length = int(hdrs["content-length"]) if "content-length" in hdrs else None
    close_after = hdrs.get("connection", "").lower() == "close"
    # --- body: de-chunk incrementally, split SSE events on blank lines
    raw = rest          # undecoded body bytes
    body = b""         # decoded body bytes not yet split into events
    events = []         # (arrival_ns, text)
    ttft_ns = None
    done = False
    total = 0
    pending_ns = now    # arrival time of the bytes currently in `raw`

    def feed(arrival):
        nonlocal raw, body, done, total, ttft_ns
        while True:
            if chunked:
                if b"\r\n" not in raw:
                    return
                size_line, _, after = raw.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if len(after) < size + 2:
                    return
                chunk, raw = after[:size], after[size + 2:]
                if size == 0:
                    done = True
                    return
            else:
                chunk, raw = raw, b""
                if not chunk:
                    return
            total += len(chunk)
            if ttft_ns is None and chunk:
                ttft_ns = arrival - t0
            body += chunk
            while b"\n\n" in body.replace(b"\r\n", b"\n"):
                norm = body.replace(b"\r\n", b"\n")
                ev, _, tail = norm.partition(b"\n\n")
                body = tail
                if ev.strip():
                    events.append((arrival, ev.decode("utf-8", "replace")))
            if not chunked:
                if length is not None and total >= length:
                    done = True
                return

    if status != 200:
        # read and discard the error body (Content-Length) to keep the connection usable
        feed(now)
        while not done and length is not None and total < length:
            data, arrival = c.recv()
            raw += data
            feed(arrival)
        c.buf = raw
        text = body.decode("utf-8", "replace")[:200]
        raise RuntimeError(f"status {status}: {text}")
    feed(pending_ns)
    while not done:
        data, arrival = c.recv()
        raw += data
        feed(arrival)
        if not chunked and length is None and events and events[-1][1].strip() == "data: [DONE]":
            done = True
    c.buf = raw
    if close_after or (not chunked and length is None):
        c.sock.close()
        c.sock = None
    if ttft_ns is None:
        raise RuntimeError("no body")
    return {"ttft_ns": ttft_ns, "t0": t0, "events": events, "wall0": wall0, "local_port": local_port}


def main():
    # SIGTERM (bench/run.sh stopping) ends the run through the finally below, which also stops
    # the capture process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    holder = {}
    try:
        return run(holder)
    finally:
        if holder.get("trace") is not None:
            holder["trace"].close()
        c = holder.get("capture")
        if c is not None and c.poll() is None:
            c.kill()
            c.wait()


def run(holder):
    spec = json.load(open(sys.argv[1]))
    n = int(spec["streams"])
    ref = spec.get("reference", "direct")
    targets = spec["targets"]
    conns = {t["name"]: Conn(t) for t in targets}
    upstream_port = spec.get("upstream_port")
    capture, capture_note, capture_counts = None, "not asked for", {}
    if upstream_port:
        ports = sorted({int(upstream_port)} | {int(t["port"]) for t in targets})
        try:
            capture = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lo_capture.py")]
                                       + [str(p) for p in ports], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            line = capture.stderr.readline().strip()
            if line != "ready":
                capture.wait(timeout=5)
                capture_note = line or "lo_capture.py exited"
                capture = None
            else:
                capture_note = "ok"
                holder["capture"] = capture
        except OSError as e:
            capture_note = str(e)
            capture = None
    windows = []   # (target, local port, wall time before the request) per timed stream
    res = {t["name"]: {"ttft_us": [], "offsets": [], "errors": 0, "first_error": ""} for t in targets}
    # one untimed stream per target first: connects, and warms caches and JITs
    for t in targets:
        try:
            one_stream(conns[t["name"]])
        except Exception as e:  # noqa: BLE001 - reported, not fatal for the warm-up
            res[t["name"]]["first_error"] = f"warm-up: {e}"
            conns[t["name"]].sock = None

    def drain_capture():
        """Between streams, never during one: the capture reads its queue only when told."""
        nonlocal capture, capture_note
        if capture is None:
            return
        try:
            capture.stdin.write("drain\n")
            capture.stdin.flush()
            if capture.stderr.readline().strip() != "drained":
                raise OSError("it stopped answering")
        except OSError as e:
            capture_note = f"lo_capture.py failed mid-run: {e}"
            capture.kill()
            capture.wait()
            capture = None

    # The context switches during the timed streams: which other task's run (a kernel thread's,
    # say) fell into a stream's relay window.
    own = {os.getpid()} | {int(p) for p in spec.get("own_pids", [])}
    if capture is not None:
        own.add(capture.pid)
    own_tids = cpu_trace.threads_of(own)
    trace = cpu_trace.SwitchTrace()
    holder["trace"] = trace   # before start(): a SIGTERM during it still removes the instance
    if capture is not None:
        trace.start(own_tids)
    for i in range(n):
        for t in targets:
            r = res[t["name"]]
            drain_capture()
            try:
                s = one_stream(conns[t["name"]])
            except Exception as e:  # noqa: BLE001 - counted and reported
                r["errors"] += 1
                if not r["first_error"] or r["first_error"].startswith("warm-up"):
                    r["first_error"] = str(e)[:200]
                c = conns[t["name"]]
                if c.sock is not None:
                    c.sock.close()
                c.sock = None
                continue
            r["ttft_us"].append(s["ttft_ns"] / 1000)
            windows.append((t["name"], s["local_port"], s["wall0"]))
            r["offsets"].append({"us": [(a - s["t0"]) / 1000 for a, _ in s["events"]],
                                 "done": bool(s["events"]) and s["events"][-1][1].strip() == "data: [DONE]",
                                 "first": s["events"][0][1][:80] if s["events"] else ""})
    timeline = trace.stop()
    for c in conns.values():
        if c.sock is not None:
            c.sock.close()

    # Kernel timestamps of the segments: the proxy's own delay per stream.
    wire = {t["name"]: {"added_ttft": [], "forward": [], "clear_ttft": [], "clear_forward": [], "intruded": 0, "intruders": {}}
            for t in targets}
    if capture is not None:
        try:
            out, _ = capture.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            capture.kill()
            out, _ = capture.communicate()
            capture_note = "lo_capture.py did not finish within 60 s: its rows are incomplete"
        rows = []
        for ln in out.splitlines():
            if ln.startswith("# packets"):
                _, _, packets, _, drops = ln.split()
                capture_counts = {"frames_seen": int(packets), "frames_dropped": int(drops)}
                continue
            ts, sp, dp, post, data = ln.split()
            rows.append((int(ts), int(sp), int(dp), post == "1", data == "1"))
        rows.sort()
        port_of = {t["name"]: int(t["port"]) for t in targets}
        up = int(upstream_port)
        j = 0
        for i, (name, lport, w0) in enumerate(windows):
            w1 = windows[i + 1][2] if i + 1 < len(windows) else float("inf")
            while j < len(rows) and rows[j][0] < w0:
                j += 1
            k = j
            c0 = u0 = u1 = c1 = None
            p = port_of[name]
            while k < len(rows) and rows[k][0] < w1:
                ts, sp, dp, post, data = rows[k]
                if c0 is None and sp == lport and dp == p and post:
                    c0 = ts
                if u0 is None and dp == up and post and sp != lport:
                    u0 = ts
                if u1 is None and sp == up and data:
                    u1 = ts
                if c1 is None and sp == p and dp == lport and data:
                    c1 = ts
                k += 1
            if p == up:
                continue   # direct: the client is the upstream's client
            if u1 is not None and c1 is not None:
                w = wire[name]
                w["added_ttft"].append((c1 - u1) / 1000)
                causes = timeline.held_up(u1, c1)
                if causes:
                    w["intruded"] += 1
                    for cause in causes:
                        w["intruders"][cause] = w["intruders"].get(cause, 0) + 1
                else:
                    w["clear_ttft"].append((c1 - u1) / 1000)
            if c0 is not None and u0 is not None:
                wire[name]["forward"].append((u0 - c0) / 1000)
                if not timeline.held_up(c0, u0):
                    wire[name]["clear_forward"].append((u0 - c0) / 1000)

    # reference pace: median offset of every event index over the reference's streams
    ref_offsets = []
    ref_count = None
    if ref in res and res[ref]["offsets"]:
        counts = [len(o["us"]) for o in res[ref]["offsets"]]
        ref_count = max(set(counts), key=counts.count)
        cols = [[o["us"][k] for o in res[ref]["offsets"] if len(o["us"]) == ref_count] for k in range(ref_count)]
        ref_offsets = [pct(col, 50) for col in cols]

    out = {"streams": n, "reference": ref, "reference_events_per_stream": ref_count, "wire_capture": capture_note, **capture_counts,
           "cpu_trace": trace.note if trace.note != "not started" else "not asked for", "intrusion_us": cpu_trace.INTRUSION_NS // 1000,
           "late_us": cpu_trace.LATE_NS // 1000,
           "reference_offsets_ms": [round(x / 1000, 2) for x in ref_offsets], "targets": {}}
    failed = False
    ref_ttft = res.get(ref, {}).get("ttft_us", [])
    for t in targets:
        name = t["name"]
        r = res[name]
        lags, gaps, mismatched, not_done, bunched = [], [], 0, 0, 0
        for o in r["offsets"]:
            us = o["us"]
            if not o["done"]:
                not_done += 1
            if ref_count is not None and len(us) != ref_count:
                mismatched += 1
                continue
            for k in range(len(us)):
                if ref_offsets:
                    lags.append(us[k] - ref_offsets[k])
                # token pacing: gaps where the reference itself is paced (> 1 ms apart)
                if k > 0 and ref_offsets and ref_offsets[k] - ref_offsets[k - 1] > 1000:
                    gaps.append(us[k] - us[k - 1])
                    # delivered together with the event before it instead of at its own time
                    if us[k] - us[k - 1] < (ref_offsets[k] - ref_offsets[k - 1]) / 2:
                        bunched += 1
        tt = r["ttft_us"]
        entry = {
            "completed": len(tt), "errors": r["errors"], "first_error": r["first_error"],
            "ttft_us": {"p50": pct(tt, 50), "p90": pct(tt, 90), "p99": pct(tt, 99), "max": max(tt) if tt else None,
                        "mean": sum(tt) / len(tt) if tt else None},
            "events_mismatched": mismatched, "streams_without_done": not_done,
            "event_lag_us": {"p50": pct(lags, 50), "p99": pct(lags, 99), "max": max(lags) if lags else None,
                             "over_2ms": sum(1 for x in lags if x > 2000), "events": len(lags)},
            "token_gap_us": {"p1": pct(gaps, 1), "p50": pct(gaps, 50), "p99": pct(gaps, 99), "n": len(gaps),
                             "bunched": bunched},
        }
        wa, wf = wire[name]["added_ttft"], wire[name]["forward"]
        if wa:
            entry["wire_added_ttft_us"] = {"p50": pct(wa, 50), "p90": pct(wa, 90), "p99": pct(wa, 99), "max": max(wa), "n": len(wa)}
            if trace.note.startswith("ok"):
                wc = wire[name]["clear_ttft"]
                entry["wire_added_ttft_us"]["intruded"] = wire[name]["intruded"]
                entry["wire_added_ttft_us"]["intruders"] = wire[name]["intruders"]
                if wc:
                    entry["wire_added_ttft_us"]["clear"] = {"p50": pct(wc, 50), "p99": pct(wc, 99), "max": max(wc), "n": len(wc)}
        if wf:
            entry["wire_request_forward_us"] = {"p50": pct(wf, 50), "p99": pct(wf, 99), "max": max(wf), "n": len(wf)}
            wcf = wire[name]["clear_forward"]
            if trace.note.startswith("ok") and wcf:
                entry["wire_request_forward_us"]["clear"] = {"p50": pct(wcf, 50), "p99": pct(wcf, 99), "n": len(wcf)}
        if name != ref and ref_ttft and tt:
            entry["added_ttft_us"] = {"p50": pct(tt, 50) - pct(ref_ttft, 50), "p90": pct(tt, 90) - pct(ref_ttft, 90),
                                      "p99": pct(tt, 99) - pct(ref_ttft, 99)}
        if r["errors"] or not tt or mismatched or not_done:
            failed = True
        out["targets"][name] = entry
    out["failed"] = failed
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
