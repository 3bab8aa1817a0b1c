"""
sluice-control: every resource's routes end to end against real Postgres
(create, read, list, update with ETags, delete, rotate, versions, rollback),
idempotent creates, pagination, the audit trail, operations endpoints.
"""
import hashlib
import socket
import threading

from cpharness import BOOT, CPTestCase, main


class Workspaces(CPTestCase):
    def test_crud(self):
        j = self.ok("POST", "/workspaces", {"name": "acme", "description": "d",
                                            "metadata": {"team": "ml"}}, status=201)
        self.assertTrue(j["id"].startswith("ws_"))
        self.assertEqual(j["metadata"], {"team": "ml"})
        got = self.api("GET", "/workspaces/" + j["id"])
        self.assertEqual(got.status, 200)
        self.assertEqual(got.header("etag"), '"1"')
        up = self.ok("PATCH", "/workspaces/" + j["id"], {"name": "acme2"},
                     headers={"If-Match": '"1"'})
        self.assertEqual(up["name"], "acme2")
        self.assertEqual(up["description"], "d")
        self.assertEqual(up["version"], 2)
        stale = self.api("PATCH", "/workspaces/" + j["id"], {"name": "x"},
                         headers={"If-Match": '"1"'})
        self.err(stale, 412, "precondition_failed")
        self.assertEqual(self.ok("GET", "/workspaces/" + j["id"])["name"], "acme2")
        d = self.ok("DELETE", "/workspaces/" + j["id"])
        self.assertTrue(d["deleted"])
        self.err(self.api("GET", "/workspaces/" + j["id"]), 404, "not_found")

    def test_delete_cascades(self):
        ws = self.workspace()
        k = self.api_key(ws)
        self.ok("DELETE", "/workspaces/" + ws)
        self.err(self.api("GET", "/api-keys/" + k["id"]), 404)
        self.assertEqual(self.sql("SELECT count(*) FROM api_keys"), [["0"]])


class ApiKeys(CPTestCase):
    def test_create_shows_secret_once_and_stores_hash(self):
        ws = self.workspace()
        j = self.api_key(ws, scopes=["chat"], allowed_models=["gpt-4o"],
                         rate_limits={"rpm": 60, "tpm": 100000},
                         budget={"limit": 25.5, "period": "month"},
                         expires_at="2031-01-01T00:00:00Z", metadata={"env": "prod"})
        key = j["key"]
        self.assertRegex(key, r"^sk-sluice-[0-9a-f]{64}$")
        self.assertEqual(j["key_hint"], "sk-sluice-..." + key[-4:])
        self.assertEqual(j["rate_limits"], {"rpm": 60, "tpm": 100000})
        self.assertEqual(j["budget"], {"limit": 25.5, "period": "month"})
        got = self.ok("GET", "/api-keys/" + j["id"])
        self.assertNotIn("key", got)
        self.assertNotIn(key, str(self.list_all("/api-keys")))
        stored = self.sql("SELECT encode(key_hash, 'hex') FROM api_keys")
        self.assertEqual(stored, [[hashlib.sha256(key.encode()).hexdigest()]])
        dump = self.sql("SELECT row_to_json(k)::text FROM api_keys k")[0][0]
        self.assertNotIn(key[10:], dump)

    def test_update_rotate_revoke_delete(self):
        ws = self.workspace()
        j = self.api_key(ws, rate_limits={"rpm": 10})
        up = self.ok("PATCH", "/api-keys/" + j["id"], {"rate_limits": {"tpm": 5},
                                                        "enabled": False})
        self.assertEqual(up["rate_limits"], {"rpm": 10, "tpm": 5})
        self.assertFalse(up["enabled"])
        old_hash = hashlib.sha256(j["key"].encode()).hexdigest()
        rot = self.ok("POST", "/api-keys/%s/rotate" % j["id"], {"grace_period_seconds": 600})
        self.secret(rot["key"])
        self.assertNotEqual(rot["key"], j["key"])
        self.assertIsNotNone(rot["previous_key_expires_at"])
        rows = self.sql("SELECT encode(key_hash,'hex'), encode(old_key_hash,'hex') FROM api_keys")
        self.assertEqual(rows, [[hashlib.sha256(rot["key"].encode()).hexdigest(), old_hash]])
        rv = self.ok("POST", "/api-keys/%s/revoke" % j["id"])
        self.assertIsNotNone(rv["revoked_at"])
        self.assertFalse(rv["enabled"])
        self.err(self.api("POST", "/api-keys/%s/rotate" % j["id"], {}), 409)
        self.ok("DELETE", "/api-keys/" + j["id"])
        self.err(self.api("GET", "/api-keys/" + j["id"]), 404)

    def test_default_config_must_be_in_workspace(self):
        ws, other = self.workspace("a"), self.workspace("b")
        cfg = self.ok("POST", "/configs", {"name": "c", "workspace_id": other,
                                           "config": {"provider": "openai"}}, status=201)
        r = self.api("POST", "/api-keys", {"name": "k", "workspace_id": ws,
                                           "default_config_id": cfg["id"]})
        self.err(r, 400, "invalid_field", "$.default_config_id")
        mine = self.ok("POST", "/configs", {"name": "c", "workspace_id": ws,
                                            "config": {"provider": "openai"}}, status=201)
        k = self.api_key(ws, default_config_id=mine["id"])
        self.assertEqual(k["default_config_id"], mine["id"])


