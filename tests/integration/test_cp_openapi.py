"""
sluice-control: the OpenAPI document it serves (GET /v1/admin/openapi.json)
matches the program. Every route `sluice-control routes` prints is in the
document and every operation of the document is a route; every operation
has responses, every $ref resolves, every path parameter is declared; and
real answers (workspaces, API keys, virtual keys, configs, guardrails,
prompts, tokens, prices, audit, nodes, errors) carry every property the
document marks required, with the types and enums it gives. Request bodies
the test sends are checked against the document's request schemas too, and
an unknown field is refused where the document says additionalProperties
is false.

The schema checker below is deliberately small (type, required,
properties, items, enum, const, nullable, additionalProperties, allOf,
anyOf, oneOf, $ref): no external packages.
"""
import json
import os
import re
import secrets
import subprocess

from cpharness import CPTestCase, control_binary, main

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "..", "controlplane", "api", "openapi.json")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PUBLIC = {("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"),
          ("GET", "/v1/admin/openapi.json")}


def program_routes():
    """(METHOD, PATH) printed by `sluice-control routes`, {name...} as {name}."""
    out = subprocess.run([control_binary(), "routes"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=30, check=True).stdout.decode()
    routes = []
    for line in out.splitlines():
        if not line.strip():
            continue
        method, path = line.split(" ", 1)
        routes.append((method, re.sub(r"\{([A-Za-z_]+)\.\.\.\}", r"{\1}", path.strip())))
    return routes


def document_operations(doc):
    return [(m.upper(), p) for p, item in doc["paths"].items() for m in item if m in METHODS]


# -- a tiny JSON Schema checker -------------------------------------------------

def resolve(doc, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise KeyError("external $ref %s" % ref)
        node = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        seen += 1
        if seen > 50:
            raise KeyError("$ref loop at %s" % ref)
    return node


def type_ok(value, t):
    if t == "null":
        return value is None
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t == "array":
        return isinstance(value, list)
    if t == "object":
        return isinstance(value, dict)
    raise ValueError("unknown type %r" % t)


def check(doc, schema, value, path="$"):
    """Returns a list of "path: problem" strings (empty when value conforms)."""
    schema = resolve(doc, schema)
    errs = []
    if schema is True or schema == {}:
        return errs
    if schema is False:
        return ["%s: not allowed" % path]
    if value is None and schema.get("nullable"):
        return errs
    for sub in schema.get("allOf", []):
        errs += check(doc, sub, value, path)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            results = [check(doc, sub, value, path) for sub in schema[key]]
            good = sum(1 for r in results if not r)
            if good == 0 or (key == "oneOf" and good > 1):
                errs.append("%s: matches %d of the %s alternatives" % (path, good, key))
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(type_ok(value, t) for t in types):
            return errs + ["%s: %r is not of type %s" % (path, value, "/".join(types))]
    if "const" in schema and value != schema["const"]:
        errs.append("%s: %r is not %r" % (path, value, schema["const"]))
    if "enum" in schema and value not in schema["enum"]:
        errs.append("%s: %r is not one of %r" % (path, value, schema["enum"]))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errs.append("%s: required property %s is missing" % (path, name))
        for name, v in value.items():
            sub = "%s.%s" % (path, name)
            if name in props:
                errs += check(doc, props[name], v, sub)
            elif "additionalProperties" in schema:
                ap = schema["additionalProperties"]
                if ap is False:
                    errs.append("%s: property not in the schema" % sub)
                elif isinstance(ap, dict):
                    errs += check(doc, ap, v, sub)
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errs += check(doc, schema["items"], v, "%s[%d]" % (path, i))
    return errs


def walk_refs(node, at="#"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield at, v
            else:
                yield from walk_refs(v, at + "/" + k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_refs(v, "%s/%d" % (at, i))


class OpenApiDocument(CPTestCase):
    def served(self):
        r = self.cp.call("GET", "/v1/admin/openapi.json", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type").startswith("application/json"), r)
        return r.json

    def test_every_route_documented_and_every_operation_routed(self):
        routes = program_routes()
        self.assertGreater(len(routes), 40)
        self.assertEqual(len(routes), len(set(routes)), "a route is listed twice")
        doc = self.served()
        ops = document_operations(doc)
        missing = sorted(set(routes) - set(ops))
        extra = sorted(set(ops) - set(routes))
        self.assertEqual(missing, [], "routes of the program missing from the document")
        self.assertEqual(extra, [], "operations of the document that the program does not serve")

    def test_served_document_is_the_source_file(self):
        # The document is embedded at build time: a stale build serves an old one.
        if not os.path.exists(SOURCE):
            self.skipTest("no source tree")
        with open(SOURCE, "rb") as f:
            src = f.read()
        served = self.cp.call("GET", "/v1/admin/openapi.json", token=None).body
        self.assertEqual(served, src, "rebuild: the program serves another openapi.json")

    def test_document_well_formed(self):
        doc = self.served()
        self.assertTrue(doc["openapi"].startswith("3.1"), doc["openapi"])
        for key in ("title", "version"):
            self.assertIn(key, doc["info"])
        schemes = doc["components"]["securitySchemes"]
        self.assertEqual([(s["type"], s["scheme"]) for s in schemes.values()], [("http", "bearer")])
        name = next(iter(schemes))
        self.assertEqual(doc["security"], [{name: []}])

        for at, ref in walk_refs(doc):
            try:
                resolve(doc, {"$ref": ref})
            except (KeyError, TypeError) as e:
                self.fail("%s: $ref %s does not resolve (%s)" % (at, ref, e))

        op_ids = []
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if method not in METHODS:
                    continue
                where = "%s %s" % (method.upper(), path)
                op_ids.append(op.get("operationId"))
                self.assertTrue(op.get("summary"), where)
                responses = op.get("responses")
                self.assertTrue(responses, where + ": no responses")
                self.assertTrue([s for s in responses if s.startswith("2")], where + ": no 2xx")
                for status, resp in responses.items():
                    resp = resolve(doc, resp)
                    self.assertTrue(resp.get("description"), "%s %s: no description" % (where, status))
                    if status[0] in "45":
                        schema = resp["content"]["application/json"]["schema"]
                        self.assertEqual(resolve(doc, schema), doc["components"]["schemas"]["Error"],
                                         "%s %s: errors answer the Error object" % (where, status))
                # path parameters: declared exactly as the template names them
                params = [resolve(doc, p) for p in item.get("parameters", []) + op.get("parameters", [])]
                declared = {p["name"] for p in params if p["in"] == "path"}
                for p in params:
                    if p["in"] == "path":
                        self.assertTrue(p.get("required"), "%s: path parameter %s" % (where, p["name"]))
                self.assertEqual(declared, set(re.findall(r"\{([^}]+)\}", path)), where)
                # security: public routes say so, the others use the bearer token
                public = (method.upper(), path) in PUBLIC
                if public:
                    self.assertEqual(op.get("security"), [], where + ": public, needs security: []")
                else:
                    self.assertNotIn("security", op, where + ": inherits the bearer scheme")
                    for st in ("401", "503"):
                        self.assertIn(st, responses, "%s: answers %s" % (where, st))
                if "requestBody" in op:
                    schema = resolve(doc, op["requestBody"]["content"]["application/json"]["schema"])
                    self.assertEqual(schema.get("type"), "object", where)
                    self.assertIs(schema.get("additionalProperties"), False, where)
                    for st in ("400", "413"):
                        self.assertIn(st, responses, "%s: answers %s" % (where, st))
                if "{" in path and method != "put":
                    self.assertIn("404", responses, where)
                names = {p["name"] for p in params}
                if "If-Match" in names:
                    self.assertIn("412", responses, where)
                if "Idempotency-Key" in names:
                    self.assertEqual(method, "post", where)
                    self.assertIn("422", responses, where)
                if op.get("x-sluice-role") not in (None, "viewer"):
                    self.assertIn("403", responses, where)
        self.assertEqual(len(op_ids), len(set(op_ids)), "operationIds must be unique")
        self.assertNotIn(None, op_ids)

    def test_checker_catches_mismatches(self):
        # The checker must be able to fail, or the tests below prove nothing.
        doc = self.served()
        ws = doc["components"]["schemas"]["Workspace"]
        good = {"object": "workspace", "id": "ws_1", "name": "n", "description": "",
                "metadata": {}, "created_at": "2030-01-01T00:00:00Z",
                "updated_at": "2030-01-01T00:00:00Z", "version": 1}
        self.assertEqual(check(doc, ws, good), [])
        self.assertTrue(check(doc, ws, {k: v for k, v in good.items() if k != "name"}))
        self.assertTrue(check(doc, ws, dict(good, version="1")))
        self.assertTrue(check(doc, ws, dict(good, object="api_key")))
        self.assertTrue(check(doc, ws, dict(good, metadata={"a": 1})))
        key = doc["components"]["schemas"]["ApiKey"]
        self.assertTrue(check(doc, {"type": "array", "items": key}, [good]))


class OpenApiAnswers(CPTestCase):
    """Real answers against the document's response schemas."""

    def setUp(self):
        super().setUp()
        self.doc = self.cp.call("GET", "/v1/admin/openapi.json", token=None).json
        self.checked = set()

    def op(self, method, template):
        return self.doc["paths"][template][method.lower()]

    def request_ok(self, method, template, body):
        """The body the test sends conforms to the document's request schema."""
        schema = self.op(method, template)["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(check(self.doc, schema, body), [], "%s %s request" % (method, template))

    def conforms(self, method, template, r, status=None):
        """Checks an answer against the schema the document gives for its status."""
        op = self.op(method, template)
        if status is not None:
            self.assertEqual(r.status, status, r)
        responses = op["responses"]
        self.assertIn(str(r.status), responses, "%s %s answered %d, undocumented" %
                      (method, template, r.status))
        resp = resolve(self.doc, responses[str(r.status)])
        schema = resp["content"]["application/json"]["schema"]
        errs = check(self.doc, schema, r.json)
        self.assertEqual(errs, [], "%s %s -> %d: %s" % (method, template, r.status, r))
        for h in resp.get("headers", {}):
            if h == "ETag":
                self.assertRegex(r.header("etag") or "", r'^"[0-9]+"$',
                                 "%s %s: documented ETag missing" % (method, template))
        if r.header("etag") is not None:
            self.assertIn("ETag", resp.get("headers", {}),
                          "%s %s: answers an ETag the document does not mention" % (method, template))
        self.checked.add((method, template))
        return r.json

    def call(self, method, template, path, body=None, status=200, **kw):
        if body is not None and "requestBody" in self.op(method, template):
            self.request_ok(method, template, body)
        r = self.api(method, path, body, **kw)
        return self.conforms(method, template, r, status)

    def test_public_routes(self):
        for path in ("/health", "/ready"):
            self.conforms("GET", path, self.cp.call("GET", path, token=None), 200)
        m = self.cp.call("GET", "/metrics", token=None)
        self.assertEqual(m.status, 200)
        self.assertIn(m.header("content-type"), self.op("GET", "/metrics")["responses"]["200"]["content"])

    def test_sample_of_routes(self):
        A = "/v1/admin"
        # workspaces
        ws = self.call("POST", A + "/workspaces", "/workspaces",
                       {"name": "acme", "description": "d", "metadata": {"team": "ml"}}, 201)
        wid = ws["id"]
        self.call("GET", A + "/workspaces/{id}", "/workspaces/" + wid)
        self.call("GET", A + "/workspaces", "/workspaces?limit=1")
        self.call("PATCH", A + "/workspaces/{id}", "/workspaces/" + wid, {"name": "acme2"},
                  headers={"If-Match": '"1"'})

        # API keys
        akb = {"name": "app", "workspace_id": wid, "scopes": ["chat", "embeddings"],
               "allowed_models": ["gpt-4o"], "rate_limits": {"rpm": 60, "tpm": None},
               "budget": {"limit": 25.5, "period": "month"}, "expires_at": "2031-01-01T00:00:00Z",
               "metadata": {"env": "prod"}, "enabled": True}
        k = self.call("POST", A + "/api-keys", "/api-keys", akb, 201,
                      headers={"Idempotency-Key": "oapi-1"})
        self.secret(k["key"])
        # an idempotent replay answers the same document
        again = self.api("POST", "/api-keys", akb, headers={"Idempotency-Key": "oapi-1"})
        self.assertEqual(again.header("idempotent-replayed"), "true")
        self.assertEqual(check(self.doc, self.op("POST", A + "/api-keys")["responses"]["201"]
                               ["content"]["application/json"]["schema"], again.json), [])
        plain = self.call("POST", A + "/api-keys", "/api-keys", {"name": "plain", "workspace_id": wid},
                          201)
        self.secret(plain["key"])
        self.call("GET", A + "/api-keys/{id}", "/api-keys/" + k["id"])
        lst = self.call("GET", A + "/api-keys", "/api-keys?limit=1&workspace_id=" + wid)
        self.assertTrue(lst["has_more"])
        self.call("GET", A + "/api-keys", "/api-keys?limit=1&after=" + lst["next_cursor"])
        self.call("PATCH", A + "/api-keys/{id}", "/api-keys/" + k["id"],
                  {"rate_limits": {"rpm": None}, "default_config_id": None})
        rot = self.call("POST", A + "/api-keys/{id}/rotate", "/api-keys/%s/rotate" % k["id"],
                        {"grace_period_seconds": 60})
        self.secret(rot["key"])
        self.assertIsNotNone(rot["previous_key_expires_at"])
        self.call("POST", A + "/api-keys/{id}/revoke", "/api-keys/%s/revoke" % k["id"])

        # virtual keys
        cred = {"api_key": self.secret("sk-proj-" + secrets.token_hex(20))}
        vkb = {"name": "openai", "workspace_id": wid, "provider": "openai", "credentials": cred,
               "budget": {"limit": 5}}
        vk = self.call("POST", A + "/virtual-keys", "/virtual-keys", vkb, 201)
        self.assertNotIn(cred["api_key"], json.dumps(vk))
        az = {"api_key": self.secret("az-" + secrets.token_hex(16)), "resource_name": "res",
              "deployment_id": "gpt4o", "api_version": "2024-10-21"}
        self.call("POST", A + "/virtual-keys", "/virtual-keys",
                  {"name": "azure", "workspace_id": wid, "provider": "azure-openai",
                   "credentials": az}, 201)
        self.call("GET", A + "/virtual-keys/{id}", "/virtual-keys/" + vk["id"])
        self.call("GET", A + "/virtual-keys", "/virtual-keys?provider=openai")
        self.call("PATCH", A + "/virtual-keys/{id}", "/virtual-keys/" + vk["id"],
                  {"name": "renamed", "allowed_models": ["gpt-4o-mini"]})
        new = {"api_key": self.secret("sk-proj-" + secrets.token_hex(20))}
        self.call("POST", A + "/virtual-keys/{id}/rotate", "/virtual-keys/%s/rotate" % vk["id"],
                  {"credentials": new})

        # versioned documents
        cfg = self.call("POST", A + "/configs", "/configs",
                        {"name": "prod", "workspace_id": wid, "note": "first",
                         "config": {"strategy": {"mode": "fallback"},
                                    "targets": [{"provider": "openai"}, {"provider": "anthropic"}]}},
                        201)
        self.call("GET", A + "/configs/{id}", "/configs/" + cfg["id"])
        self.call("PATCH", A + "/configs/{id}", "/configs/" + cfg["id"],
                  {"config": {"provider": "openai"}, "note": "simpler"})
        self.call("GET", A + "/configs", "/configs")
        self.call("GET", A + "/configs/{id}/versions", "/configs/%s/versions?limit=1" % cfg["id"])
        self.call("GET", A + "/configs/{id}/versions/{version}", "/configs/%s/versions/1" % cfg["id"])
        self.call("POST", A + "/configs/{id}/rollback", "/configs/%s/rollback" % cfg["id"],
                  {"version": 1})
        g = self.call("POST", A + "/guardrails", "/guardrails",
                      {"name": "no-ssn", "workspace_id": wid,
                       "guardrail": {"type": "regex", "action": "block", "stage": "input",
                                     "pattern": r"\b\d{3}-\d{2}-\d{4}\b"}}, 201)
        self.call("GET", A + "/guardrails/{id}/versions", "/guardrails/%s/versions" % g["id"])
        p = self.call("POST", A + "/prompts", "/prompts",
                      {"name": "greet", "workspace_id": wid,
                       "prompt": {"messages": [{"role": "system", "content": "You are {{persona}}."}],
                                  "model": "gpt-4o-mini", "parameters": {"temperature": 0.2}}}, 201)
        self.call("GET", A + "/prompts/{id}/versions/{version}", "/prompts/%s/versions/1" % p["id"])
        self.call("DELETE", A + "/prompts/{id}", "/prompts/" + p["id"])
        # an API key with a default config of its workspace
        dk = self.call("POST", A + "/api-keys", "/api-keys",
                       {"name": "with-config", "workspace_id": wid, "default_config_id": cfg["id"]},
                       201)
        self.secret(dk["key"])
        self.call("DELETE", A + "/api-keys/{id}", "/api-keys/" + dk["id"])

        # admin tokens
        t = self.call("POST", A + "/tokens", "/tokens",
                      {"name": "viewer", "role": "viewer", "workspace_id": wid,
                       "expires_at": "2031-01-01T00:00:00Z"}, 201)
        viewer = self.secret(t["token"])
        self.call("GET", A + "/tokens", "/tokens")
        self.call("GET", A + "/tokens/me", "/tokens/me", token=viewer)
        self.call("GET", A + "/tokens/{id}", "/tokens/" + t["id"], token=viewer)
        # what a viewer may not do
        self.call("POST", A + "/api-keys", "/api-keys", {"name": "x"}, 403, token=viewer)
        self.call("GET", A + "/audit", "/audit", status=403, token=viewer)

        # pricing, audit, nodes
        self.call("GET", A + "/pricing", "/pricing?provider=openai&limit=5")
        self.call("GET", A + "/pricing/{provider}/{model}", "/pricing/openai/gpt-4o")
        self.call("PUT", A + "/pricing/{provider}/{model}", "/pricing/openai/ft:oapi:m/v1",
                  {"input_per_mtok": 1.5, "output_per_mtok": 3}, 201)
        self.call("PUT", A + "/pricing/{provider}/{model}", "/pricing/openai/ft:oapi:m/v1",
                  {"input_per_mtok": 1, "output_per_mtok": 2, "cached_input_per_mtok": None}, 200,
                  headers={"If-Match": '"1"'})
        self.call("DELETE", A + "/pricing/{provider}/{model}", "/pricing/openai/ft:oapi:m/v1")
        ev = self.call("GET", A + "/audit", "/audit?limit=5&resource_type=api_key")
        self.assertTrue(ev["data"])
        self.call("GET", A + "/nodes", "/nodes")

        # deletes
        self.call("DELETE", A + "/virtual-keys/{id}", "/virtual-keys/" + vk["id"])
        self.call("DELETE", A + "/tokens/{id}", "/tokens/" + t["id"])
        self.call("DELETE", A + "/workspaces/{id}", "/workspaces/" + wid)

        self.assertGreaterEqual(len(self.checked), 35)

    def test_errors_answer_the_error_object(self):
        A = "/v1/admin"
        ws = self.call("POST", A + "/workspaces", "/workspaces", {"name": "acme"}, 201)
        self.call("GET", A + "/workspaces/{id}", "/workspaces/ws_nope", status=404)
        self.call("GET", A + "/workspaces", "/workspaces", status=401, token=None)
        self.call("GET", A + "/workspaces", "/workspaces?limit=0", status=400)
        self.call("PATCH", A + "/workspaces/{id}", "/workspaces/" + ws["id"], {"name": "x"},
                  status=412, headers={"If-Match": '"7"'})
        body = {"name": "k", "workspace_id": ws["id"]}
        k = self.call("POST", A + "/api-keys", "/api-keys", body, 201,
                      headers={"Idempotency-Key": "e-1"})
        self.secret(k["key"])
        self.call("POST", A + "/api-keys", "/api-keys", dict(body, name="other"), 422,
                  headers={"Idempotency-Key": "e-1"})
        self.call("POST", A + "/api-keys/{id}/revoke", "/api-keys/%s/revoke" % k["id"])
        self.call("POST", A + "/api-keys/{id}/rotate", "/api-keys/%s/rotate" % k["id"], {}, 409)
        # (not through call(): this body breaks the request schema on purpose)
        r = self.api("POST", "/workspaces", {"name": "x", "description": "d" * 2001})
        self.conforms("POST", A + "/workspaces", r, 400)
        # chunked, so that the program reads (and counts) the body before refusing it
        r = self.api("POST", "/workspaces", raw=(b"a" * 16384 for _ in range(160)),
                     headers={"Transfer-Encoding": "chunked"})
        self.conforms("POST", A + "/workspaces", r, 413)

    def test_unknown_fields_refused_as_documented(self):
        # Every request schema says additionalProperties: false; the program agrees.
        A = "/v1/admin"
        wid = self.ok("POST", "/workspaces", {"name": "acme"}, status=201)["id"]
        cases = [
            ("POST", A + "/workspaces", "/workspaces", {"name": "x"}),
            ("POST", A + "/tokens", "/tokens", {"name": "x", "role": "viewer"}),
            ("POST", A + "/api-keys", "/api-keys", {"name": "x", "workspace_id": wid}),
            ("POST", A + "/virtual-keys", "/virtual-keys",
             {"name": "x", "workspace_id": wid, "provider": "ollama", "credentials": {}}),
            ("POST", A + "/configs", "/configs",
             {"name": "x", "workspace_id": wid, "config": {"provider": "openai"}}),
            ("PUT", A + "/pricing/{provider}/{model}", "/pricing/openai/oapi-m",
             {"input_per_mtok": 1, "output_per_mtok": 1}),
        ]
        for method, template, path, body in cases:
            self.request_ok(method, template, body)
            bad = dict(body, not_a_field=1)
            self.assertTrue(check(self.doc, self.op(method, template)["requestBody"]["content"]
                                  ["application/json"]["schema"], bad))
            r = self.api(method, path, bad)
            self.err(r, 400, "invalid_field", "$.not_a_field")
            self.conforms(method, template, r, 400)


if __name__ == "__main__":
    main()
