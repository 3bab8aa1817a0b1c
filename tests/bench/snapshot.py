#!/usr/bin/env python3
"""
Snapshot benchmark (part of `make bench`): a control plane with 100,000 API
keys and 10,000 virtual keys, four gateways on it, and the mock provider.
Measures: full-snapshot build time (control plane log), verify+apply time on
a gateway (its log), change-to-all-nodes propagation (from an admin API 201
to the new key answering on all 4 nodes, 20 samples), and request latency
through a gateway (wrk) steady versus during snapshot swaps.

    python3 tests/bench/snapshot.py BUILD_DIR [--doc docs/benchmarks.md]
"""
import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import pgserver  # noqa: E402

NKEYS = int(os.environ.get("SLUICE_BENCH_KEYS", "100000"))
NVKEYS = int(os.environ.get("SLUICE_BENCH_VKEYS", "10000"))
NODES = 4


def free_port_pair():
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        try:
            t = socket.socket()
            t.bind(("127.0.0.1", p + 1))
            t.close()
            return p
        except OSError:
            continue


def start(argv, env, log):
    out = open(log + ".out", "w+")
    p = subprocess.Popen(argv, env=env, stdout=out, stderr=open(log, "w"))
    for _ in range(300):
        out.seek(0)
        m = re.search(r"listening on [^:]+:(\d+)", out.read())
        if m:
            return p, int(m.group(1))
        time.sleep(0.05)
    raise RuntimeError("%s did not start: %s" % (argv[0], open(log).read()[-2000:]))