class VirtualKeys(CPTestCase):
    def test_secret_sealed_never_returned(self):
        ws = self.workspace()
        secret = self.secret("sk-proj-" + "s3cr3t" * 8)
        j = self.virtual_key(ws, credentials={"api_key": secret})
        self.assertEqual(j["secret_hint"], "sk-proj-..." + secret[-4:])
        for r in (j, self.ok("GET", "/virtual-keys/" + j["id"]), self.list_all("/virtual-keys")):
            self.assertNotIn(secret, str(r))
            self.assertNotIn("credentials", str(r))
        row = self.sql("SELECT encode(secret, 'escape'), secret_key_id FROM virtual_keys")[0]
        self.assertNotIn("s3cr3t", row[0])
        audit = self.sql("SELECT coalesce(after::text,'') FROM audit_log")
        self.assertNotIn(secret, str(audit))

    def test_provider_fields(self):
        ws = self.workspace()
        az = self.virtual_key(ws, "azure-openai", {"api_key": "azkey-" + "1" * 20,
                                                  "resource_name": "res", "deployment_id": "gpt4o",
                                                  "api_version": "2024-10-21"})
        self.assertEqual(az["options"], {"resource_name": "res", "deployment_id": "gpt4o",
                                         "api_version": "2024-10-21"})
        r = self.api("POST", "/virtual-keys", {"name": "x", "workspace_id": ws,
                                               "provider": "azure-openai",
                                               "credentials": {"api_key": "k" * 20}})
        self.err(r, 400, "invalid_field", "$.credentials.resource_name")
        br = self.virtual_key(ws, "bedrock", {"aws_access_key_id": "AKIA" + "X" * 16,
                                             "aws_secret_access_key": "s" * 40,
                                             "aws_region": "us-east-1"})
        self.assertEqual(br["options"], {"aws_region": "us-east-1"})
        sa = {"type": "service_account", "client_email": "x@p.iam.gserviceaccount.com",
              "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE" + "A" * 40 + "\n-----END PRIVATE KEY-----\n"}
        self.secret(sa["private_key"])
        vx = self.virtual_key(ws, "vertex-ai", {"service_account_json": sa,
                                               "vertex_region": "us-central1"})
        self.assertIn("x@p.iam.gserviceaccount.com", vx["secret_hint"])
        r = self.api("POST", "/virtual-keys", {"name": "x", "workspace_id": ws, "provider": "openai",
                                               "credentials": {"api_key": "k" * 20, "aws_region": "x"}})
        self.err(r, 400, "invalid_field", "$.credentials.aws_region")

    def test_rotate_keeps_id(self):
        ws = self.workspace()
        j = self.virtual_key(ws)
        before = self.sql("SELECT encode(secret,'hex') FROM virtual_keys")[0][0]
        new = self.secret("sk-new-" + "9" * 30)
        rot = self.ok("POST", "/virtual-keys/%s/rotate" % j["id"], {"credentials": {"api_key": new}})
        self.assertEqual(rot["id"], j["id"])
        self.assertEqual(rot["secret_hint"], "sk-new-..." + new[-4:])
        self.assertIsNotNone(rot["rotated_at"])
        self.assertNotEqual(self.sql("SELECT encode(secret,'hex') FROM virtual_keys")[0][0], before)
        self.err(self.api("PATCH", "/virtual-keys/" + j["id"], {"credentials": {"api_key": "x"}}),
                 400, "invalid_field", "$.credentials")
        up = self.ok("PATCH", "/virtual-keys/" + j["id"], {"name": "renamed",
                                                            "allowed_models": ["gpt-4o"]})
        self.assertEqual(up["name"], "renamed")
        self.assertEqual(up["allowed_models"], ["gpt-4o"])


