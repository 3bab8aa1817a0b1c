"""
Control-plane test harness: a real sluice-control process against a real
PostgreSQL server (pgserver.py), on free loopback ports.

Each CPTestCase test gets a fresh database of the module's shared Postgres
server and a fresh sluice-control on it (migrations applied at start, the
bootstrap owner token installed). tearDown stops the process, asserts a
clean exit without sanitizer findings, and asserts that no secret the test
saw (API keys, admin tokens, provider credentials: everything passed to
self.secret()) appears in anything the process logged: it runs at debug
level, so every request is logged.
"""
import http.client
import json
import os
import secrets
import time
import unittest

import pgserver
from harness import Process, ProcessError, parse_binary_args, _binary

BOOT = "boot-" + secrets.token_hex(16)


def control_binary():
    return _binary("SLUICE_CONTROL", "controlplane/sluice-control")


def new_master_key():
    return secrets.token_hex(32)


class ControlPlane(Process):
    name = "sluice-control"

    def __init__(self, db_url, master_key=None, bootstrap=BOOT, args=(), env=None):
        self.master_key = master_key or new_master_key()
        super().__init__([control_binary(), "--listen", "127.0.0.1:0", "--threads", "4",
                          "--log-level", "debug"] + list(args))
        self.extra_env = {"SLUICE_DATABASE_URL": db_url, "SLUICE_MASTER_KEY": self.master_key}
        if bootstrap is not None:
            self.extra_env["SLUICE_BOOTSTRAP_TOKEN"] = bootstrap
        self.extra_env.update(env or {})

    def start(self, timeout=None, ready=True):
        super().start() if timeout is None else super().start(timeout)
        if ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise ProcessError("sluice-control exited; stderr:\n" + self.stderr()[-4000:])
            try:
                last = self.call("GET", "/ready", token=None)
                if last.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise ProcessError("sluice-control not ready in %.0fs (%s); stderr:\n%s"
                           % (timeout, last, self.stderr()[-4000:]))

    def call(self, method, path, body=None, token=BOOT, headers=None, raw=None, timeout=30.0):
        """One request on a fresh connection. body: a JSON-able value; raw: bytes as is."""
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        h = {}
        if token is not None:
            h["Authorization"] = "Bearer " + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        try:
            c.request(method, path, body=data, headers=h,
                      encode_chunked=h.get("Transfer-Encoding") == "chunked")
            r = c.getresponse()
            return Resp(r.status, r.getheaders(), r.read())
        finally:
            c.close()


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        self._json = None

    @property
    def json(self):
        if self._json is None:
            self._json = json.loads(self.body)
        return self._json

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:2000].decode("utf-8", "replace"))


class CPTestCase(unittest.TestCase):
    """A fresh database and sluice-control per test."""

    cp_args = ()

    @classmethod
    def setUpClass(cls):
        cls.pg = pgserver.shared()

    def setUp(self):
        self._secrets = [BOOT]
        self.db = self.pg.create_database()
        self.cp = ControlPlane(self.db, args=self.cp_args).start()
        self._extra = []

    def tearDown(self):
        errors = []
        for p in [self.cp] + self._extra:
            try:
                p.stop()
            except ProcessError as e:
                errors.append(str(e))
        logs = "\n".join(p.stderr() for p in [self.cp] + self._extra)
        for s in self._secrets:
            if s and s in logs:
                errors.append("a secret appears in the logs: %s..." % s[:12])
        if errors:
            raise AssertionError("\n".join(errors))

    # -- helpers ----------------------------------------------------------------

    def secret(self, s):
        """Remembers a secret that must never be logged."""
        self._secrets.append(s)
        return s

    def start_cp(self, db=None, **kw):
        p = ControlPlane(db or self.db, **kw)
        self._extra.append(p)
        return p.start()

    def api(self, method, path, body=None, token=BOOT, headers=None, raw=None, cp=None):
        r = (cp or self.cp).call(method, "/v1/admin" + path, body=body, token=token,
                                 headers=headers, raw=raw)
        self.assertTrue((r.header("content-type") or "").startswith("application/json"), r)
        # Whatever the route, no answer may hold a secret we know of, except
        # the create/rotate answers that show one once (checked by callers).
        return r

    def ok(self, method, path, body=None, status=200, **kw):
        r = self.api(method, path, body, **kw)
        self.assertEqual(r.status, status, r)
        return r.json

    def err(self, r, status, code=None, param=None):
        self.assertEqual(r.status, status, r)
        e = r.json["error"]
        for k in ("message", "type", "code"):
            self.assertIn(k, e, r)
        self.assertTrue(e["message"])
        if code is not None:
            self.assertEqual(e["code"], code, r)
        if param is not None:
            self.assertEqual(e.get("param"), param, r)
        return e

    def workspace(self, name="acme", token=BOOT):
        return self.ok("POST", "/workspaces", {"name": name}, status=201, token=token)["id"]

    def token(self, role, workspace=None, token=BOOT):
        body = {"name": role + "-token", "role": role}
        if workspace is not None:
            body["workspace_id"] = workspace
        j = self.ok("POST", "/tokens", body, status=201, token=token)
        return self.secret(j["token"])

    def api_key(self, ws, token=BOOT, **fields):
        body = {"name": "app", "workspace_id": ws}
        body.update(fields)
        j = self.ok("POST", "/api-keys", body, status=201, token=token)
        self.secret(j["key"])
        return j

    def virtual_key(self, ws, provider="openai", credentials=None, token=BOOT, **fields):
        cred = credentials or {"api_key": "sk-proj-" + secrets.token_hex(20)}
        for v in cred.values():
            if isinstance(v, str):
                self.secret(v)
        body = {"name": "vk", "workspace_id": ws, "provider": provider, "credentials": cred}
        body.update(fields)
        return self.ok("POST", "/virtual-keys", body, status=201, token=token)

    def sql(self, q):
        return self.pg.query_rows(q, db=self.db.rsplit("/", 1)[1])

    def list_all(self, path, token=BOOT, limit=100):
        """Follows next_cursor to the end; returns every item."""
        items, after = [], None
        sep = "&" if "?" in path else "?"
        while True:
            q = path + sep + "limit=%d" % limit + ("&after=" + after if after else "")
            j = self.ok("GET", q, token=token)
            items += j["data"]
            if not j["has_more"]:
                self.assertIsNone(j["next_cursor"])
                return items
            after = str(j["next_cursor"])


def main():
    import sys
    sys.argv = parse_binary_args(sys.argv)
    unittest.main(verbosity=2)
