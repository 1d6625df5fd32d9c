#!/usr/bin/env python3
"""Markdown sections for bench/run.sh's suites beyond throughput (Python 3 standard library).

Usage: report.py RESULT.json   — prints the sections (reuse, latency, streaming, memory, targets)
for whatever the result holds, and adds a "targets" verdict object to RESULT.json in place.

Targets (the benchmark issue's, judged for spillway):
  latency    added latency at one connection (target - direct) <= nginx's + 10 µs, p50 and p99;
             judged apart for the pass with every process on one CPU (latency_one_cpu)
  streaming  added time to first token p99 <= 250 µs (on the wire when segment timestamps exist);
             events passed on at the upstream's pace: at most 0.5 % of token events bunched (a
             scheduling hiccup on a busy machine delays one event and shortens the next gap; a
             proxy that buffers bunches most of them) and the median token gap within 1 ms of
             the upstream's; judged apart for the pass with every process on one CPU
             (streaming_one_cpu)
  memory     idle RSS <= 30 MB; <= 4 KB per idle keep-alive client connection
  reuse      >= 99.9 % of requests on an already open upstream connection under steady load
"""
import json
import sys

LAT_SLACK_US = 10
TTFT_P99_US = 250
BUNCHED_MAX = 0.005
IDLE_RSS_KB = 30 * 1024
KB_PER_CONN = 4
REUSE_PCT = 99.9


def f(x, nd=0, unit=""):
    if x is None:
        return "–"
    if nd == 0:
        return f"{x:,.0f}{unit}"
    return f"{x:,.{nd}f}{unit}"


def signed(x, nd=0):
    if x is None:
        return "–"
    return f"{x:+,.{nd}f}"


def ratio(x, ref):
    if x is None or ref in (None, 0):
        return "–"
    return f"{x / ref:.2f}"


def yn(ok):
    return "**met**" if ok else "**NOT met**"