class VersionedDocs(CPTestCase):
    def test_config_versions_and_rollback(self):
        ws = self.workspace()
        v1 = {"strategy": {"mode": "fallback"}, "targets": [{"provider": "openai"},
                                                            {"provider": "anthropic"}]}
        c = self.ok("POST", "/configs", {"name": "prod", "workspace_id": ws, "config": v1},
                    status=201)
        self.assertEqual(c["current_version"], 1)
        v2 = {"provider": "openai", "retry": {"attempts": 2}}
        up = self.ok("PATCH", "/configs/" + c["id"], {"config": v2, "note": "simpler"})
        self.assertEqual(up["current_version"], 2)
        self.assertEqual(up["config"], v2)
        vs = self.ok("GET", "/configs/%s/versions" % c["id"])
        self.assertEqual([v["version"] for v in vs["data"]], [2, 1])
        self.assertEqual(vs["data"][0]["note"], "simpler")
        self.assertEqual(self.ok("GET", "/configs/%s/versions/1" % c["id"])["config"], v1)
        rb = self.ok("POST", "/configs/%s/rollback" % c["id"], {"version": 1})
        self.assertEqual(rb["current_version"], 3)
        self.assertEqual(rb["config"], v1)
        self.err(self.api("POST", "/configs/%s/rollback" % c["id"], {"version": 9}), 400)
        self.err(self.api("GET", "/configs/%s/versions/9" % c["id"]), 404)
        self.assertEqual(len(self.ok("GET", "/configs/%s/versions" % c["id"])["data"]), 3)

    def test_config_validated_by_shared_validator(self):
        ws = self.workspace()
        r = self.api("POST", "/configs", {"name": "bad", "workspace_id": ws,
                                          "config": {"strategy": {"mode": "fallback"},
                                                     "targets": [{"provider": "openai",
                                                                  "weight": -1}]}})
        e = self.err(r, 400, "invalid_field", "$.config.targets[0].weight")
        r = self.api("POST", "/configs", {"name": "secret", "workspace_id": ws,
                                          "config": {"provider": "openai", "api_key": "sk-x"}})
        self.err(r, 400, "invalid_field", "$.config.api_key")
        self.assertEqual(self.sql("SELECT count(*) FROM configs"), [["0"]])

    def test_guardrails_and_prompts(self):
        ws = self.workspace()
        g = self.ok("POST", "/guardrails", {"name": "no-ssn", "workspace_id": ws, "guardrail": {
            "type": "regex", "action": "block", "stage": "input",
            "pattern": r"\b\d{3}-\d{2}-\d{4}\b"}}, status=201)
        self.assertEqual(g["current_version"], 1)
        self.err(self.api("POST", "/guardrails", {"name": "x", "workspace_id": ws, "guardrail": {
            "type": "regex", "action": "block", "pattern": "(unclosed"}}), 400,
            "invalid_field", "$.guardrail.pattern")
        self.err(self.api("POST", "/guardrails", {"name": "x", "workspace_id": ws, "guardrail": {
            "type": "pii", "action": "mask"}}), 400, "invalid_field", "$.guardrail.entities")
        p = self.ok("POST", "/prompts", {"name": "greet", "workspace_id": ws, "prompt": {
            "messages": [{"role": "system", "content": "You are {{ persona }}."},
                         {"role": "user", "content": "Hi {{name}}"}],
            "model": "gpt-4o-mini", "parameters": {"temperature": 0.2}}}, status=201)
        p2 = self.ok("PATCH", "/prompts/" + p["id"], {"prompt": {
            "messages": [{"role": "user", "content": "Hello {{name}}"}]}})
        self.assertEqual(p2["current_version"], 2)
        self.err(self.api("PATCH", "/prompts/" + p["id"], {"prompt": {
            "messages": [{"role": "user", "content": "Hello {{"}]}}), 400, "invalid_field",
            "$.prompt.messages[0].content")
        self.ok("DELETE", "/prompts/" + p["id"])
        self.assertEqual(self.sql("SELECT count(*) FROM prompt_versions"), [["0"]])


