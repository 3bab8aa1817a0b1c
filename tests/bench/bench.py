#!/usr/bin/env python3
"""Helpers for tests/bench/run.sh (standard library only).

  bench.py idleconns --port P --pid PID --n 1000
      Opens N keep-alive connections to the gateway, sends GET /health on each,
      keeps them open and reads the gateway's VmRSS before, with them open, and
      after closing them. Prints key=value lines.
  bench.py stream --port P --mock-base URL --chunks 1000 [--gateway-headers]
      One streaming chat request with x-mock-timestamps: 1; records the arrival
      time (CLOCK_REALTIME) of every SSE event and compares it with the
      x_mock_sent_us the mock wrote into it. Prints key=value lines.
  bench.py report --results FILE --doc docs/benchmarks.md --command CMD
      Turns the key=value results into a Markdown table with the targets,
      prints it and rewrites the "Latest run" section of the doc.
"""
import argparse
import gc
import json
import os
import re
import socket
import statistics
import sys
import time


def vmrss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def read_http_response(sock, buf=b""):
    """Reads one Content-Length response; returns (status, rest_of_buffer)."""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            raise RuntimeError("connection closed before the response head")
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        d = sock.recv(65536)
        if not d:
            raise RuntimeError("connection closed mid-body")
        rest += d
    return status, rest[length:]


def cmd_idleconns(a):
    out = {}
    out["rss_before_kb"] = vmrss_kb(a.pid)
    socks = []
    req = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{a.port}\r\n\r\n".encode()
    ok = 0
    try:
        # Connect and send in batches, then read the answers, so that 1,000
        # connections take well under a second.
        batch = 100
        for start in range(0, a.n, batch):
            group = []
            for _ in range(min(batch, a.n - start)):
                s = socket.create_connection(("127.0.0.1", a.port), timeout=10)
                s.sendall(req)
                group.append(s)
            for s in group:
                status, _ = read_http_response(s)
                ok += status == 200
            socks.extend(group)
        time.sleep(1.0)  # let the gateway settle (buffers released, timers armed)
        samples = []
        for _ in range(3):
            samples.append(vmrss_kb(a.pid))
            time.sleep(0.1)
        out["rss_with_conns_kb"] = max(samples)
        out["conns_open"] = len(socks)
        out["conns_ok"] = ok
    finally:
        for s in socks:
            s.close()
    time.sleep(1.0)
    out["rss_after_close_kb"] = vmrss_kb(a.pid)
    for k, v in out.items():
        print(f"{a.prefix}{k}={v}")


class Dechunker:
    """Incremental HTTP/1.1 chunked-body decoder."""

    def __init__(self):
        self.buf = b""
        self.need = None  # bytes left in the current chunk (+2 for CRLF)
        self.done = False

    def feed(self, data):
        self.buf += data
        out = []
        while not self.done:
            if self.need is None:
                i = self.buf.find(b"\r\n")
                if i < 0:
                    break
                size = int(self.buf[:i].split(b";")[0], 16)
                self.buf = self.buf[i + 2:]
                if size == 0:
                    self.done = True
                    break
                self.need = size + 2
            if len(self.buf) < self.need:
                break
            out.append(self.buf[: self.need - 2])
            self.buf = self.buf[self.need:]
            self.need = None
        return b"".join(out)


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0
    i = round(p / 100 * (len(sorted_vals) - 1))
    return sorted_vals[i]