def latency_section(lat, title, how, out):
    """Appends one latency pass's table; returns spillway's verdict (None without spillway/nginx)."""
    rows = {t["target"]: t for t in lat["targets"]}
    ng = rows.get("nginx", {})
    where = f" ({lat['cpus']})" if lat.get("cpus") else ""
    out.append(f"## {title}{where}\n")
    out.append(f"`wrk -t1 -c1 --latency` for {lat['secs_per_run']} s per run, {lat['rounds']} round(s) "
               "round-robin over the targets; median over rounds. added = target − direct in the same "
               f"round (then the median over rounds): what the extra hop costs one request. {how}\n")
    out.append("| target | req/s | p50 µs | p90 µs | p99 µs | added p50 µs | added p99 µs | added p50 × nginx | target CPU µs/req |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, t in rows.items():
        out.append(f"| {name}{'' if t['ok'] else ' **FAILED**'} | {f(t['rps'])} | {f(t['p50_us'])} | {f(t['p90_us'])} | "
                   f"{f(t['p99_us'])} | {signed(t['added_p50_us'])} | {signed(t['added_p99_us'])} | "
                   f"{ratio(t['added_p50_us'], ng.get('added_p50_us'))} | {f(t['cpu_us_per_req'])} |")
    sp = rows.get("spillway")
    if not (sp and ng and sp.get("added_p50_us") is not None and ng.get("added_p50_us") is not None):
        return None
    ok50 = sp["added_p50_us"] <= ng["added_p50_us"] + LAT_SLACK_US
    ok99 = sp["added_p99_us"] <= ng["added_p99_us"] + LAT_SLACK_US
    out.append(f"\nspillway adds {sp['added_p50_us']:+.0f} µs at p50 (nginx {ng['added_p50_us']:+.0f}) and "
               f"{sp['added_p99_us']:+.0f} µs at p99 (nginx {ng['added_p99_us']:+.0f}) — target ≤ nginx + "
               f"{LAT_SLACK_US} µs: p50 {yn(ok50)}, p99 {yn(ok99)}\n")
    return {"target": f"spillway added <= nginx added + {LAT_SLACK_US} us (p50 and p99)",
            "spillway_added_p50_us": sp["added_p50_us"], "nginx_added_p50_us": ng["added_p50_us"],
            "spillway_added_p99_us": sp["added_p99_us"], "nginx_added_p99_us": ng["added_p99_us"],
            "met_p50": ok50, "met_p99": ok99, "met": ok50 and ok99}


def streaming_section(st, title, how, out):
    """The streaming table(s) of one pass and spillway's verdict (None when it was not measured)."""
    verdict = None
    tg = st["targets"]
    out.append(f"## {title}\n")
    if how:
        out.append(how + "\n")
    out.append(f"A second region of the same mock sends the first event after {st.get('ttft_ms')} ms, then one "
               f"token every {st.get('token_ms')} ms ({st.get('completion_tokens')} tokens, usage chunk, `[DONE]`: "
               f"{st.get('reference_events_per_stream')} events). {st['streams']} streams per target, interleaved "
               "(one stream at a time, targets in turn, each over its own keep-alive connection). "
               "TTFT = request sent → first body byte (the first `data:` line). added TTFT = target − direct "
               "at the same percentile. event lag = each event's arrival minus the direct median for the "
               "same event: it includes the TTFT difference. bunched = token events that arrived less than "
               "half the upstream's gap after the event before them (held back and delivered together).\n")
    wire_ok = st.get("wire_capture") == "ok"
    if wire_ok:
        out.append("on the wire = the proxy's own delay per stream, from the kernel's timestamps of the TCP segments on "
                   "`lo`, each stamped as its sender hands it to `lo`: (proxy → client segment with the first `data:`) − "
                   "(upstream → proxy segment with the first `data:`); and the request's way in: (proxy → upstream POST) "
                   "− (client → proxy POST). Unlike the difference of two TTFT percentiles it does not carry the "
                   "upstream timer's jitter, and it includes waking the proxy but not waking the client.\n")
    else:
        out.append(f"(no segment timestamps: {st.get('wire_capture')}; the added TTFT is only the difference of percentiles)\n")
    out.append("| target | streams ok | TTFT p50 µs | TTFT p99 µs | added TTFT p50 µs | added TTFT p99 µs | on the wire: added to first data p50 / p99 / max µs | on the wire: request in p50 / p99 µs | event lag p50 / p99 / max µs | token gap p1 / p50 / p99 ms | bunched |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, t in tg.items():
        a = t.get("added_ttft_us", {})
        lag, gap = t["event_lag_us"], t["token_gap_us"]
        bad = t["errors"] or t["events_mismatched"] or t["streams_without_done"]
        okn = f"{t['completed']}/{st['streams']}" + (f" ({t['errors']} errors, {t['events_mismatched']} wrong event count)" if bad else "")
        w, wf = t.get("wire_added_ttft_us", {}), t.get("wire_request_forward_us", {})
        wire_s = f"{f(w.get('p50'))} / {f(w.get('p99'))} / {f(w.get('max'))}" if w else "–"
        wf_s = f"{f(wf.get('p50'))} / {f(wf.get('p99'))}" if wf else "–"
        out.append(f"| {name} | {okn} | {f(t['ttft_us']['p50'])} | {f(t['ttft_us']['p99'])} | {signed(a.get('p50'))} | "
                   f"{signed(a.get('p99'))} | {wire_s} | {wf_s} | "
                   f"{f(lag['p50'])} / {f(lag['p99'])} / {f(lag['max'])} | "
                   f"{f(gap['p1'] / 1000 if gap['p1'] is not None else None, 1)} / {f(gap['p50'] / 1000 if gap['p50'] is not None else None, 1)} / "
                   f"{f(gap['p99'] / 1000 if gap['p99'] is not None else None, 1)} | {gap.get('bunched', '–')} of {gap['n']} |")
    traced = {name: t["wire_added_ttft_us"] for name, t in tg.items()
              if "intruded" in t.get("wire_added_ttft_us", {})}
    if traced:
        out.append("\nWhat held streams up, from the kernel's own record of the CPUs during the streams (tracefs: "
                   "context switches, wake-ups of the measured threads, IPIs, timer ticks; read after the streams, "
                   "bench/tools/cpu_trace.py). A stream counts as held up when, between the upstream's first event "
                   f"and the proxy's: while a measured thread waited to run, another task (not the proxy, the mock "
                   f"or the client) ran ≥ {st.get('intrusion_us')} µs on a CPU (`its name`); a measured thread woken "
                   f"onto an idle CPU ran there only ≥ {st.get('late_us')} µs later (`idle CPU ran late`: its virtual "
                   "CPU was not running); or a busy CPU sent the other an IPI and recorded nothing until its own timer "
                   f"tick ≥ {st.get('late_us')} µs later (`CPU stalled after an IPI until its next tick`: the hypervisor "
                   "left it waiting, or one task ran that long without a pause; the trace cannot tell these apart). "
                   "The verdict is on all streams; the last columns leave the held-up ones out.\n")
        out.append("| target | streams held up | by (streams) | on the wire, the other streams: added to first data p50 / p99 / max µs | request in, streams not held up then: p50 / p99 µs |")
        out.append("|---|---:|---|---:|---:|")
        for name, w in traced.items():
            by = ", ".join(f"`{c}` ({n})" for c, n in sorted(w["intruders"].items(), key=lambda kv: -kv[1])) or "–"
            c = w.get("clear")
            clear_s = f"{f(c['p50'])} / {f(c['p99'])} / {f(c['max'])} ({c['n']} streams)" if c else "–"
            cf = tg[name].get("wire_request_forward_us", {}).get("clear")
            cf_s = f"{f(cf['p50'])} / {f(cf['p99'])} ({cf['n']} streams)" if cf else "–"
            out.append(f"| {name} | {w['intruded']} of {w['n']} | {by} | {clear_s} | {cf_s} |")
    elif wire_ok:
        out.append(f"\n(what held streams up is not named: {st.get('cpu_trace')})\n")
    if wire_ok and st.get("frames_dropped"):
        out.append(f"\n**The capture lost {st['frames_dropped']:,} of {st.get('frames_seen', 0):,} frames** (its socket "
                   "buffer was full): a stream whose first `data:` segment was lost is timed on a later one, so the "
                   "on-the-wire figures above are not reliable in this run.\n")
    sp = tg.get("spillway")
    if sp and sp.get("added_ttft_us"):
        # Judged on the segment timestamps when there are some (exact, per stream); else on the
        # difference of the TTFT percentiles (which carries the upstream's timer jitter).
        w = sp.get("wire_added_ttft_us")
        basis = "on the wire" if w else "difference of TTFT percentiles"
        p99 = w["p99"] if w else sp["added_ttft_us"]["p99"]
        ok = p99 <= TTFT_P99_US
        g = sp["token_gap_us"]
        tok_us = (st.get("token_ms") or 0) * 1000
        paced = (g.get("bunched", 0) <= BUNCHED_MAX * max(g["n"], 1) and g["p50"] is not None
                 and abs(g["p50"] - tok_us) <= 1000 and not sp["events_mismatched"] and not sp["errors"])
        verdict = {"target": f"added TTFT p99 <= {TTFT_P99_US} us; events at the upstream's pace",
                   "judged_on": basis, "added_ttft_p99_judged_us": p99,
                   "added_ttft_p50_us": sp["added_ttft_us"]["p50"], "added_ttft_p99_us": sp["added_ttft_us"]["p99"],
                   "wire_added_ttft_us": w,
                   "bunched": sp["token_gap_us"].get("bunched"), "met_ttft": ok, "met_pacing": paced,
                   "met": ok and paced}
        if st.get("cpus"):
            verdict["cpus"] = st["cpus"]
        wire_txt = f"; on the wire p50 {w['p50']:.0f} µs, p99 {w['p99']:.0f} µs" if w else ""
        if w and "intruded" in w:
            c = w.get("clear")
            wire_txt += (f" ({w['intruded']} of {w['n']} streams held up by the machine, see above"
                         + (f"; p99 {c['p99']:.0f} µs over the other {c['n']}" if c else "") + ")")
        out.append(f"\nspillway added TTFT p50 {sp['added_ttft_us']['p50']:+.0f} µs, p99 {sp['added_ttft_us']['p99']:+.0f} µs (difference of percentiles){wire_txt} "
                   f"— target p99 ≤ {TTFT_P99_US} µs, judged {basis}: {yn(ok)}; events passed on at the upstream's pace "
                   f"({g.get('bunched')} of {g['n']} token events bunched, ≤ {BUNCHED_MAX * 100:.1f} % allowed for scheduling noise; "
                   f"median gap {g['p50'] / 1000:.1f} ms for {st.get('token_ms')} ms): {yn(paced)}\n")
    return verdict


def main():
    path = sys.argv[1]
    res = json.load(open(path))
    suites = res.get("suites", {})
    out = []
    verdicts = {}
    order = [t["target"] for t in res.get("summary", {}).get("targets", [])]

    # --- reuse (from the throughput runs)
    thr = {t["target"]: t for t in res.get("summary", {}).get("targets", [])}
    if thr and any("upstream" in t for t in thr.values()):
        out.append("## Upstream connection reuse (during the throughput runs)\n")
        out.append("New connections the mock accepted during each measured throughput run "
                   f"(wrk -c{res['params']['connections']}, after the warm-up), per 1,000 requests. "
                   "For `direct` these are wrk's own connections.\n")
        out.append("| target | requests | new upstream connections | per 1,000 requests | reused |")
        out.append("|---|---:|---:|---:|---:|")
        for name, t in thr.items():
            u = t.get("upstream")
            if not u:
                continue
            reuse = "–" if name == "direct" else f"{u['reuse_pct']:.3f} %"
            out.append(f"| {name} | {t['requests']:,} | {u['new_connections']:,} | {f(u['per_1k_requests'], 3)} | {reuse} |")
        sp = thr.get("spillway", {}).get("upstream")
        if sp and sp.get("reuse_pct") is not None:
            ok = sp["reuse_pct"] >= REUSE_PCT
            verdicts["reuse"] = {"target": f">= {REUSE_PCT} %", "value": sp["reuse_pct"], "met": ok}
            out.append(f"\nspillway reuse {sp['reuse_pct']:.3f} % — target ≥ {REUSE_PCT} %: {yn(ok)}\n")

    # --- latency at one connection: CPUs shared, then (if measured) everything on one CPU
    for key, title, how in (
            ("latency", "Latency at one connection",
             "wrk, the mock and the proxy on the machine's CPUs as the scheduler places them."),
            ("latency_one_cpu", "Latency at one connection, everything on one CPU",
             "The mock, every proxy and wrk pinned to one CPU (taskset): a request's hops take "
             "turns on it, so the added latency is the proxy's own work (user and kernel), not where "
             "and how soon the scheduler runs each hop.")):
        lat = suites.get(key)
        if lat:
            verdict = latency_section(lat, title, how, out)
            if verdict:
                verdicts[key] = verdict
    # --- streaming: CPUs shared, then (if measured) everything on one CPU
    for key, title, how in (
            ("streaming", "Streaming (paced SSE upstream)", ""),
            ("streaming_one_cpu", "Streaming, everything on one CPU",
             "The mock, every proxy, the client and the capture pinned to one CPU (taskset). With the CPUs "
             "shared, the upstream's head wakes the proxy and the first event follows a few tens of µs later: "
             "whether the proxy has dealt with the head and sleeps again when the event comes, or the "
             "scheduler has not run it yet (it woke onto the upstream's own CPU) and gets both at once, "
             "differs from stream to stream and from run to run. On one CPU the proxy always runs after "
             "the upstream has sent both, so the delay is the same work every time: the upstream going to "
             "sleep, the proxy's wake-up, the head and the first event.")):
        st = suites.get(key)
        if st and st.get("targets"):
            verdict = streaming_section(st, title, how, out)
            if verdict:
                verdicts[key] = verdict

    # --- memory
    mem = suites.get("memory")
    if mem and mem.get("targets"):
        rows = {t["target"]: t for t in mem["targets"]}
        ng = rows.get("nginx", {})
        out.append("## Memory\n")
        out.append(f"RSS summed over the target's processes (nginx: master + worker; PSS in brackets, which splits "
                   f"their shared pages). idle = right after start-up and one request; under load = peak RSS sampled every "
                   f"100 ms during a wrk run (-c{res['params']['connections']}); idle after load = a second after that run, just before the "
                   f"idle connections; with N idle = {mem['idle_conns']:,} keep-alive client "
                   "connections that each made one request and then stayed open (held = how many the target "
                   "still held open, counted with `ss` when RSS was read); KB/conn = (RSS with N idle − idle "
                   "after load) / held. `direct` is the mock itself, for reference.\n")
        out.append("| target | idle MiB | under load (peak) MiB | load req/s | idle after load MiB | with N idle MiB | held | KB / idle conn | × nginx | after closing MiB |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, t in rows.items():
            mib = lambda k: f"{t[k] / 1024:.1f}"  # noqa: E731
            pmib = lambda k: f"{t[k] / 1024:.1f}"  # noqa: E731
            out.append(f"| {name} | {mib('rss_start_kb')} ({pmib('pss_start_kb')}) | {t['rss_load_peak_kb'] / 1024:.1f} | {f(t['load_rps'])} | "
                       f"{mib('rss_before_kb')} ({pmib('pss_before_kb')}) | "
                       f"{mib('rss_idle_conns_kb')} ({pmib('pss_idle_conns_kb')}) | {t['idle_held']:,} of {t['idle_requested']:,} | "
                       f"{f(t['kb_per_conn'], 2)} | {ratio(t['kb_per_conn'], ng.get('kb_per_conn'))} | {mib('rss_after_close_kb')} |")
        sp = rows.get("spillway")
        if sp:
            idle = max(sp["rss_start_kb"], sp["rss_before_kb"])
            ok_idle = idle <= IDLE_RSS_KB
            ok_conn = sp["kb_per_conn"] is not None and sp["kb_per_conn"] <= KB_PER_CONN and sp["idle_held"] >= sp["idle_requested"]
            verdicts["memory"] = {"target": f"idle RSS <= 30 MB, <= {KB_PER_CONN} KB per idle connection",
                                  "idle_rss_kb": idle, "kb_per_conn": sp["kb_per_conn"], "held": sp["idle_held"],
                                  "met_idle": ok_idle, "met_per_conn": ok_conn, "met": ok_idle and ok_conn}
            out.append(f"\nspillway idle RSS {idle / 1024:.1f} MiB (the larger of idle and idle after load) — target ≤ 30 MB: {yn(ok_idle)}; "
                       f"{f(sp['kb_per_conn'], 2)} KB per idle connection — target ≤ {KB_PER_CONN} KB: {yn(ok_conn)}\n")

    if verdicts and res.get("params", {}).get("smoke"):
        out.append("(smoke run: 1 s runs without warm-up, so the targets are not judged)\n")
        verdicts = {}
    if verdicts:
        out.append("## Targets (spillway)\n")
        out.append("| dimension | target | result |")
        out.append("|---|---|---|")
        names = {"latency": "latency at 1 connection", "latency_one_cpu": "latency at 1 connection, on one CPU",
                 "streaming": "streaming", "streaming_one_cpu": "streaming, on one CPU",
                 "memory": "memory", "reuse": "upstream reuse"}
        for k in ("latency", "latency_one_cpu", "streaming", "streaming_one_cpu", "memory", "reuse"):
            if k in verdicts:
                out.append(f"| {names[k]} | {verdicts[k]['target']} | {yn(verdicts[k]['met'])} |")
        out.append("")
    res["targets_met"] = verdicts
    with open(path, "w") as fh:
        json.dump(res, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    print("\n".join(out))
    _ = order


if __name__ == "__main__":
    main()