class Pricing(CPTestCase):
    def test_seeded_and_editable(self):
        rows = self.list_all("/pricing?provider=openai")
        models = {r["model"]: r for r in rows}
        self.assertIn("gpt-4o", models)
        self.assertEqual(models["gpt-4o"]["input_per_mtok"], 2.5)
        self.assertGreater(len(self.list_all("/pricing")), 40)
        j = self.ok("PUT", "/pricing/openai/ft:gpt-4o:acme/v1",
                    {"input_per_mtok": 3.75, "output_per_mtok": 15, "cached_input_per_mtok": 1.875},
                    status=201)
        self.assertEqual(j["model"], "ft:gpt-4o:acme/v1")
        j = self.ok("PUT", "/pricing/openai/ft:gpt-4o:acme/v1",
                    {"input_per_mtok": 0.1, "output_per_mtok": 0.2}, headers={"If-Match": '"1"'})
        self.assertEqual((j["input_per_mtok"], j["cached_input_per_mtok"], j["version"]),
                         (0.1, None, 2))
        self.assertEqual(self.sql("SELECT input_per_mtok::text FROM model_pricing WHERE model = "
                                  "'ft:gpt-4o:acme/v1'"), [["0.100000"]])
        self.ok("DELETE", "/pricing/openai/ft:gpt-4o:acme/v1")
        self.err(self.api("GET", "/pricing/openai/ft:gpt-4o:acme/v1"), 404)


