"""
sluice-control when things go wrong around it, against real Postgres:

- Postgres stopped, killed or restarted under a running control plane: 503
  database_unavailable meanwhile (nothing half-written, /health still 200,
  /ready 503), then recovery by itself, data intact;
- replicas starting together on an empty database (each migration applied
  once, one bootstrap token);
- a control plane started before its Postgres;
- `sluice-control migrate` and an applied migration whose checksum changed;
- `sluice-control rotate-master-key`;
- bad settings, --help, signals.

Tests that stop or kill Postgres run their own PgServer; the others use the
shared one. Processes expected to fail run through subprocess directly.
"""
import glob
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
import unittest

import pgserver
from cpharness import BOOT, ControlPlane, control_binary, main, new_master_key
from harness import CHILD_ENV, SANITIZER_MARKERS, ProcessError, free_closed_port

HERE = os.path.dirname(os.path.abspath(__file__))
MIGRATION_FILES = sorted(glob.glob(os.path.join(HERE, "..", "..", "migrations", "*.sql")))
MIGRATION_VERSIONS = [int(os.path.basename(p).split("_", 1)[0]) for p in MIGRATION_FILES]
RECOVERY_S = 10.0  # "by itself within a few seconds", with margin for sanitizer builds

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # the ciphertext checks that need it are skipped
    AESGCM = None


def key_id(hex_key):
    """The master key's public fingerprint, as common/crypto.c computes it."""
    return hashlib.sha256(b"sluice-key-id" + bytes.fromhex(hex_key)).hexdigest()[:16]


def open_sealed(hex_key, sealed_hex, aad):
    """Opens a value cp_seal() stored: key id (16 chars) | nonce | ciphertext | tag."""
    raw = bytes.fromhex(sealed_hex)
    return AESGCM(bytes.fromhex(hex_key)).decrypt(raw[16:28], raw[28:], aad.encode())