def cmd_stream(a):
    gc.disable()  # a collection pause would be charged to the path measured
    body = json.dumps({
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": "Tell me a long story."}],
    }).encode()
    head = [
        "POST /v1/chat/completions HTTP/1.1",
        f"Host: 127.0.0.1:{a.port}",
        "Content-Type: application/json",
        "Authorization: Bearer sk-bench",
        "x-sluice-provider: openai",
        f"x-sluice-custom-host: {a.mock_base}/v1",
        f"x-mock-chunks: {a.chunks}",
        f"x-mock-chunk-delay-ms: {a.chunk_delay_ms}",
        "x-mock-timestamps: 1",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    req = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    s = socket.create_connection(("127.0.0.1", a.port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(req)
    raw = b""
    head_done = False
    chunked = False
    dech = Dechunker()
    sse = b""
    delays = []
    events = 0
    done_seen = False
    error_seen = False
    status = 0
    t_first = t_last = None
    while True:
        d = s.recv(1 << 16)
        t_us = time.time_ns() // 1000  # CLOCK_REALTIME, as the mock's x_mock_sent_us
        if not d:
            break
        if not head_done:
            raw += d
            if b"\r\n\r\n" not in raw:
                continue
            h, _, d = raw.partition(b"\r\n\r\n")
            head_done = True
            status = int(h.split(b"\r\n")[0].split()[1])
            chunked = re.search(rb"(?im)^transfer-encoding:\s*chunked", h) is not None
        data = dech.feed(d) if chunked else d
        sse += data
        while True:
            i = sse.find(b"\n\n")
            if i < 0:
                break
            ev, sse = sse[:i], sse[i + 2:]
            for line in ev.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                events += 1
                if payload == b"[DONE]":
                    done_seen = True
                    continue
                try:
                    obj = json.loads(payload)
                except ValueError:
                    continue
                if "error" in obj:
                    error_seen = True
                sent = obj.get("x_mock_sent_us")
                if isinstance(sent, int):
                    delays.append(t_us - sent)
                    t_first = t_first or t_us
                    t_last = t_us
        if chunked and dech.done:
            break
    s.close()
    delays.sort()
    p = a.prefix
    print(f"{p}status={status}")
    print(f"{p}events={events}")
    print(f"{p}timed_events={len(delays)}")
    print(f"{p}done={int(done_seen)}")
    print(f"{p}error={int(error_seen)}")
    print(f"{p}delay_p50_us={pct(delays, 50)}")
    print(f"{p}delay_p99_us={pct(delays, 99)}")
    print(f"{p}delay_max_us={delays[-1] if delays else 0}")
    print(f"{p}delay_mean_us={statistics.mean(delays) if delays else 0:.1f}")
    print(f"{p}over_1ms={sum(1 for x in delays if x > 1000)}")
    print(f"{p}span_ms={(t_last - t_first) / 1000 if delays else 0:.1f}")


def first_token_us(port, path, headers, body):
    """Microseconds from sending a streaming request to its first text delta."""
    req = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %d\r\n"
           "Connection: close\r\n\r\n" % (path, "".join("%s: %s\r\n" % kv for kv in headers),
                                             len(body))).encode() + body
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.perf_counter_ns()
    s.sendall(req)
    buf = b""
    first = None
    while True:
        d = s.recv(1 << 16)
        if not d:
            break
        buf += d
        # The first text: an OpenAI content delta or an Anthropic text_delta.
        if first is None and (b'"text_delta"' in buf or b'"content":"This' in buf):
            first = (time.perf_counter_ns() - t0) // 1000
    s.close()
    if first is None:
        raise SystemExit("ttft: no text in the stream from %s: %r" % (path, buf[:300]))
    return first


def cmd_ttft(a):
    gc.disable()
    port = int(a.mock_base.rsplit(":", 1)[1])
    anth = json.dumps({"model": "claude-bench", "max_tokens": 32, "stream": True,
                       "messages": [{"role": "user", "content": "Hello"}]}).encode()
    oai = json.dumps({"model": "claude-bench", "max_tokens": 32, "stream": True,
                      "messages": [{"role": "user", "content": "Hello"}]}).encode()
    direct_h = [("Content-Type", "application/json"), ("x-api-key", "sk-bench"),
                ("anthropic-version", "2023-06-01")]
    gw_h = [("Content-Type", "application/json"), ("Authorization", "Bearer sk-bench"),
            ("x-sluice-provider", "anthropic"), ("x-sluice-custom-host", a.mock_base + "/v1")]
    direct, via = [], []
    for _ in range(a.n):  # interleaved, so both see the same machine
        direct.append(first_token_us(port, "/v1/messages", direct_h, anth))
        via.append(first_token_us(a.gw_port, "/v1/chat/completions", gw_h, oai))
    direct.sort()
    via.sort()
    print("ttft.n=%d" % a.n)
    print("ttft.direct_p50_us=%d" % pct(direct, 50))
    print("ttft.direct_p99_us=%d" % pct(direct, 99))
    print("ttft.sluice_p50_us=%d" % pct(via, 50))
    print("ttft.sluice_p99_us=%d" % pct(via, 99))


# ---- report ---------------------------------------------------------------

START = "<!-- latest-run:start (written by tests/bench/run.sh; do not edit by hand) -->"
END = "<!-- latest-run:end -->"


def load_results(path):
    r = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, _, v = line.partition("=")
                r[k.strip()] = v.strip()
    return r


def num(r, k, default=None):
    v = r.get(k)
    if v is None or v == "":
        return default
    try:
        return float(v)
    except ValueError:
        return default


def fmt(v, digits=0, unit=""):
    if v is None:
        return "n/a"
    if digits == 0:
        return f"{v:,.0f}{unit}"
    return f"{v:,.{digits}f}{unit}"


def pick_rounds(r):
    """Copies each path's best round to round-less keys; returns a summary.

    Throughput: the round with the most requests/s (its CPU figure goes with
    it). Paced latency: the round with the lowest median. Other work on the
    machine only adds time, so the best round is the least disturbed one.
    Streaming: the round with the fewest late chunks, then the lowest maximum."""
    rounds = int(num(r, "rounds", 1))
    notes = []
    for kind, keys, better in (("tput", ("rps",), max), ("paced", ("lat_p50_us",), min),
                               ("stream", ("over_1ms", "delay_max_us"), min)):
        for t in ("direct", "nginx", "sluice", "sluice_anthropic", "sluice_fallback"):
            vals = [(tuple(num(r, f"{kind}.r{i}.{t}.{k}") for k in keys), i)
                    for i in range(1, rounds + 1)]
            vals = [(v if len(v) > 1 else v[0], i) for v, i in vals if None not in v]
            if not vals:
                continue
            best = better(vals)[1]
            for k in list(r):
                pre = f"{kind}.r{best}.{t}."
                if k.startswith(pre):
                    r[f"{kind}.{t}." + k[len(pre):]] = r[k]
            if kind == "tput" and f"cpu.r{best}.{t}.ticks" in r:
                r[f"cpu.{t}.ticks"] = r[f"cpu.r{best}.{t}.ticks"]
            notes.append((kind, t, [v for v, _ in sorted(vals, key=lambda x: x[1])], best))
    return rounds, notes


def cmd_report(a):
    r = load_results(a.results)
    rounds, round_notes = pick_rounds(r)
    lines = []
    targets = []  # (name, value text, target text, ok)

    def target(name, value, goal, ok):
        targets.append((name, value, goal, ok))

    # Throughput and CPU per request.
    rps = {t: num(r, f"tput.{t}.rps") for t in ("direct", "nginx", "sluice")}
    errs = {t: int(sum(num(r, f"tput.{t}.{e}", 0) for e in
                       ("err_connect", "err_read", "err_write", "err_status", "err_timeout")))
            for t in rps}
    tck = num(r, "clk_tck", 100)
    cpu_us = {}
    for t in ("nginx", "sluice"):
        ticks = num(r, f"cpu.{t}.ticks")
        reqs = num(r, f"tput.{t}.requests")
        cpu_us[t] = ticks / tck * 1e6 / reqs if ticks is not None and reqs else None
    lines.append("### Throughput (wrk -t1 -c64, %s s each)" % r.get("duration_s", "10"))
    lines.append("")
    lines.append("| path | req/s | errors | CPU per request | CPU total |")
    lines.append("|---|---:|---:|---:|---:|")
    for t, label in (("direct", "wrk → mock"), ("nginx", "wrk → nginx → mock"),
                     ("sluice", "wrk → Sluice → mock")):
        cpu_total = num(r, f"cpu.{t}.ticks")
        lines.append("| %s | %s | %d | %s | %s |" % (
            label, fmt(rps[t]), errs[t],
            fmt(cpu_us.get(t), 1, " µs") if t != "direct" else "–",
            fmt(cpu_total / tck, 2, " s") if cpu_total is not None and t != "direct" else "–"))
    lines.append("")
    if rps["sluice"] and rps["nginx"]:
        ratio = rps["sluice"] / rps["nginx"]
        target("throughput", f"{ratio:.2f}× nginx ({fmt(rps['sluice'])} vs {fmt(rps['nginx'])} req/s)",
               "≥ 0.80× nginx", ratio >= 0.8 and errs["sluice"] == 0)
    if cpu_us.get("sluice") and cpu_us.get("nginx"):
        ratio = cpu_us["sluice"] / cpu_us["nginx"]
        target("CPU per request", f"{ratio:.2f}× nginx ({cpu_us['sluice']:.1f} vs {cpu_us['nginx']:.1f} µs)",
               "≤ 1.25× nginx", ratio <= 1.25)

    # Paced latency.
    lat = {t: (num(r, f"paced.{t}.lat_p50_us"), num(r, f"paced.{t}.lat_p99_us"),
               num(r, f"paced.{t}.rps"), int(sum(num(r, f"paced.{t}.{e}", 0) for e in
                   ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))))
           for t in ("direct", "nginx", "sluice")}
    lines.append("### Latency at a paced %s req/s on one connection (%s s each)" % (
        r.get("paced_rate", "200"), r.get("duration_s", "10")))
    lines.append("")
    lines.append("| path | rate | median | p99 | added median | added p99 | errors |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    d50, d99 = lat["direct"][0], lat["direct"][1]
    added = {}
    for t, label in (("direct", "wrk → mock"), ("nginx", "wrk → nginx → mock"),
                     ("sluice", "wrk → Sluice → mock")):
        p50, p99, prps, perr = lat[t]
        a50 = p50 - d50 if p50 is not None and d50 is not None else None
        a99 = p99 - d99 if p99 is not None and d99 is not None else None
        added[t] = (a50, a99)
        lines.append("| %s | %s/s | %s | %s | %s | %s | %d |" % (
            label, fmt(prps, 1), fmt(p50, 0, " µs"), fmt(p99, 0, " µs"),
            "–" if t == "direct" else fmt(a50, 0, " µs"),
            "–" if t == "direct" else fmt(a99, 0, " µs"), perr))
    lines.append("")
    a_sl, a_ng = added["sluice"][0], added["nginx"][0]
    if a_sl is not None and a_ng is not None:
        if a_ng > 0:
            ratio = a_sl / a_ng
            target("added median latency", f"{ratio:.2f}× nginx's ({a_sl:.0f} vs {a_ng:.0f} µs)",
                   "≤ 1.5× nginx's", ratio <= 1.5)
        else:
            target("added median latency", f"{a_sl:.0f} µs (nginx added {a_ng:.0f} µs)",
                   "≤ 1.5× nginx's", a_sl <= 0)
    ovh = (num(r, "paced.sluice.ovh_p50_us"), num(r, "paced.sluice.ovh_p99_us"),
           num(r, "paced.sluice.ovh_n"))
    lines.append("`x-sluice-overhead-us` over the %s paced Sluice requests: median %s, p99 %s." % (
        fmt(ovh[2]), fmt(ovh[0], 0, " µs"), fmt(ovh[1], 0, " µs")))
    lines.append("")

    # Provider translation: the same paced request to an Anthropic upstream.
    an = {k: num(r, f"paced.sluice_anthropic.{k}") for k in
          ("lat_p50_us", "lat_p99_us", "ovh_p50_us", "ovh_p99_us", "requests")}
    if an["lat_p50_us"] is not None:
        lines.append("### Provider translation: OpenAI request to Anthropic's Messages API")
        lines.append("")
        lines.append("The paced request above, through Sluice to the mock's `/v1/messages` "
                     "(request, answer and usage translated), against the OpenAI passthrough:")
        lines.append("")
        lines.append("| path | median | p99 | `x-sluice-overhead-us` median | p99 |")
        lines.append("|---|---:|---:|---:|---:|")
        lines.append("| Sluice → mock, OpenAI passthrough | %s | %s | %s | %s |" % (
            fmt(lat["sluice"][0], 0, " µs"), fmt(lat["sluice"][1], 0, " µs"),
            fmt(ovh[0], 0, " µs"), fmt(ovh[1], 0, " µs")))
        lines.append("| Sluice → mock, translated to Anthropic | %s | %s | %s | %s |" % (
            fmt(an["lat_p50_us"], 0, " µs"), fmt(an["lat_p99_us"], 0, " µs"),
            fmt(an["ovh_p50_us"], 0, " µs"), fmt(an["ovh_p99_us"], 0, " µs")))
        lines.append("")
        if an["ovh_p50_us"] is not None and ovh[0] is not None:
            added = an["ovh_p50_us"] - ovh[0]
            e2e = an["lat_p50_us"] - lat["sluice"][0] if lat["sluice"][0] is not None else None
            lines.append("Translation adds %s to the gateway's median time per request "
                         "(end to end the medians differ by %s, which also counts the mock's two "
                         "endpoints' own costs)." % (fmt(added, 0, " µs"), fmt(e2e, 0, " µs")))
            lines.append("")
            target("Anthropic translation, added median", f"{added:.0f} µs inside the gateway",
                   "≤ 10 µs", added <= 10)
    fb = {k: num(r, f"paced.sluice_fallback.{k}") for k in ("lat_p50_us", "ovh_p50_us", "ovh_p99_us")}
    if fb["ovh_p50_us"] is not None and ovh[0] is not None:
        added = fb["ovh_p50_us"] - ovh[0]
        lines.append("### Routing config: a 3-target fallback whose first target answers")
        lines.append("")
        lines.append("The paced request with `x-sluice-config` (its parsed form found in the worker's cache, then planned, on "
                     "every request), against the same request routed by headers: "
                     "`x-sluice-overhead-us` median %s (p99 %s) against %s, so the config adds "
                     "%s; end to end the medians are %s and %s." % (
                         fmt(fb["ovh_p50_us"], 0, " µs"), fmt(fb["ovh_p99_us"], 0, " µs"),
                         fmt(ovh[0], 0, " µs"), fmt(added, 0, " µs"),
                         fmt(fb["lat_p50_us"], 0, " µs"), fmt(lat["sluice"][0], 0, " µs")))
        lines.append("")
        target("3-target fallback config, added median", f"{added:.0f} µs inside the gateway",
               "≤ 5 µs", added <= 5)
    tt = {k: num(r, f"ttft.{k}") for k in
          ("direct_p50_us", "direct_p99_us", "sluice_p50_us", "sluice_p99_us", "n")}
    if tt["sluice_p50_us"] is not None:
        d50 = tt["sluice_p50_us"] - tt["direct_p50_us"]
        lines.append("Time to first token of an Anthropic stream (%s requests each, interleaved): "
                     "read from the mock directly, median %s (p99 %s); translated by Sluice into "
                     "OpenAI chunks, median %s (p99 %s): %s later." % (
                         fmt(tt["n"]), fmt(tt["direct_p50_us"], 0, " µs"),
                         fmt(tt["direct_p99_us"], 0, " µs"), fmt(tt["sluice_p50_us"], 0, " µs"),
                         fmt(tt["sluice_p99_us"], 0, " µs"), fmt(d50, 0, " µs")))
        lines.append("")
        target("first token through stream translation", f"{d50:.0f} µs after the upstream's",
               "≤ 1 ms", d50 <= 1000)
    if rounds > 1:
        lines.append("Each path ran %d rounds; the tables show its best round (most requests/s; "
                     "lowest paced median; fewest late stream chunks). All rounds:" % rounds)
    else:
        lines.append("One round per path:")
    lines.append("")
    for kind, t, vals, best in round_notes:
        what = {"tput": "req/s", "paced": "paced median µs",
                "stream": "stream chunks > 1 ms (max delay)"}[kind]
        extra = ""
        if kind == "tput":
            fp = [r.get(f"tput.r{i}.{t}.foreign_pct", "?") for i in range(1, rounds + 1)]
            extra = "; other processes' share of the machine: %s" % ", ".join(f"{x}%" for x in fp)
        lines.append("- %s, %s: %s (round %d kept%s)" % (
            t, what, ", ".join("%s (%s)" % (fmt(v[0]), fmt(v[1], 0, " µs")) if isinstance(v, tuple)
                               else fmt(v) for v in vals), best, extra))
    lines.append("")

    # Memory.
    idle = num(r, "rss.idle_kb")
    load = num(r, "rss.load_max_kb")
    before = num(r, "conns.rss_before_kb")
    withc = num(r, "conns.rss_with_conns_kb")
    afterc = num(r, "conns.rss_after_close_kb")
    nconn = num(r, "conns.conns_open")
    okc = num(r, "conns.conns_ok")
    lines.append("### Gateway memory (VmRSS, `--workers 1`)")
    lines.append("")
    lines.append("| state | RSS |")
    lines.append("|---|---:|")
    mib = lambda kb: None if kb is None else kb / 1024
    lines.append("| idle, just started | %s |" % fmt(mib(idle), 1, " MiB"))
    lines.append("| under load (peak during the throughput run) | %s |" % fmt(mib(load), 1, " MiB"))
    lines.append("| idle after the load | %s |" % fmt(mib(before), 1, " MiB"))
    lines.append("| with %s idle keep-alive connections (%s answered /health) | %s |" % (
        fmt(nconn), fmt(okc), fmt(mib(withc), 1, " MiB")))
    lines.append("| after closing them | %s |" % fmt(mib(afterc), 1, " MiB"))
    delta = withc - before if withc is not None and before is not None else None
    lines.append("| **added by the idle connections** | **%s** (%s per connection) |" % (
        fmt(mib(delta), 1, " MiB"),
        fmt(delta * 1024 / nconn if delta is not None and nconn else None, 0, " B")))
    lines.append("")
    if idle is not None:
        target("idle RSS", fmt(mib(idle), 1, " MiB"), "≤ 16 MiB", idle <= 16 * 1024)
    if delta is not None:
        target("RSS added by %s idle connections" % fmt(nconn), fmt(mib(delta), 1, " MiB"),
               "≤ 16 MiB", delta <= 16 * 1024 and okc == nconn)

    # Streaming.
    lines.append("### Streaming: %s chunks, 1 ms apart (delay = client arrival − mock send)" %
                 r.get("stream.chunks", "1000"))
    lines.append("")
    lines.append("| path | events | median | p99 | max | chunks > 1 ms | stream complete |")
    lines.append("|---|---:|---:|---:|---:|---:|---|")
    for t, label in (("direct", "client → mock (baseline)"),
                     ("nginx", "client → nginx → mock (`proxy_buffering off`)"),
                     ("sluice", "client → Sluice → mock")):
        p = f"stream.{t}."
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            label, fmt(num(r, p + "timed_events")), fmt(num(r, p + "delay_p50_us"), 0, " µs"),
            fmt(num(r, p + "delay_p99_us"), 0, " µs"), fmt(num(r, p + "delay_max_us"), 0, " µs"),
            fmt(num(r, p + "over_1ms")),
            "yes" if r.get(p + "done") == "1" and r.get(p + "error") == "0" else "**no**"))
    lines.append("")
    over = num(r, "stream.sluice.over_1ms")
    mx = num(r, "stream.sluice.delay_max_us")
    if over is not None:
        target("every stream chunk within 1 ms", "%s of %s chunks later than 1 ms (max %s)" % (
            fmt(over), fmt(num(r, "stream.sluice.timed_events")), fmt(mx, 0, " µs")),
            "0 chunks > 1 ms", over == 0 and r.get("stream.sluice.done") == "1")

    # Targets.
    tl = ["### Targets", "", "| target | goal | measured | |", "|---|---|---|---|"]
    for name, value, goal, ok in targets:
        tl.append(f"| {name} | {goal} | {value} | {'met' if ok else '**MISSED**'} |")
    tl.append("")
    missed = [t[0] for t in targets if not t[3]]

    meta = [
        f"- Date: {r.get('date', '?')}",
        f"- Command: `{a.command}`",
        f"- Commit: `{r.get('commit', '?')}`",
        f"- Machine: {r.get('cpu', '?')}, {r.get('cores', '?')} cores, Linux {r.get('kernel', '?')}",
        f"- Tools: {r.get('wrk_version', 'wrk')}, {r.get('nginx_version', 'nginx')}",
        f"- Pinning: {r.get('pinning', '?')}",
        f"- Load average (1, 5, 15 min) at start: {r.get('loadavg_start', '?')}; at end: {r.get('loadavg_end', '?')}",
        "",
    ]
    body = "\n".join(meta + tl + lines).rstrip() + "\n"
    print(body)
    if missed:
        print("targets missed: " + ", ".join(missed))
    else:
        print("all targets met")

    if a.doc:
        section = f"{START}\n{body}{END}"
        text = open(a.doc).read() if os.path.exists(a.doc) else ""
        if START in text and END in text:
            pre = text[: text.index(START)]
            post = text[text.index(END) + len(END):]
            text = pre + section + post
        else:
            text = text.rstrip() + "\n\n## Latest run\n\n" + section + "\n"
        with open(a.doc, "w") as f:
            f.write(text)
    if a.missed_file:
        with open(a.missed_file, "w") as f:
            f.write("\n".join(missed))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("idleconns")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--prefix", default="conns.")
    p = sub.add_parser("stream")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mock-base", required=True)
    p.add_argument("--chunks", type=int, default=1000)
    p.add_argument("--chunk-delay-ms", type=int, default=1)
    p.add_argument("--prefix", default="stream.")
    p = sub.add_parser("ttft")
    p.add_argument("--gw-port", type=int, required=True)
    p.add_argument("--mock-base", required=True)
    p.add_argument("--n", type=int, default=200)
    p = sub.add_parser("report")
    p.add_argument("--results", required=True)
    p.add_argument("--doc")
    p.add_argument("--command", default="bash tests/bench/run.sh build/release")
    p.add_argument("--missed-file")
    a = ap.parse_args()
    return {"idleconns": cmd_idleconns, "stream": cmd_stream, "ttft": cmd_ttft,
            "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main() or 0)