class Conventions(CPTestCase):
    def test_pagination_walks_everything_once(self):
        ws = self.workspace()
        ids = {self.api_key(ws, name="k%d" % i)["id"] for i in range(23)}
        seen = [k["id"] for k in self.list_all("/api-keys", limit=5)]
        self.assertEqual(len(seen), 23)
        self.assertEqual(set(seen), ids)
        self.assertEqual(seen, sorted(seen, reverse=True))
        self.err(self.api("GET", "/api-keys?limit=0"), 400, param="limit")
        self.err(self.api("GET", "/api-keys?limit=101"), 400, param="limit")

    def test_idempotent_create(self):
        ws = self.workspace()
        body = {"name": "once", "workspace_id": ws}
        h = {"Idempotency-Key": "create-once-1"}
        a = self.api("POST", "/api-keys", body, headers=h)
        self.assertEqual(a.status, 201, a)
        self.secret(a.json["key"])
        b = self.api("POST", "/api-keys", body, headers=h)
        self.assertEqual(b.status, 201, b)
        self.assertEqual(b.json, a.json)
        self.assertEqual(b.header("idempotent-replayed"), "true")
        self.assertEqual(self.sql("SELECT count(*) FROM api_keys"), [["1"]])
        c = self.api("POST", "/api-keys", {"name": "other", "workspace_id": ws}, headers=h)
        self.err(c, 422, "idempotency_key_reused")
        # Remembered for 24 hours; an older key starts afresh.
        self.sql("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        d = self.api("POST", "/api-keys", {"name": "other", "workspace_id": ws}, headers=h)
        self.assertEqual(d.status, 201, d)
        self.secret(d.json["key"])
        self.assertNotEqual(d.json["id"], a.json["id"])
        # The stored answer holds the secret: it is sealed, not in clear.
        self.assertNotIn(a.json["key"], str(self.sql(
            "SELECT encode(response, 'escape') FROM idempotency_keys")))

    def test_idempotent_create_concurrent(self):
        ws = self.workspace()
        body = {"name": "race", "workspace_id": ws}
        out = []

        def go():
            out.append(self.api("POST", "/api-keys", body, headers={"Idempotency-Key": "race-1"}))

        ts = [threading.Thread(target=go) for _ in range(6)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        self.assertEqual({r.status for r in out}, {201}, out)
        self.assertEqual(len({r.json["id"] for r in out}), 1)
        self.secret(out[0].json["key"])
        self.assertEqual(self.sql("SELECT count(*) FROM api_keys"), [["1"]])

    def test_concurrent_if_match_one_wins(self):
        ws = self.workspace()
        k = self.api_key(ws)
        out = []

        def go(i):
            out.append(self.api("PATCH", "/api-keys/" + k["id"], {"name": "n%d" % i},
                                headers={"If-Match": '"1"'}))

        ts = [threading.Thread(target=go, args=(i,)) for i in range(8)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        self.assertEqual(sorted(r.status for r in out), [200] + [412] * 7, out)
        self.assertEqual(self.ok("GET", "/api-keys/" + k["id"])["version"], 2)

    def test_audit_trail(self):
        ws = self.workspace()
        k = self.api_key(ws)
        self.ok("PATCH", "/api-keys/" + k["id"], {"name": "renamed"})
        ev = self.ok("GET", "/audit?resource_id=" + k["id"])["data"]
        self.assertEqual([e["action"] for e in ev], ["update", "create"])
        self.assertEqual(ev[0]["before"]["name"], "app")
        self.assertEqual(ev[0]["after"]["name"], "renamed")
        self.assertEqual(ev[0]["actor_id"], "tok_bootstrap")
        self.assertEqual(ev[0]["actor_role"], "owner")
        self.assertEqual(self.ok("GET", "/audit?action=create&resource_type=workspace")["data"][0]
                         ["resource_id"], ws)
        # A failed write leaves no audit record.
        n = len(self.list_all("/audit"))
        self.api("PATCH", "/api-keys/" + k["id"], {"name": 5})
        self.assertEqual(len(self.list_all("/audit")), n)

    def test_operations(self):
        self.assertEqual(self.cp.call("GET", "/health", token=None).status, 200)
        self.assertEqual(self.cp.call("GET", "/ready", token=None).json, {"status": "ready"})
        self.workspace()
        m = self.cp.call("GET", "/metrics", token=None)
        self.assertEqual(m.status, 200)
        text = m.body.decode()
        self.assertIn('sluice_control_requests_total{method="POST",route="/v1/admin/workspaces",'
                      'status="201"} 1', text)
        self.assertIn("sluice_control_db_pool_size 4", text)
        self.assertIn("sluice_control_request_seconds_bucket", text)
        o = self.cp.call("GET", "/v1/admin/openapi.json", token=None)
        self.assertEqual(o.json["openapi"][:3], "3.1")

    def test_errors(self):
        self.err(self.api("GET", "/nope"), 404, "not_found")
        self.err(self.api("PUT", "/workspaces"), 405, "method_not_allowed")
        self.err(self.api("GET", "/workspaces", token=None), 401, "invalid_token")
        self.err(self.api("GET", "/workspaces", token="sk-wrong"), 401, "invalid_token")
        self.err(self.api("POST", "/workspaces", raw=b"{nope"), 400, "invalid_json")
        self.err(self.api("POST", "/workspaces", raw=b"[1]"), 400, "invalid_json")
        # Refused on its Content-Length, before the body is read.
        with socket.create_connection((self.cp.host, self.cp.port), timeout=10) as s:
            s.sendall(b"POST /v1/admin/workspaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                      + BOOT.encode() + b"\r\nContent-Length: 2097152\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data)
        self.assertIn(b'"code":"request_too_large"', data)
        # Chunked, so only counting tells: refused once past the limit.
        def chunks():
            for _ in range(160):
                yield b"a" * 16384
        r = self.cp.call("POST", "/v1/admin/workspaces", raw=chunks(),
                         headers={"Transfer-Encoding": "chunked"})
        self.err(r, 413, "request_too_large")
        self.assertEqual(self.ok("GET", "/workspaces")["data"], [])


class Regressions(CPTestCase):
    """Bugs found in review, each kept from coming back."""

    def test_data_errors_answer_400_and_the_server_lives(self):
        # A Postgres data error used to be read after its result was freed.
        self.err(self.api("GET", "/audit?since=notatime"), 400, "invalid_request")
        ws = self.workspace()
        self.err(self.api("POST", "/api-keys", {"name": "k", "workspace_id": ws,
                                                "expires_at": "2030-02-30T00:00:00Z"}), 400)
        self.assertEqual(self.sql("SELECT count(*) FROM api_keys"), [["0"]])
        self.api_key(ws)

    def test_idempotency_key_is_per_path(self):
        ws = self.workspace()
        k1, k2 = self.api_key(ws), self.api_key(ws)
        h = {"Idempotency-Key": "rotate-1"}
        a = self.api("POST", "/api-keys/%s/rotate" % k1["id"], {}, headers=h)
        self.assertEqual(a.status, 200, a)
        self.secret(a.json["key"])
        b = self.api("POST", "/api-keys/%s/rotate" % k2["id"], {}, headers=h)
        self.err(b, 422, "idempotency_key_reused")
        self.assertEqual(self.ok("GET", "/api-keys/" + k2["id"])["version"], 1)

    def test_provider_ids_are_exact(self):
        ws = self.workspace()
        r = self.api("POST", "/virtual-keys", {"name": "x", "workspace_id": ws,
                                               "provider": "Bedrock",
                                               "credentials": {"api_key": "k" * 20}})
        self.err(r, 400, "invalid_field", "$.provider")
        self.err(self.api("PUT", "/pricing/OpenAI/gpt-4o",
                          {"input_per_mtok": 1, "output_per_mtok": 1}), 400, param="provider")
        self.err(self.api("PUT", "/pricing/no-such-provider/m",
                          {"input_per_mtok": 1, "output_per_mtok": 1}), 400, param="provider")

    def test_patch_semantics(self):
        ws = self.workspace()
        k = self.api_key(ws, metadata={"a": "1", "b": "2"}, budget={"limit": 5})
        self.assertEqual(k["budget"], {"limit": 5, "period": "month"})
        up = self.ok("PATCH", "/api-keys/" + k["id"], {"metadata": {"a": None, "c": "3"},
                                                        "budget": {"limit": None}})
        self.assertEqual(up["metadata"], {"b": "2", "c": "3"})
        self.assertEqual(up["budget"], {"limit": None, "period": None})
        r = self.api("DELETE", "/api-keys")
        self.err(r, 405, "method_not_allowed")
        self.assertEqual(r.header("allow"), "GET, POST")
        self.err(self.api("POST", "/api-keys", {"name": "x"}), 400, "invalid_field",
                 "$.workspace_id")


if __name__ == "__main__":
    main()