def run_control(args, env=None, timeout=30.0):
    """Runs sluice-control to its end with only the given SLUICE_* settings;
    asserts it ended in time and without sanitizer findings."""
    binary = control_binary()
    e = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    e.update(CHILD_ENV)
    e.update(env or {})
    try:
        r = subprocess.run([binary] + list(args), env=e, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as ex:
        err = ex.stderr.decode("utf-8", "replace") if isinstance(ex.stderr, bytes) else ex.stderr
        raise AssertionError("sluice-control %s still running after %.0fs; stderr:\n%s"
                             % (" ".join(args), timeout, (err or "")[-4000:]))
    findings = [l for l in r.stderr.splitlines() if any(m in l for m in SANITIZER_MARKERS)]
    if findings:
        raise AssertionError("sanitizer findings:\n" + r.stderr[-8000:])
    return r


def closed_url(password=None):
    auth = "postgres" + (":" + password if password else "")
    return "postgresql://%s@127.0.0.1:%d/nothing_here" % (auth, free_closed_port())


class Base(unittest.TestCase):
    """Stops every control plane it started (exit 0, no sanitizer findings,
    no known secret in the logs) before its own Postgres servers go."""

    def setUp(self):
        self.procs = []
        self.secrets = [BOOT]

    def tearDown(self):
        errors = []
        for p in self.procs:
            try:
                p.stop()
            except ProcessError as e:
                errors.append(str(e))
        logs = "\n".join(p.stderr() for p in self.procs if p.proc is not None)
        for s in self.secrets:
            if s and s in logs:
                errors.append("a secret appears in the logs: %s..." % s[:12])
        if errors:
            raise AssertionError("\n".join(errors))

    # -- helpers ----------------------------------------------------------------

    def own_pg(self):
        """A private Postgres that this test may stop or kill; gone after the
        test (cleanups run after tearDown has stopped the control planes).
        fsync stays on: with it off pg.sh also turns synchronous_commit off,
        and kill() would then lose commits that were acknowledged."""
        pg = pgserver.PgServer()
        self.addCleanup(pg.stop)
        return pg.start()

    def new_cp(self, db, **kw):
        cp = ControlPlane(db, **kw)
        self.secrets.append(cp.master_key)
        self.procs.append(cp)
        return cp

    def api(self, cp, method, path, body=None, token=BOOT, headers=None):
        return cp.call(method, "/v1/admin" + path, body=body, token=token, headers=headers)

    def ok(self, cp, method, path, body=None, status=200, **kw):
        r = self.api(cp, method, path, body, **kw)
        self.assertEqual(r.status, status, r)
        return r.json

    def assert_json_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertTrue((r.header("content-type") or "").startswith("application/json"), r)
        e = r.json["error"]
        self.assertEqual(e.get("code"), code, r)
        self.assertTrue(e.get("type"), r)
        self.assertTrue(e.get("message"), r)
        return e

    def assert_db_down(self, r):
        e = self.assert_json_error(r, 503, "database_unavailable")
        self.assertEqual(e["type"], "api_error", r)
        # The default message names the database; a COMMIT that failed says so.
        self.assertTrue("database" in e["message"].lower() or "commit" in e["message"], r)
        return e

    def assert_health(self, cp):
        r = cp.call("GET", "/health", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json, {"status": "ok"})

    def assert_not_ready(self, cp):
        self.assert_db_down(cp.call("GET", "/ready", token=None))

    def wait_ready(self, cp, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            r = cp.call("GET", "/ready", token=None)
            if r.status == 200:
                return
            self.assert_db_down(r)
            if time.monotonic() > deadline:
                self.fail("not ready again within %.0fs: %r" % (timeout, r))
            time.sleep(0.1)

    def concurrently(self, n, fn):
        out = [None] * n
        barrier = threading.Barrier(n)

        def run(i):
            barrier.wait()
            out[i] = fn(i)

        ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        return out

    def poll_write(self, cp, body, timeout=RECOVERY_S):
        """POSTs body to /workspaces until it succeeds; the failures meanwhile
        must be the 503 of a database that is still away. Returns (created
        workspace, number of 503s)."""
        deadline = time.monotonic() + timeout
        failures = 0
        while True:
            r = self.api(cp, "POST", "/workspaces", body)
            if r.status == 201:
                return r.json, failures
            self.assert_db_down(r)
            failures += 1
            if time.monotonic() > deadline:
                self.fail("no write succeeded within %.0fs of Postgres coming back: %r; "
                          "stderr:\n%s" % (timeout, r, cp.stderr()[-3000:]))
            time.sleep(0.1)

    def metrics(self, cp):
        r = cp.call("GET", "/metrics", token=None)
        self.assertEqual(r.status, 200, r)
        out = {}
        for line in r.body.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


# ---------------------------------------------------------------------------
# 1. Postgres goes away under a running control plane
# ---------------------------------------------------------------------------

class PostgresGoesAway(Base):
    def _start(self):
        pg = self.own_pg()
        db = pg.create_database()
        cp = self.new_cp(db).start()
        ws = self.ok(cp, "POST", "/workspaces", {"name": "before", "metadata": {"team": "ml"}},
                     status=201)
        cred = "sk-proj-" + secrets.token_hex(20)
        self.secrets.append(cred)
        vk = self.ok(cp, "POST", "/virtual-keys",
                     {"name": "vk", "workspace_id": ws["id"], "provider": "openai",
                      "credentials": {"api_key": cred}}, status=201)
        # Several requests at once, so that the pool holds several connections
        # which all break when Postgres goes.
        for r in self.concurrently(8, lambda i: self.api(cp, "GET", "/workspaces")):
            self.assertEqual(r.status, 200, r)
        return pg, db.rsplit("/", 1)[1], cp, ws, vk

    def _while_down(self, cp, ws):
        for _ in range(6):  # more than the pool's connections: each one fails
            self.assert_db_down(self.api(cp, "GET", "/workspaces"))
        self.assert_db_down(self.api(cp, "GET", "/workspaces/" + ws["id"]))
        self.assert_db_down(self.api(cp, "GET", "/tokens/me"))
        self.assert_db_down(self.api(cp, "POST", "/workspaces", {"name": "while-down"}))
        self.assert_db_down(self.api(cp, "POST", "/workspaces", {"name": "while-down-idem"},
                                     headers={"Idempotency-Key": "idem-down"}))
        self.assert_db_down(self.api(cp, "PATCH", "/workspaces/" + ws["id"],
                                     {"name": "renamed-while-down"},
                                     headers={"If-Match": '"1"'}))
        self.assert_db_down(self.api(cp, "DELETE", "/workspaces/" + ws["id"]))
        # A bad token cannot be told from a good one now: still 503, not 401.
        self.assert_db_down(self.api(cp, "GET", "/workspaces", token="not-a-token-" * 2))
        self.assert_health(cp)
        self.assert_not_ready(cp)
        self.assertTrue(cp.alive())

    def _after(self, cp, pid, dbname, pg, ws, vk, written=False):
        if not written:
            self.poll_write(cp, {"name": "after"})
        self.wait_ready(cp)
        self.assertTrue(cp.alive())
        self.assertEqual(cp.pid, pid, "sluice-control was restarted")
        # Nothing written before is lost; nothing attempted while down exists.
        got = self.ok(cp, "GET", "/workspaces/" + ws["id"])
        self.assertEqual((got["name"], got["metadata"], got["version"]),
                         ("before", {"team": "ml"}, 1), got)
        self.assertEqual(self.ok(cp, "GET", "/virtual-keys/" + vk["id"])["id"], vk["id"])
        names = sorted(w["name"] for w in self.ok(cp, "GET", "/workspaces?limit=100")["data"])
        self.assertEqual(names, ["after", "before"])
        q = lambda sql: pg.query_rows(sql, db=dbname)
        self.assertEqual(q("SELECT count(*) FROM workspaces WHERE name LIKE '%while-down%'"),
                         [["0"]])
        self.assertEqual(q("SELECT count(*) FROM idempotency_keys WHERE idem_key = 'idem-down'"),
                         [["0"]])
        self.assertEqual(q("SELECT count(*) FROM audit_log WHERE coalesce(after::text, '') "
                           "LIKE '%while-down%' OR coalesce(before::text, '') "
                           "LIKE '%while-down%'"), [["0"]])
        self.assertEqual(q("SELECT count(*) FROM audit_log WHERE action LIKE '%delete%'"),
                         [["0"]])
        # The idempotent create refused while down was not reserved: it runs
        # now, once, and replays after that.
        hdr = {"Idempotency-Key": "idem-down"}
        r1 = self.api(cp, "POST", "/workspaces", {"name": "while-down-idem"}, headers=hdr)
        self.assertEqual(r1.status, 201, r1)
        self.assertIsNone(r1.header("idempotent-replayed"), r1)
        r2 = self.api(cp, "POST", "/workspaces", {"name": "while-down-idem"}, headers=hdr)
        self.assertEqual((r2.status, r2.header("idempotent-replayed")), (201, "true"), r2)
        self.assertEqual(r2.json, r1.json)
        # Recovered for good: everything answers, the pool's books balance.
        for i in range(12):
            r = self.api(cp, "GET", "/workspaces/" + ws["id"])
            self.assertEqual(r.status, 200, (i, r))
        m = self.metrics(cp)
        self.assertGreaterEqual(m["sluice_control_db_pool_open"], 1, m)
        self.assertLessEqual(m["sluice_control_db_pool_open"], m["sluice_control_db_pool_size"], m)
        self.assertLessEqual(m["sluice_control_db_pool_in_use"], 1, m)  # this very request

    def test_stopped_then_started(self):
        pg, dbname, cp, ws, vk = self._start()
        pid = cp.pid
        pg.stop_keep()
        self._while_down(cp, ws)
        pg.start_again()
        self._after(cp, pid, dbname, pg, ws, vk)

    def test_killed_then_started(self):
        pg, dbname, cp, ws, vk = self._start()
        pid = cp.pid
        pg.kill()
        self._while_down(cp, ws)
        pg.start_again()
        self._after(cp, pid, dbname, pg, ws, vk)

    def test_restarted(self):
        """restart(): every pooled connection is stale when Postgres is back.
        At worst each one costs a 503 (never another error); then all is well."""
        pg, dbname, cp, ws, vk = self._start()
        pid = cp.pid
        pg.restart()
        _, failures = self.poll_write(cp, {"name": "after"})
        self.assertLessEqual(failures, 4 + 1, "more 503s than stale pooled connections")
        self._after(cp, pid, dbname, pg, ws, vk, written=True)

    def test_restart_while_requests_run(self):
        """Creates in flight while Postgres restarts (five times) get 201 or a
        503 database_unavailable. Every 201 is stored; a 503 that says
        "nothing was changed" must be true: its row must not exist."""
        pg, dbname, cp, ws, vk = self._start()
        stop = threading.Event()
        results = []

        def writer(i):
            n = 0
            while not stop.is_set():
                n += 1
                name = "w-%d-%d" % (i, n)
                results.append((name, self.api(cp, "POST", "/workspaces", {"name": name})))

        ts = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
        for t in ts:
            t.start()
        try:
            for _ in range(5):  # the race hits about every other restart
                time.sleep(0.3)
                pg.restart()
            time.sleep(0.3)
        finally:
            stop.set()
            for t in ts:
                t.join(60)
        self.poll_write(cp, {"name": "after"})
        stored = {r[0] for r in pg.query_rows("SELECT name FROM workspaces WHERE name LIKE 'w-%'",
                                              db=dbname)}
        created, refused, untrue = set(), 0, []
        for name, r in results:
            if r.status == 201:
                created.add(name)
                continue
            e = self.assert_db_down(r)
            refused += 1
            if name in stored and "nothing was changed" in e["message"]:
                untrue.append((name, e["message"]))
        self.assertGreater(refused, 0, "no request met the restarts")
        self.assertEqual(created - stored, set(), "answered 201 but not stored")
        self.assertEqual(untrue, [], "answered 503 'nothing was changed' but the row was "
                                     "committed (%d answers, %d refused)"
                         % (len(results), refused))

    def test_metrics_answer_while_database_down(self):
        """/metrics needs no database (it reports the pool, connect failures
        included): it must answer while Postgres is away, as /health does."""
        cp = self.new_cp(closed_url()).start(ready=False)
        self.assert_db_down(self.api(cp, "GET", "/workspaces"))
        r = cp.call("GET", "/metrics", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"sluice_control_db_connect_failures_total", r.body)


# ---------------------------------------------------------------------------
# 2. Replicas starting together on an empty database
# ---------------------------------------------------------------------------

class ReplicasStartTogether(Base):
    def test_three_at_once_on_an_empty_database(self):
        pg = pgserver.shared()
        for _ in range(2):  # two rounds: more chances for the race
            db = pg.create_database()
            dbname = db.rsplit("/", 1)[1]
            cps = [self.new_cp(db) for _ in range(3)]
            self.concurrently(3, lambda i: cps[i].start(ready=False))
            for cp in cps:
                cp.wait_ready()
            rows = pg.query_rows("SELECT version, count(*) FROM schema_migrations "
                                 "GROUP BY version ORDER BY version", db=dbname)
            self.assertEqual(rows, [[str(v), "1"] for v in MIGRATION_VERSIONS])
            sums = pg.query_rows("SELECT checksum FROM schema_migrations ORDER BY version",
                                 db=dbname)
            for path, (s,) in zip(MIGRATION_FILES, sums):
                with open(path, "rb") as f:
                    self.assertEqual(s, hashlib.sha256(f.read()).hexdigest(), path)
            self.assertEqual(pg.query_rows("SELECT id, role, token_hint IS NOT NULL "
                                           "FROM admin_tokens", db=dbname),
                             [["tok_bootstrap", "owner", "t"]])
            logs = [cp.stderr() for cp in cps]
            applied = sum(int(m) for log in logs for m in
                          re.findall(r"database schema up to date \((\d+) migration", log))
            self.assertEqual(applied, len(MIGRATION_VERSIONS), logs)
            self.assertEqual(sum(log.count("installed the bootstrap owner token")
                                 for log in logs), 1, logs)
            # Every replica serves the same data.
            ws = self.ok(cps[0], "POST", "/workspaces", {"name": "via-0"}, status=201)
            for cp in cps[1:]:
                self.assertEqual(self.ok(cp, "GET", "/workspaces/" + ws["id"])["name"], "via-0")
            ws2 = self.ok(cps[2], "POST", "/workspaces", {"name": "via-2"}, status=201)
            names = {w["name"] for w in self.ok(cps[0], "GET", "/workspaces")["data"]}
            self.assertEqual(names, {"via-0", "via-2"})
            self.assertEqual(self.ok(cps[1], "GET", "/tokens/me")["id"], "tok_bootstrap")
            self.assertTrue(ws2["id"])
            for cp in cps:
                cp.stop()


# ---------------------------------------------------------------------------
# 3. Started before Postgres
# ---------------------------------------------------------------------------

class StartedBeforePostgres(Base):
    def test_waits_then_migrates_and_becomes_ready(self):
        pg = self.own_pg()
        db = pg.create_database()
        dbname = db.rsplit("/", 1)[1]
        pg.stop_keep()
        cp = self.new_cp(db).start(ready=False)
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            self.assert_health(cp)
            self.assert_not_ready(cp)
            self.assert_db_down(self.api(cp, "GET", "/workspaces"))
            time.sleep(0.2)
        self.assertIn("database unreachable; retrying", cp.stderr())
        pg.start_again()
        cp.wait_ready(timeout=20)
        self.assertEqual(pg.query_rows("SELECT count(*) FROM schema_migrations", db=dbname),
                         [[str(len(MIGRATION_VERSIONS))]])
        self.assertEqual(self.ok(cp, "GET", "/tokens/me")["id"], "tok_bootstrap")
        self.ok(cp, "POST", "/workspaces", {"name": "late"}, status=201)

    def test_unreachable_database_then_sigterm(self):
        """Waiting for a database that never comes: /health 200, /ready 503
        saying why, and SIGTERM still ends it with 0 (tearDown checks)."""
        pw = "pw-" + secrets.token_hex(8)
        self.secrets.append(pw)
        cp = self.new_cp(closed_url(pw)).start(ready=False)
        time.sleep(0.3)
        self.assert_health(cp)
        self.assert_not_ready(cp)
        self.assertTrue(cp.alive())
        cp.stop()
        self.assertNotIn(pw, cp.stderr())


# ---------------------------------------------------------------------------
# 4. sluice-control migrate
# ---------------------------------------------------------------------------

class MigrateCommand(Base):
    def test_migrate_then_again_then_changed_checksum(self):
        pg = pgserver.shared()
        db = pg.create_database()
        dbname = db.rsplit("/", 1)[1]
        env = {"SLUICE_DATABASE_URL": db}  # no master key: migrate needs none
        r = run_control(["migrate"], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("(%d migration(s) applied)" % len(MIGRATION_VERSIONS), r.stdout)
        r = run_control(["migrate"], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("(0 migration(s) applied)", r.stdout)
        self.assertEqual(pg.query_rows("SELECT version FROM schema_migrations ORDER BY 1",
                                       db=dbname), [[str(v)] for v in MIGRATION_VERSIONS])

        pg.psql("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1", db=dbname)
        r = run_control(["migrate"], env)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("changed after it was applied", r.stderr)
        self.assertIn(os.path.basename(MIGRATION_FILES[0]), r.stderr)
        self.assertNotIn("schema up to date", r.stdout)

        # serve refuses as well: it exits non-zero and is never ready.
        cp = ControlPlane(db)
        self.secrets.append(cp.master_key)
        cp.start(ready=False)
        try:
            deadline = time.monotonic() + 20
            while cp.alive() and time.monotonic() < deadline:
                try:
                    rr = cp.call("GET", "/ready", token=None, timeout=5)
                    self.assertNotEqual(rr.status, 200, rr)
                except OSError:
                    pass
                time.sleep(0.1)
            rc = cp.wait(1)
            self.assertIsNotNone(rc, "serve kept running with a changed migration")
            self.assertNotEqual(rc, 0)
            self.assertIn("changed after it was applied", cp.stderr())
            self.assertEqual(cp.sanitizer_findings(), [])
        finally:
            cp.kill()
        self.assertEqual(pg.query_rows("SELECT checksum FROM schema_migrations WHERE version = 1",
                                       db=dbname), [["x"]])
        self.assertEqual(pg.query_rows("SELECT count(*) FROM admin_tokens", db=dbname), [["0"]])

    def test_migrate_database_down(self):
        pw = "pw-" + secrets.token_hex(8)
        t0 = time.monotonic()
        r = run_control(["migrate"], {"SLUICE_DATABASE_URL": closed_url(pw)}, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot connect to Postgres", r.stderr)
        self.assertNotIn(pw, r.stderr + r.stdout)
        self.assertLess(time.monotonic() - t0, 15)


# ---------------------------------------------------------------------------
# 5. Master key rotation
# ---------------------------------------------------------------------------

class MasterKeyRotation(Base):
    def rows(self, pg, dbname):
        vk = pg.query_rows("SELECT id, secret_key_id, encode(secret, 'hex') FROM virtual_keys "
                           "ORDER BY id", db=dbname)
        idem = pg.query_rows("SELECT actor_id, idem_key, encode(response, 'hex') "
                             "FROM idempotency_keys ORDER BY 1, 2", db=dbname)
        return vk, idem

    def rotate(self, db, old, new):
        return run_control(["rotate-master-key"], {"SLUICE_DATABASE_URL": db,
                                                   "SLUICE_MASTER_KEY": old,
                                                   "SLUICE_NEW_MASTER_KEY": new})

    def assert_quiet(self, r, *keys):
        for k in keys:
            self.assertNotIn(k, r.stdout + r.stderr)

    def test_rotate(self):
        pg = pgserver.shared()
        db = pg.create_database()
        dbname = db.rsplit("/", 1)[1]
        old, new = new_master_key(), new_master_key()
        self.secrets += [old, new]
        cp = self.new_cp(db, master_key=old).start()
        ws = self.ok(cp, "POST", "/workspaces", {"name": "acme"}, status=201)["id"]
        creds = {}
        for i in range(2):
            c = "sk-proj-" + secrets.token_hex(20)
            self.secrets.append(c)
            j = self.ok(cp, "POST", "/virtual-keys", {"name": "vk%d" % i, "workspace_id": ws,
                                                       "provider": "openai",
                                                       "credentials": {"api_key": c}},
                        status=201)
            creds[j["id"]] = c
        c = "sk-proj-" + secrets.token_hex(20)
        self.secrets.append(c)
        idem_body = {"name": "vk-idem", "workspace_id": ws, "provider": "openai",
                     "credentials": {"api_key": c}}
        hdr = {"Idempotency-Key": "rot-1"}
        first = self.api(cp, "POST", "/virtual-keys", idem_body, headers=hdr)
        self.assertEqual(first.status, 201, first)
        creds[first.json["id"]] = c
        again = self.api(cp, "POST", "/virtual-keys", idem_body, headers=hdr)
        self.assertEqual((again.status, again.header("idempotent-replayed")), (201, "true"))
        self.assertEqual(again.body, first.body)
        cp.stop()

        vk0, idem0 = self.rows(pg, dbname)
        self.assertEqual(len(vk0), 3)
        self.assertGreaterEqual(len(idem0), 1)
        for _, kid, sealed in vk0:
            self.assertEqual(kid, key_id(old))
            self.assertEqual(bytes.fromhex(sealed)[:16].decode(), key_id(old))

        r = self.rotate(db, old, new)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("re-encrypted %d secret(s)" % (len(vk0) + len(idem0)), r.stdout)
        self.assertIn(key_id(new), r.stdout)
        self.assert_quiet(r, old, new)
        vk1, idem1 = self.rows(pg, dbname)
        self.assertEqual([v[0] for v in vk1], [v[0] for v in vk0])
        for (vid, kid, sealed), (_, _, sealed0) in zip(vk1, vk0):
            self.assertEqual(kid, key_id(new), vid)
            self.assertEqual(bytes.fromhex(sealed)[:16].decode(), key_id(new), vid)
            self.assertNotEqual(sealed, sealed0, vid)
            if AESGCM is not None:
                plain = open_sealed(new, sealed, "vk:" + vid).decode()
                self.assertIn(creds[vid], plain)
        self.assertEqual([i[:2] for i in idem1], [i[:2] for i in idem0])
        for (actor, key, resp), (_, _, resp0) in zip(idem1, idem0):
            self.assertNotEqual(resp, resp0)
            self.assertEqual(bytes.fromhex(resp)[:16].decode(), key_id(new))
            if AESGCM is not None and key == "rot-1":
                plain = open_sealed(new, resp, "idem:%s:%s" % (actor, key))
                self.assertEqual(json.loads(plain), first.json)

        # The control plane with the new key serves, and the stored answer
        # of the idempotent create still replays.
        cp2 = self.new_cp(db, master_key=new).start()
        replay = self.api(cp2, "POST", "/virtual-keys", idem_body, headers=hdr)
        self.assertEqual((replay.status, replay.header("idempotent-replayed")), (201, "true"),
                         replay)
        self.assertEqual(replay.json, first.json)
        listed = self.ok(cp2, "GET", "/virtual-keys")["data"]
        self.assertEqual(sorted(v["id"] for v in listed), sorted(creds))
        c4 = "sk-proj-" + secrets.token_hex(20)
        self.secrets.append(c4)
        j4 = self.ok(cp2, "POST", "/virtual-keys", {"name": "vk-new", "workspace_id": ws,
                                                     "provider": "openai",
                                                     "credentials": {"api_key": c4}}, status=201)
        cp2.stop()
        self.assertEqual(pg.query_rows("SELECT secret_key_id FROM virtual_keys WHERE id = '%s'"
                                       % j4["id"], db=dbname), [[key_id(new)]])

        # Again with the same keys: harmless, nothing changes.
        snap = self.rows(pg, dbname)
        r = self.rotate(db, old, new)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("re-encrypted 0 secret(s)", r.stdout)
        self.assertEqual(self.rows(pg, dbname), snap)

        # A wrong "old" key: refused, nothing changes.
        wrong, other = new_master_key(), new_master_key()
        r = self.rotate(db, wrong, other)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("does not open with the current master key", r.stderr)
        self.assertIn("nothing changed", r.stderr)
        self.assert_quiet(r, wrong, other, new)
        self.assertEqual(self.rows(pg, dbname), snap)

        # The same key as old and new: refused.
        r = self.rotate(db, new, new)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("is the current one", r.stderr)
        self.assert_quiet(r, new)
        self.assertEqual(self.rows(pg, dbname), snap)

    def test_rotate_idempotency_records_only(self):
        """The same checks on a database without virtual keys: only the stored
        answers of idempotent creates are sealed."""
        pg = pgserver.shared()
        db = pg.create_database()
        dbname = db.rsplit("/", 1)[1]
        old, new = new_master_key(), new_master_key()
        self.secrets += [old, new]
        cp = self.new_cp(db, master_key=old).start()
        hdr = {"Idempotency-Key": "ws-1"}
        first = self.api(cp, "POST", "/workspaces", {"name": "idem"}, headers=hdr)
        self.assertEqual(first.status, 201, first)
        cp.stop()
        _, idem0 = self.rows(pg, dbname)
        self.assertEqual(len(idem0), 1)

        r = self.rotate(db, old, new)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("re-encrypted 1 secret(s)", r.stdout)
        self.assert_quiet(r, old, new)
        snap = self.rows(pg, dbname)
        self.assertNotEqual(snap[1][0][2], idem0[0][2])
        self.assertEqual(bytes.fromhex(snap[1][0][2])[:16].decode(), key_id(new))

        cp2 = self.new_cp(db, master_key=new).start()
        replay = self.api(cp2, "POST", "/workspaces", {"name": "idem"}, headers=hdr)
        self.assertEqual((replay.status, replay.header("idempotent-replayed")), (201, "true"),
                         replay)
        self.assertEqual(replay.json, first.json)
        cp2.stop()

        r = self.rotate(db, old, new)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("re-encrypted 0 secret(s)", r.stdout)
        self.assertEqual(self.rows(pg, dbname), snap)

        wrong, other = new_master_key(), new_master_key()
        r = self.rotate(db, wrong, other)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("does not open with the current master key", r.stderr)
        self.assert_quiet(r, wrong, other, new)
        self.assertEqual(self.rows(pg, dbname), snap)

    def test_rotate_without_new_key_says_what_to_set(self):
        db = pgserver.shared().create_database()
        r = run_control(["rotate-master-key"], {"SLUICE_DATABASE_URL": db,
                                                "SLUICE_MASTER_KEY": new_master_key()})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no new master key", r.stderr)
        # The variable to set is SLUICE_NEW_MASTER_KEY (or the file flag),
        # not the current key's SLUICE_MASTER_KEY.
        self.assertIn("SLUICE_NEW_MASTER_KEY", r.stderr)


# ---------------------------------------------------------------------------
# 6. Bad settings, --help, signals
# ---------------------------------------------------------------------------

class Settings(Base):
    def test_no_database_url(self):
        for cmd in ([], ["serve"], ["migrate"], ["rotate-master-key"]):
            r = run_control(cmd, {"SLUICE_MASTER_KEY": new_master_key(),
                                  "SLUICE_CONTROL_LISTEN": "127.0.0.1:0"}, timeout=10)
            self.assertEqual(r.returncode, 2, (cmd, r.stderr))
            self.assertIn("SLUICE_DATABASE_URL", r.stderr, cmd)
            self.assertNotIn("listening on", r.stdout, cmd)

    def test_malformed_master_key(self):
        bad = ["not-a-key-" + secrets.token_hex(8),
               secrets.token_hex(31),           # 62 hex characters
               secrets.token_hex(32) + "ab",    # 66
               "zz" + secrets.token_hex(31)]    # not hex, not 32 bytes of base64
        for key in bad:
            for cmd in ([], ["rotate-master-key"]):
                r = run_control(cmd + ["--listen", "127.0.0.1:0"],
                                {"SLUICE_DATABASE_URL": closed_url(), "SLUICE_MASTER_KEY": key,
                                 "SLUICE_NEW_MASTER_KEY": new_master_key()}, timeout=10)
                self.assertEqual(r.returncode, 2, (key, cmd, r.stderr))
                self.assertIn("master key", r.stderr)
                self.assertNotIn(key, r.stderr + r.stdout)
                self.assertNotIn(key[:20], r.stderr + r.stdout)
                self.assertNotIn("listening on", r.stdout)
        # None at all, or a file that is not there.
        r = run_control(["--listen", "127.0.0.1:0"], {"SLUICE_DATABASE_URL": closed_url()},
                        timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("SLUICE_MASTER_KEY", r.stderr)
        r = run_control(["--listen", "127.0.0.1:0", "--master-key-file", "/nonexistent/key"],
                        {"SLUICE_DATABASE_URL": closed_url()}, timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("/nonexistent/key", r.stderr)

    def test_short_bootstrap_token(self):
        db = pgserver.shared().create_database()
        short = "tooshort-" + secrets.token_hex(3)  # 15 characters
        r = run_control(["--listen", "127.0.0.1:0"],
                        {"SLUICE_DATABASE_URL": db, "SLUICE_MASTER_KEY": new_master_key(),
                         "SLUICE_BOOTSTRAP_TOKEN": short}, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("at least 16 characters", r.stderr)
        self.assertNotIn(short, r.stderr + r.stdout)
        dbname = db.rsplit("/", 1)[1]
        pg = pgserver.shared()
        if pg.scalar("SELECT to_regclass('admin_tokens') IS NOT NULL", db=dbname) == "t":
            self.assertEqual(pg.query_rows("SELECT count(*) FROM admin_tokens", db=dbname),
                             [["0"]])

    def test_short_bootstrap_token_refused_without_waiting_for_the_database(self):
        """A bad setting is refused at start, like a bad master key, rather
        than after the database has been reached (which may be never)."""
        short = "tooshort-" + secrets.token_hex(3)
        r = run_control(["--listen", "127.0.0.1:0"],
                        {"SLUICE_DATABASE_URL": closed_url(),
                         "SLUICE_MASTER_KEY": new_master_key(),
                         "SLUICE_BOOTSTRAP_TOKEN": short}, timeout=6)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("at least 16 characters", r.stderr)
        self.assertNotIn(short, r.stderr + r.stdout)

    def test_bad_arguments(self):
        env = {"SLUICE_DATABASE_URL": closed_url(), "SLUICE_MASTER_KEY": new_master_key()}
        for args, what in ((["frobnicate"], "unknown command"),
                           (["--no-such-flag"], "usage"),
                           (["serve", "extra"], "unexpected argument"),
                           (["--threads", "0"], "--threads"),
                           (["--log-level", "loud"], "log level")):
            r = run_control(args, env, timeout=10)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(what, r.stderr, args)

    def test_help_and_version(self):
        r = run_control(["--help"], timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        for word in ("SLUICE_DATABASE_URL", "SLUICE_MASTER_KEY", "SLUICE_BOOTSTRAP_TOKEN",
                     "--listen", "migrate", "rotate-master-key", "SLUICE_NEW_MASTER_KEY"):
            self.assertIn(word, r.stdout)
        r = run_control(["--version"], timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^sluice-control \d+\.\d+\.\d+")
        r = run_control(["routes"], timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertIn("GET /ready", r.stdout)

    def test_signals_exit_zero(self):
        db = pgserver.shared().create_database()
        cp = self.new_cp(db).start()
        cp.stop()  # SIGTERM: asserts exit 0 and no sanitizer findings
        cp2 = self.new_cp(db).start()
        cp2.signal(signal.SIGINT)
        self.assertEqual(cp2.wait(5), 0, cp2.stderr()[-3000:])
        self.assertIn("stopping", cp2.stderr())


if __name__ == "__main__":
    main()