def call(port, method, path, body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = dict(headers or {})
    data = json.dumps(body).encode() if body is not None else None
    if data is not None:
        h["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    out = (r.status, r.read())
    c.close()
    return out


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--doc")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    tmp = tempfile.mkdtemp(prefix="sluice-snapbench.")
    os.chmod(tmp, 0o755)
    procs = []
    pg = pgserver.PgServer().start()
    try:
        db = pg.create_database("snapbench")
        boot = "bench-" + secrets.token_hex(16)
        env = dict(os.environ, SLUICE_DATABASE_URL=db, SLUICE_MASTER_KEY=secrets.token_hex(32),
                   SLUICE_BOOTSTRAP_TOKEN=boot, SLUICE_SNAPSHOT_SIGNING_KEY=secrets.token_hex(32),
                   SLUICE_DATAPLANE_KEY=secrets.token_hex(32))
        pub = subprocess.check_output([build + "/controlplane/sluice-control", "public-key"],
                                      env=env).decode().strip()
        env["SLUICE_SNAPSHOT_PUBLIC_KEY"] = pub
        snap = free_port_pair()
        cp, cport = start([build + "/controlplane/sluice-control", "--listen", "127.0.0.1:0",
                           "--snapshot-listen", "tcp://127.0.0.1:%d" % snap], env, tmp + "/cp.log")
        procs.append(cp)
        for _ in range(200):
            if call(cport, "GET", "/ready")[0] == 200:
                break
            time.sleep(0.05)
        H = {"Authorization": "Bearer " + boot}
        st, b = call(cport, "POST", "/v1/admin/workspaces", {"name": "bench"}, H)
        ws = json.loads(b)["id"]
        # 100k keys straight into Postgres (their secrets are never used);
        # virtual keys through the API, since their secrets are sealed there.
        pg.psql("INSERT INTO api_keys (id, workspace_id, name, key_hash, key_hint) "
                "SELECT 'key_bench_' || g, '%s', 'k' || g, sha256(('bench-' || g)::bytea), 'x' "
                "FROM generate_series(1, %d) g" % (ws, NKEYS), db="snapbench")
        lock = threading.Lock()
        made = []

        def make_vkeys(n):
            for _ in range(n):
                st, b = call(cport, "POST", "/v1/admin/virtual-keys",
                             {"name": "vk", "workspace_id": ws, "provider": "openai",
                              "credentials": {"api_key": "sk-" + secrets.token_hex(20)}}, H)
                with lock:
                    made.append(json.loads(b)["id"])

        ts = [threading.Thread(target=make_vkeys, args=(NVKEYS // 8,)) for _ in range(8)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        vk = made[0]
        mock, mport = start([build + "/tests/mock_provider/mock_provider", "--port", "0",
                             "--no-record"], env, tmp + "/mock.log")
        procs.append(mock)
        gws = []
        for i in range(NODES):
            g, gport = start([build + "/dataplane/sluice-gateway", "--listen", "127.0.0.1:0",
                              "--workers", "1", "--control", "tcp://127.0.0.1:%d" % snap,
                              "--node-id", "bench-%d" % i], env, tmp + "/gw%d.log" % i)
            procs.append(g)
            gws.append(gport)
        time.sleep(3)  # every node on the latest snapshot

        def works(port, key):
            st, _ = call(port, "POST", "/v1/chat/completions",
                         {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                         {"Authorization": "Bearer " + key, "x-sluice-virtual-key": vk,
                          "x-sluice-custom-host": "http://127.0.0.1:%d/v1" % mport})
            return st == 200

        prop = []
        for i in range(20):
            st, b = call(cport, "POST", "/v1/admin/api-keys", {"name": "p%d" % i, "workspace_id": ws}, H)
            t0 = time.monotonic()
            key = json.loads(b)["key"]
            pending = set(gws)
            while pending and time.monotonic() - t0 < 10:
                for p in list(pending):
                    if works(p, key):
                        pending.discard(p)
                time.sleep(0.002)
            prop.append((time.monotonic() - t0) * 1000)
            time.sleep(0.3)
        # request latency through one gateway: steady, then with a swap every 300 ms
        lua = tmp + "/req.lua"
        with open(lua, "w") as f:
            f.write('wrk.method="POST"\nwrk.headers["Authorization"]="Bearer %s"\n'
                    'wrk.headers["x-sluice-virtual-key"]="%s"\n'
                    'wrk.headers["x-sluice-custom-host"]="http://127.0.0.1:%d/v1"\n'
                    'wrk.headers["Content-Type"]="application/json"\n'
                    'wrk.body=\'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}\'\n'
                    % (key, vk, mport))

        def wrk():
            out = subprocess.check_output(["wrk", "-t1", "-c8", "-d8s", "--latency", "-R", "2000",
                                           "-s", lua, "http://127.0.0.1:%d/v1/chat/completions" % gws[0]],
                                          stderr=subprocess.STDOUT).decode() \
                if shutil.which("wrk2") else subprocess.check_output(
                    ["wrk", "-t1", "-c8", "-d8s", "--latency", "-s", lua,
                     "http://127.0.0.1:%d/v1/chat/completions" % gws[0]]).decode()
            lat = {m.group(1): m.group(2) for m in re.finditer(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
            rps = re.search(r"Requests/sec:\s+(\S+)", out).group(1)
            return lat, rps

        steady = wrk()
        stop = threading.Event()

        def churn():
            i = 0
            while not stop.is_set():
                call(cport, "PATCH", "/v1/admin/workspaces/" + ws, {"description": "d%d" % i}, H)
                i += 1
                stop.wait(0.3)

        th = threading.Thread(target=churn)
        th.start()
        swapping = wrk()
        stop.set()
        th.join()
        cplog = open(tmp + "/cp.log").read()
        full = re.findall(r"%d virtual key\(s\), \d+ config\(s\), \d+ price\(s\), (\d+) bytes, "
                          r"built in ([\d.]+) ms" % NVKEYS, cplog)
        builds = [float(b) for _, b in full]
        sizes = [s for s, _ in full]
        gwlog = open(tmp + "/gw0.log").read()
        applies = [float(x) for x in re.findall(r"%d virtual key\(s\).*applied in ([\d.]+) ms" % NVKEYS, gwlog)]
        swaps = len(re.findall(r"snapshot \d+ in use", gwlog))
        rows = [
            ("snapshot build, %d keys + %d virtual keys (median of %d)" % (NKEYS + 20, NVKEYS, len(builds)),
             "%.0f ms" % pct(builds, 50) if builds else "n/a", "≤ 1 s"),
            ("snapshot size", "%.1f MB" % (int(sizes[-1]) / 1e6) if sizes else "n/a", ""),
            ("verify + decode + swap on a gateway (median of %d)" % len(applies),
             "%.0f ms" % pct(applies, 50) if applies else "n/a", "≤ 200 ms"),
            ("change → all %d nodes, p50 / p99 (max) of %d" % (NODES, len(prop)),
             "%.0f / %.0f ms" % (pct(prop, 50), max(prop)), "p99 ≤ 50 ms"),
            ("request p99 through a gateway, steady / during swaps",
             "%s / %s" % (steady[0].get("99"), swapping[0].get("99")), "within 10%"),
            ("requests/s steady / during swaps (%d swaps)" % swaps, "%s / %s" % (steady[1], swapping[1]), ""),
        ]
        md = ["<!-- snapshot-bench:start -->", "### Snapshots (latest run)", "",
              "`python3 tests/bench/snapshot.py build/release` (part of `make bench`), %s: one "
              "sluice-control, PostgreSQL, %d gateways (1 worker each) and the mock on this "
              "2-core machine." % (time.strftime("%Y-%m-%d"), NODES), "",
              "| measurement | result | target |", "|---|---|---|"]
        md += ["| %s | %s | %s |" % r for r in rows]
        md += ["<!-- snapshot-bench:end -->"]
        text = "\n".join(md)
        print(text)
        if a.doc:
            doc = open(a.doc).read()
            pat = re.compile(r"<!-- snapshot-bench:start -->.*?<!-- snapshot-bench:end -->", re.S)
            doc = pat.sub(lambda m: text, doc) if pat.search(doc) else doc.rstrip("\n") + "\n\n" + text + "\n"
            open(a.doc, "w").write(doc)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
