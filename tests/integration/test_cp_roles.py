"""
sluice-control: who may do what. Every role (viewer < member < admin < owner),
scoped to one workspace or reaching all, against every write route; what a
viewer may read; workspace isolation (another workspace's objects answer 404
exactly like missing ones, on every route with an id, and never show up in
lists); minting and revoking admin tokens; revoked and expired tokens; the
audit trail's visibility.

Refusals are checked against the database: a refused request changes no
row of any table (audit log and idempotency records included).
"""
import secrets

from cpharness import BOOT, CPTestCase, main

ROLES = ("viewer", "member", "admin", "owner")
RANK = {r: i for i, r in enumerate(ROLES)}
KINDS = ("configs", "guardrails", "prompts")

TABLES = ("workspaces", "admin_tokens", "configs", "config_versions", "guardrails",
          "guardrail_versions", "prompts", "prompt_versions", "api_keys", "virtual_keys",
          "model_pricing", "usage_counters", "audit_log", "nodes", "idempotency_keys")
SNAPSHOT_SQL = (" UNION ALL ".join("SELECT '%s' AS t, row_to_json(x)::text AS j FROM %s x"
                                   % (t, t) for t in TABLES) + " ORDER BY 1, 2")

# A document body of each kind that its validator accepts.
DOCS = {
    "configs": ("config", {"provider": "openai"}),
    "guardrails": ("guardrail", {"type": "regex", "action": "block", "pattern": "x+"}),
    "prompts": ("prompt", {"messages": [{"role": "user", "content": "Hi {{name}}"}]}),
}
DOCS2 = {
    "configs": {"provider": "anthropic"},
    "guardrails": {"type": "regex", "action": "warn", "pattern": "y+"},
    "prompts": {"messages": [{"role": "user", "content": "Hello {{name}}"}]},
}
# Ids shaped like real ones that exist nowhere.
MISSING = {"workspaces": "ws_000000000000deadbeefdeadbeef", "tokens": "tok_000000000000deadbeefdeadbeef",
           "api-keys": "key_000000000000deadbeefdeadbeef", "virtual-keys": "vk_000000000000deadbeefdeadbeef",
           "configs": "cfg_000000000000deadbeefdeadbeef", "guardrails": "grd_000000000000deadbeefdeadbeef",
           "prompts": "pmt_000000000000deadbeefdeadbeef"}


class RolesBase(CPTestCase):
    """Two workspaces A and B; helpers to mint tokens and objects and to
    compare whole-database snapshots."""

    def setUp(self):
        super().setUp()
        self.A = self.workspace("alpha")
        self.B = self.workspace("beta")
        self._n = 0

    def uniq(self, prefix="x"):
        self._n += 1
        return "%s%d" % (prefix, self._n)

    # -- objects ----------------------------------------------------------------

    def mint(self, role, ws=None, token=BOOT, **extra):
        """An admin token: its JSON (id, role, workspace_id...) with the secret in 'token'."""
        body = {"name": self.uniq(role + "-"), "role": role}
        if ws is not None:
            body["workspace_id"] = ws
        body.update(extra)
        j = self.ok("POST", "/tokens", body, status=201, token=token)
        self.secret(j["token"])
        return j

    def tokens8(self):
        """One token per role, scoped to A and reaching all: {(role, 'A'|'*'): token json}."""
        out = {}
        for role in ROLES:
            out[(role, "A")] = self.mint(role, self.A)
            out[(role, "*")] = self.mint(role)
        return out

    def vk_body(self, ws):
        cred = {"api_key": self.secret("sk-proj-" + secrets.token_hex(20))}
        return {"name": self.uniq("vk"), "workspace_id": ws, "provider": "openai",
                "credentials": cred}

    def doc(self, kind, ws, versions=1):
        field, body = DOCS[kind]
        d = self.ok("POST", "/" + kind, {"name": self.uniq("d"), "workspace_id": ws, field: body},
                    status=201)
        for _ in range(versions - 1):
            d = self.ok("PATCH", "/%s/%s" % (kind, d["id"]), {field: DOCS2[kind]})
        return d

    def objects(self, ws):
        """One object of every kind in ws: {resource: id}."""
        o = {"api-keys": self.api_key(ws)["id"], "virtual-keys": self.virtual_key(ws)["id"]}
        for kind in KINDS:
            o[kind] = self.doc(kind, ws, versions=2)["id"]
        o["tokens"] = self.mint("viewer", ws)["id"]
        o["workspaces"] = ws
        return o

    # -- database -----------------------------------------------------------------

    def snapshot(self):
        return [tuple(r) for r in self.sql(SNAPSHOT_SQL)]

    def assertUnchanged(self, before, msg=""):
        after = self.snapshot()
        if after != before:
            gone = [r for r in before if r not in after]
            new = [r for r in after if r not in before]
            self.fail("the database changed %s\nrows gone: %s\nrows new: %s"
                      % (msg, gone[:6], new[:6]))

    def forbidden(self, r, what=""):
        self.assertEqual(r.status, 403, "%s: %r" % (what, r))
        e = self.err(r, 403, "forbidden")
        self.assertEqual(e["type"], "permission_error", what)

    def not_found(self, r, what=""):
        self.assertEqual(r.status, 404, "%s: %r" % (what, r))
        self.err(r, 404, "not_found")

    def unauthorized(self, r, what=""):
        self.assertEqual(r.status, 401, "%s: %r" % (what, r))
        e = self.err(r, 401, "invalid_token")
        self.assertEqual(e["type"], "authentication_error", what)


class WriteMatrix(RolesBase):
    """Every role, scoped to A and reaching all, against every write route
    aimed at workspace A: allowed ones succeed and are audited under the
    caller; refused ones answer 403 and change nothing at all."""

    def routes(self):
        """(label, least role, needs all-workspace reach, make(allowed) -> (method, path, body))."""
        A = self.A
        R = []

        def price():
            model = self.uniq("role-test-model-")
            self.ok("PUT", "/pricing/openai/" + model, {"input_per_mtok": 1, "output_per_mtok": 2},
                    status=201)
            return model

        R += [
            ("POST /workspaces", "owner", True,
             lambda ok: ("POST", "/workspaces", {"name": self.uniq("ws")})),
            ("PATCH /workspaces/{id}", "admin", False,
             lambda ok: ("PATCH", "/workspaces/" + A, {"description": self.uniq("d")})),
            # Refused callers aim at A itself (in their scope); the one allowed
            # caller deletes a spare workspace.
            ("DELETE /workspaces/{id}", "owner", True,
             lambda ok: ("DELETE", "/workspaces/" + (self.workspace(self.uniq("spare")) if ok else A),
                         None)),
            ("POST /tokens", "admin", False,
             lambda ok: ("POST", "/tokens", {"name": self.uniq("t"), "role": "viewer",
                                             "workspace_id": A})),
            ("DELETE /tokens/{id}", "admin", False,
             lambda ok: ("DELETE", "/tokens/" + self.mint("viewer", A)["id"], None)),
            ("POST /api-keys", "member", False,
             lambda ok: ("POST", "/api-keys", {"name": self.uniq("k"), "workspace_id": A})),
            ("PATCH /api-keys/{id}", "member", False,
             lambda ok: ("PATCH", "/api-keys/" + self.api_key(A)["id"], {"name": "renamed"})),
            ("DELETE /api-keys/{id}", "member", False,
             lambda ok: ("DELETE", "/api-keys/" + self.api_key(A)["id"], None)),
            ("POST /api-keys/{id}/rotate", "member", False,
             lambda ok: ("POST", "/api-keys/%s/rotate" % self.api_key(A)["id"],
                         {"grace_period_seconds": 60})),
            ("POST /api-keys/{id}/revoke", "member", False,
             lambda ok: ("POST", "/api-keys/%s/revoke" % self.api_key(A)["id"], None)),
            ("POST /virtual-keys", "member", False,
             lambda ok: ("POST", "/virtual-keys", self.vk_body(A))),
            ("PATCH /virtual-keys/{id}", "member", False,
             lambda ok: ("PATCH", "/virtual-keys/" + self.virtual_key(A)["id"], {"name": "renamed"})),
            ("DELETE /virtual-keys/{id}", "member", False,
             lambda ok: ("DELETE", "/virtual-keys/" + self.virtual_key(A)["id"], None)),
            ("POST /virtual-keys/{id}/rotate", "member", False,
             lambda ok: ("POST", "/virtual-keys/%s/rotate" % self.virtual_key(A)["id"],
                         {"credentials": self.vk_body(A)["credentials"]})),
            ("PUT /pricing/{provider}/{model} (create)", "admin", True,
             lambda ok: ("PUT", "/pricing/openai/" + self.uniq("new-model-"),
                         {"input_per_mtok": 1, "output_per_mtok": 2})),
            ("PUT /pricing/{provider}/{model} (update)", "admin", True,
             lambda ok: ("PUT", "/pricing/openai/gpt-4o", {"input_per_mtok": 9,
                                                           "output_per_mtok": 99})),
            ("DELETE /pricing/{provider}/{model}", "admin", True,
             lambda ok: ("DELETE", "/pricing/openai/" + price(), None)),
        ]
        for kind in KINDS:
            field, body = DOCS[kind]
            R += [
                ("POST /%s" % kind, "member", False,
                 lambda ok, kind=kind, field=field, body=body:
                 ("POST", "/" + kind, {"name": self.uniq("d"), "workspace_id": A, field: body})),
                ("PATCH /%s/{id}" % kind, "member", False,
                 lambda ok, kind=kind, field=field:
                 ("PATCH", "/%s/%s" % (kind, self.doc(kind, A)["id"]), {field: DOCS2[kind]})),
                ("DELETE /%s/{id}" % kind, "member", False,
                 lambda ok, kind=kind: ("DELETE", "/%s/%s" % (kind, self.doc(kind, A)["id"]), None)),
                ("POST /%s/{id}/rollback" % kind, "member", False,
                 lambda ok, kind=kind: ("POST", "/%s/%s/rollback" % (kind, self.doc(kind, A, 2)["id"]),
                                        {"version": 1})),
            ]
        return R

    def run_matrix(self, which):
        toks = self.tokens8()
        routes = [rt for rt in self.routes() if which(rt[0])]
        self.assertTrue(routes)
        for label, least, needs_all, make in routes:
            for (role, reach), tok in sorted(toks.items(), key=lambda kv: (RANK[kv[0][0]], kv[0][1])):
                allowed = RANK[role] >= RANK[least] and (reach == "*" or not needs_all)
                what = "%s by %s/%s" % (label, role, reach)
                with self.subTest(route=label, role=role, reach=reach):
                    method, path, body = make(allowed)
                    before = self.snapshot()
                    r = self.api(method, path, body, token=tok["token"])
                    if allowed:
                        self.assertIn(r.status, (200, 201), "%s: %r" % (what, r))
                        for k in ("key", "token"):
                            if isinstance(r.json.get(k), str):
                                self.secret(r.json[k])
                        if r.json.get("workspace_id") is not None and not label.startswith("DELETE"):
                            self.assertEqual(r.json["workspace_id"], self.A, what)
                        after = self.snapshot()
                        self.assertNotEqual(after, before, what)
                        # The change is audited under the caller's own id and role.
                        mine = [j for t, j in after if t == "audit_log" and (t, j) not in before
                                and '"actor_id":"%s"' % tok["id"] in j
                                and '"actor_role":"%s"' % role in j]
                        self.assertEqual(len(mine), 1, what)
                    else:
                        self.forbidden(r, what)
                        self.assertUnchanged(before, "after a refused " + what)

    def test_workspace_token_pricing_routes(self):
        self.run_matrix(lambda label: label.split()[1].split("/")[1] in
                        ("workspaces", "tokens", "pricing"))

    def test_key_and_document_routes(self):
        self.run_matrix(lambda label: label.split()[1].split("/")[1] in
                        ("api-keys", "virtual-keys") + KINDS)


class Reading(RolesBase):
    def test_viewer_reads_everything_in_its_workspace(self):
        objs = self.objects(self.A)
        viewer = self.mint("viewer", self.A)
        member = self.mint("member", self.A)
        t = viewer["token"]
        self.assertEqual([w["id"] for w in self.list_all("/workspaces", token=t)], [self.A])
        self.assertEqual(self.ok("GET", "/workspaces/" + self.A, token=t)["name"], "alpha")
        for res in ("api-keys", "virtual-keys") + KINDS:
            got = self.ok("GET", "/%s/%s" % (res, objs[res]), token=t)
            self.assertEqual(got["id"], objs[res])
            self.assertEqual(got["workspace_id"], self.A)
            self.assertIn(objs[res], [o["id"] for o in self.list_all("/" + res, token=t)])
        for kind in KINDS:
            vs = self.ok("GET", "/%s/%s/versions" % (kind, objs[kind]), token=t)["data"]
            self.assertEqual([v["version"] for v in vs], [2, 1])
            self.assertEqual(self.ok("GET", "/%s/%s/versions/1" % (kind, objs[kind]),
                                     token=t)["version"], 1)
        # Prices are global and everybody reads them; so are gateway nodes.
        self.assertGreater(len(self.list_all("/pricing", token=t)), 40)
        self.assertEqual(self.ok("GET", "/pricing/openai/gpt-4o", token=t)["model"], "gpt-4o")
        self.assertEqual(self.ok("GET", "/nodes", token=t)["data"], [])
        # Its own token, but not others' tokens, the token list or the audit trail.
        me = self.ok("GET", "/tokens/me", token=t)
        self.assertEqual((me["id"], me["role"], me["workspace_id"]), (viewer["id"], "viewer", self.A))
        self.assertEqual(self.ok("GET", "/tokens/" + viewer["id"], token=t)["id"], viewer["id"])
        for tok in (viewer, member):
            self.forbidden(self.api("GET", "/tokens/" + objs["tokens"], token=tok["token"]))
            self.forbidden(self.api("GET", "/tokens", token=tok["token"]))
            self.forbidden(self.api("GET", "/audit", token=tok["token"]))

    def test_tokens_me(self):
        toks = self.tokens8()
        boot = self.ok("GET", "/tokens/me")
        self.assertEqual((boot["id"], boot["role"], boot["workspace_id"]),
                         ("tok_bootstrap", "owner", None))
        for (role, reach), tok in toks.items():
            me = self.ok("GET", "/tokens/me", token=tok["token"])
            self.assertEqual(me["object"], "admin_token")
            self.assertEqual(me["id"], tok["id"])
            self.assertEqual(me["role"], role)
            self.assertEqual(me["workspace_id"], self.A if reach == "A" else None)
            self.assertEqual(me["token_hint"], tok["token_hint"])
            self.assertNotIn("token", me)
            self.assertNotIn(tok["token"], str(me))
            self.assertIsNone(me["revoked_at"])
        self.unauthorized(self.api("GET", "/tokens/me", token=None))
        self.unauthorized(self.api("GET", "/tokens/me", token="sk-sluice-admin-" + "0" * 64))


class Isolation(RolesBase):
    """Tokens scoped to A against B's objects: 404 exactly like an id that
    does not exist, the object unchanged; lists never show them."""

    def id_routes(self, res, oid):
        """(method, path, body) of every route taking an id of resource res."""
        if res == "workspaces":
            return [("GET", "/workspaces/" + oid, None),
                    ("PATCH", "/workspaces/" + oid, {"name": "stolen"}),
                    ("DELETE", "/workspaces/" + oid, None)]
        if res == "tokens":
            return [("GET", "/tokens/" + oid, None), ("DELETE", "/tokens/" + oid, None)]
        base = "/%s/%s" % (res, oid)
        out = [("GET", base, None), ("PATCH", base, {"name": "stolen"}), ("DELETE", base, None),
               ("PATCH", base, {"name": "stolen"}, {"If-Match": '"1"'})]
        if res == "api-keys":
            out += [("POST", base + "/rotate", {}), ("POST", base + "/rotate", {"grace_period_seconds": 5}),
                    ("POST", base + "/revoke", None)]
        elif res == "virtual-keys":
            out += [("POST", base + "/rotate", {"credentials": {"api_key": self.secret(
                "sk-proj-" + secrets.token_hex(20))}})]
        else:
            out += [("PATCH", base, {DOCS[res][0]: DOCS2[res]}),
                    ("GET", base + "/versions", None), ("GET", base + "/versions?limit=1", None),
                    ("GET", base + "/versions/1", None), ("GET", base + "/versions/2", None),
                    ("POST", base + "/rollback", {"version": 1})]
        return out

    def test_other_workspace_objects_answer_404_on_every_route(self):
        objs = self.objects(self.B)
        admin_a, member_a = self.mint("admin", self.A), self.mint("member", self.A)
        owner_a = self.mint("owner", self.A)
        callers = {"tokens": [admin_a, owner_a], "workspaces": [admin_a, owner_a],
                   "api-keys": [member_a, admin_a], "virtual-keys": [member_a, admin_a]}
        for kind in KINDS:
            callers[kind] = [member_a, owner_a]
        # An all-workspace token is beyond any scope too.
        global_viewer = self.mint("viewer")
        before = self.snapshot()
        for res, oid in sorted(objs.items()):
            for caller in callers[res]:
                for route in self.id_routes(res, oid):
                    method, path, body = route[:3]
                    hdrs = route[3] if len(route) > 3 else None
                    what = "%s %s by scoped %s" % (method, path, caller["role"])
                    with self.subTest(what=what):
                        r = self.api(method, path, body, token=caller["token"], headers=hdrs)
                        m = self.api(method, path.replace(oid, MISSING[res]), body,
                                     token=caller["token"], headers=hdrs)
                        if res == "workspaces" and method == "DELETE" and caller["role"] != "owner":
                            # Never allowed to an admin, whatever the id: refused as such.
                            self.forbidden(r, what)
                        else:
                            self.not_found(r, what)
                        # Indistinguishable from an id that exists nowhere.
                        self.assertEqual((r.status, r.json), (m.status, m.json), what)
        for caller in (admin_a, owner_a):
            for method in ("GET", "DELETE"):
                self.not_found(self.api(method, "/tokens/" + global_viewer["id"], token=caller["token"]))
                self.not_found(self.api(method, "/tokens/tok_bootstrap", token=caller["token"]))
        self.assertUnchanged(before, "by requests on another workspace's objects")
        # Still there, as they were, for a token that reaches them.
        for res in ("api-keys", "virtual-keys") + KINDS:
            got = self.ok("GET", "/%s/%s" % (res, objs[res]))
            self.assertEqual(got["version"], 2 if res in KINDS else 1, res)
            self.assertNotEqual(got["name"], "stolen")
        self.assertIsNone(self.ok("GET", "/tokens/" + objs["tokens"])["revoked_at"])
        self.assertEqual(self.ok("GET", "/workspaces/" + self.B)["name"], "beta")

    def test_creates_in_another_workspace_answer_404(self):
        member_a, admin_a = self.mint("member", self.A), self.mint("admin", self.A)
        cfg_b = self.doc("configs", self.B)
        mine = self.api_key(self.A)
        before = self.snapshot()
        for ws in (self.B, MISSING["workspaces"]):
            bodies = [("/api-keys", {"name": "k", "workspace_id": ws}),
                      ("/virtual-keys", self.vk_body(ws))]
            for kind in KINDS:
                field, body = DOCS[kind]
                bodies.append(("/" + kind, {"name": "d", "workspace_id": ws, field: body}))
            for path, body in bodies:
                for caller in (member_a, admin_a):
                    r = self.api("POST", path, body, token=caller["token"])
                    self.not_found(r, "POST %s in %s by scoped %s" % (path, ws, caller["role"]))
                    self.assertEqual(r.json["error"]["message"], "workspace not found")
            r = self.api("POST", "/tokens", {"name": "t", "role": "viewer", "workspace_id": ws},
                         token=admin_a["token"])
            self.not_found(r, "POST /tokens in " + ws)
            self.assertEqual(r.json["error"]["message"], "workspace not found")
        # A default config of another workspace reads as one that does not exist.
        for cfg in (cfg_b["id"], MISSING["configs"]):
            r = self.api("POST", "/api-keys", {"name": "k", "default_config_id": cfg},
                         token=member_a["token"])
            self.err(r, 400, "invalid_field", "$.default_config_id")
            r = self.api("PATCH", "/api-keys/" + mine["id"], {"default_config_id": cfg},
                         token=member_a["token"])
            self.err(r, 400, "invalid_field", "$.default_config_id")
        self.assertUnchanged(before, "by creates aimed at another workspace")
        # Without a workspace_id a scoped token creates in its own workspace.
        h = {"Idempotency-Key": "same-key"}
        k = self.ok("POST", "/api-keys", {"name": "k"}, status=201, token=member_a["token"],
                    headers=h)
        self.secret(k["key"])
        self.assertEqual(k["workspace_id"], self.A)
        # Idempotency records belong to their token: the same key and body from a
        # token of B creates B's own key and never replays A's answer (and secret).
        member_b = self.mint("member", self.B)
        r = self.api("POST", "/api-keys", {"name": "k"}, token=member_b["token"], headers=h)
        self.assertEqual(r.status, 201, r)
        self.secret(r.json["key"])
        self.assertIsNone(r.header("idempotent-replayed"))
        self.assertEqual(r.json["workspace_id"], self.B)
        self.assertNotEqual(r.json["key"], k["key"])

    def test_lists_never_show_another_workspace(self):
        objs_a, objs_b = self.objects(self.A), self.objects(self.B)
        global_admin = self.mint("admin")
        global_viewer = self.mint("viewer")
        ids_b = set(objs_b.values()) | {global_admin["id"], global_viewer["id"], "tok_bootstrap"}
        for role in ROLES:
            tok = self.mint(role, self.A)
            t = tok["token"]
            resources = ["workspaces", "api-keys", "virtual-keys"] + list(KINDS)
            if RANK[role] >= RANK["admin"]:
                resources.append("tokens")
            for res in resources:
                what = "%s listed by scoped %s" % (res, role)
                items = self.list_all("/" + res, token=t, limit=2)
                ids = {i["id"] for i in items}
                self.assertFalse(ids & ids_b, what)
                self.assertIn(objs_a[res], ids, what)
                for i in items:
                    self.assertEqual(i["id"] if res == "workspaces" else i["workspace_id"], self.A, what)
                if res != "workspaces":
                    # Asking for another workspace gives nothing, exactly as for one
                    # that does not exist.
                    for ws in (self.B, MISSING["workspaces"]):
                        j = self.ok("GET", "/%s?workspace_id=%s" % (res, ws), token=t)
                        self.assertEqual((j["data"], j["has_more"]), ([], False), what)
                    mine = self.list_all("/%s?workspace_id=%s" % (res, self.A), token=t)
                    self.assertEqual({i["id"] for i in mine}, ids, what)
        # The filter itself works for a token that reaches everything.
        for res in ("api-keys", "virtual-keys") + KINDS:
            j = self.list_all("/%s?workspace_id=%s" % (res, self.B), token=global_viewer["token"])
            self.assertEqual([i["id"] for i in j], [objs_b[res]], res)
        tb = self.list_all("/tokens?workspace_id=" + self.B, token=global_admin["token"])
        self.assertEqual([i["id"] for i in tb], [objs_b["tokens"]])
        self.assertEqual({w["id"] for w in self.list_all("/workspaces", token=global_viewer["token"])},
                         {self.A, self.B})
        # The workspace list has no filter to point elsewhere.
        viewer_a = self.mint("viewer", self.A)
        for q in ("?workspace_id=" + self.B, "?after=" + self.B + "z"):
            j = self.ok("GET", "/workspaces" + q, token=viewer_a["token"])
            self.assertNotIn(self.B, {w["id"] for w in j["data"]})


class Tokens(RolesBase):
    def test_minting_never_above_role_nor_beyond_scope(self):
        admin_a, owner_a = self.mint("admin", self.A), self.mint("owner", self.A)
        admin_g, member_a = self.mint("admin"), self.mint("member", self.A)
        before = self.snapshot()
        refused = [
            (admin_a, {"role": "owner", "workspace_id": self.A}, 403),
            (admin_a, {"role": "owner"}, 403),
            (admin_a, {"role": "viewer", "workspace_id": None}, 403),
            (admin_a, {"role": "admin", "workspace_id": None}, 403),
            (owner_a, {"role": "owner", "workspace_id": None}, 403),
            (owner_a, {"role": "viewer", "workspace_id": None}, 403),
            (admin_g, {"role": "owner"}, 403),
            (admin_g, {"role": "owner", "workspace_id": self.A}, 403),
            (member_a, {"role": "viewer"}, 403),
            (member_a, {"role": "member"}, 403),
            (admin_a, {"role": "viewer", "workspace_id": self.B}, 404),
            (owner_a, {"role": "admin", "workspace_id": self.B}, 404),
        ]
        for caller, body, status in refused:
            body = dict(body, name="nope")
            what = "%s/%s minting %s" % (caller["role"], caller["workspace_id"], body)
            r = self.api("POST", "/tokens", body, token=caller["token"])
            if status == 403:
                self.forbidden(r, what)
            else:
                self.not_found(r, what)
        self.assertUnchanged(before, "by refused token creations")
        # What they may mint: up to their own role, within their own reach.
        t = self.mint("admin", token=admin_a["token"])
        self.assertEqual((t["role"], t["workspace_id"]), ("admin", self.A))
        t = self.mint("viewer", self.A, token=admin_a["token"])
        self.assertEqual(t["workspace_id"], self.A)
        t = self.mint("owner", token=owner_a["token"])
        self.assertEqual((t["role"], t["workspace_id"]), ("owner", self.A))
        t = self.mint("admin", token=admin_g["token"])
        self.assertEqual((t["role"], t["workspace_id"]), ("admin", None))
        t = self.mint("member", self.B, token=admin_g["token"])
        self.assertEqual(t["workspace_id"], self.B)
        self.assertEqual(t["created_by"], admin_g["id"])
        # A minted token works at once, with the reach it was given.
        self.assertEqual(self.ok("GET", "/tokens/me", token=t["token"])["workspace_id"], self.B)
        self.not_found(self.api("GET", "/workspaces/" + self.A, token=t["token"]))

    def test_revoking_never_above_role_nor_beyond_scope(self):
        admin_a, admin_a2 = self.mint("admin", self.A), self.mint("admin", self.A)
        owner_a, admin_g = self.mint("owner", self.A), self.mint("admin")
        member_a, member_a2 = self.mint("member", self.A), self.mint("member", self.A)
        viewer_g = self.mint("viewer")
        before = self.snapshot()
        for caller, target, status in [
                (admin_a, owner_a, 403), (admin_g, owner_a, 403), (admin_g, {"id": "tok_bootstrap"}, 403),
                (member_a, member_a2, 403), (member_a, admin_a, 403),
                (admin_a, {"id": "tok_bootstrap"}, 404), (admin_a, admin_g, 404),
                (admin_a, viewer_g, 404), (owner_a, {"id": "tok_bootstrap"}, 404)]:
            what = "%s/%s revoking %s" % (caller["role"], caller["workspace_id"], target["id"])
            r = self.api("DELETE", "/tokens/" + target["id"], token=caller["token"])
            if status == 403:
                self.forbidden(r, what)
            else:
                self.not_found(r, what)
        self.assertUnchanged(before, "by refused token revocations")
        self.ok("GET", "/tokens/me", token=owner_a["token"])
        # An admin revokes an admin of its workspace; an owner an admin; anybody itself.
        for caller, target in [(admin_a, admin_a2), (owner_a, admin_a), (admin_g, viewer_g),
                               (member_a2, member_a2)]:
            self.ok("GET", "/tokens/me", token=target["token"])
            rv = self.ok("DELETE", "/tokens/" + target["id"], token=caller["token"])
            self.assertIsNotNone(rv["revoked_at"])
            self.unauthorized(self.api("GET", "/tokens/me", token=target["token"]))
        ev = self.ok("GET", "/audit?action=revoke&resource_type=admin_token")["data"]
        self.assertEqual([(e["resource_id"], e["actor_id"]) for e in ev],
                         [(member_a2["id"], member_a2["id"]), (viewer_g["id"], admin_g["id"]),
                          (admin_a["id"], owner_a["id"]), (admin_a2["id"], admin_a["id"])])

    def test_revoked_and_expired_tokens_answer_401(self):
        ws = self.A
        tok = self.mint("admin", ws)
        t = tok["token"]
        k = self.api_key(ws, token=t)
        self.ok("GET", "/tokens/me", token=t)
        self.ok("DELETE", "/tokens/" + tok["id"])
        # At once, on every kind of route, reads and writes alike.
        before = self.snapshot()
        for method, path, body in [("GET", "/tokens/me", None), ("GET", "/workspaces", None),
                                   ("GET", "/api-keys/" + k["id"], None),
                                   ("POST", "/api-keys", {"name": "k", "workspace_id": ws}),
                                   ("DELETE", "/api-keys/" + k["id"], None),
                                   ("DELETE", "/tokens/" + tok["id"], None),
                                   ("GET", "/pricing", None), ("GET", "/audit", None)]:
            self.unauthorized(self.api(method, path, body, token=t), "%s %s" % (method, path))
        self.assertUnchanged(before, "by a revoked token")
        # Expiry given in the past at creation: refused from the first request.
        past = self.mint("member", ws, expires_at="2001-01-01T00:00:00Z")
        self.assertTrue(past["expires_at"].startswith("2001-01-01"))
        self.unauthorized(self.api("GET", "/tokens/me", token=past["token"]))
        self.unauthorized(self.api("GET", "/api-keys", token=past["token"]))
        # A future expiry works until it passes.
        fut = self.mint("member", ws, expires_at="2099-01-01T00:00:00Z")
        self.ok("GET", "/tokens/me", token=fut["token"])
        self.ok("POST", "/virtual-keys", self.vk_body(ws), status=201, token=fut["token"])
        self.sql("UPDATE admin_tokens SET expires_at = now() - interval '1 second' WHERE id = '%s'"
                 % fut["id"])
        before = self.snapshot()
        self.unauthorized(self.api("GET", "/tokens/me", token=fut["token"]))
        self.unauthorized(self.api("POST", "/virtual-keys", self.vk_body(ws), token=fut["token"]))
        self.assertUnchanged(before, "by an expired token")
        # An owner token is no different.
        own = self.mint("owner")
        self.sql("UPDATE admin_tokens SET expires_at = now() - interval '1 second' WHERE id = '%s'"
                 % own["id"])
        self.unauthorized(self.api("POST", "/workspaces", {"name": "x"}, token=own["token"]))
        # Tokens of a deleted workspace go with it.
        b_admin = self.mint("admin", self.B)
        self.ok("GET", "/tokens/me", token=b_admin["token"])
        self.ok("DELETE", "/workspaces/" + self.B)
        self.unauthorized(self.api("GET", "/tokens/me", token=b_admin["token"]))
        self.unauthorized(self.api("GET", "/workspaces", token=b_admin["token"]))


class Audit(RolesBase):
    def test_audit_admin_only_and_own_workspace_only(self):
        admin_a, owner_a = self.mint("admin", self.A), self.mint("owner", self.A)
        admin_g = self.mint("admin")
        ka = self.api_key(self.A, token=self.mint("member", self.A)["token"])
        kb = self.api_key(self.B)
        self.ok("PUT", "/pricing/openai/audit-model", {"input_per_mtok": 1, "output_per_mtok": 1},
                status=201)
        self.ok("PATCH", "/workspaces/" + self.B, {"description": "b"})
        for role in ("viewer", "member"):
            for reach in (self.A, None):
                t = self.mint(role, reach)["token"]
                self.forbidden(self.api("GET", "/audit", token=t))
                self.forbidden(self.api("GET", "/audit?workspace_id=" + self.A, token=t))
        everything = self.list_all("/audit")
        for scoped in (admin_a, owner_a):
            t = scoped["token"]
            ev = self.list_all("/audit", token=t, limit=3)
            self.assertTrue(ev)
            self.assertEqual({e["workspace_id"] for e in ev}, {self.A})
            self.assertEqual([e["id"] for e in ev],
                             [e["id"] for e in everything if e["workspace_id"] == self.A])
            self.assertIn(ka["id"], {e["resource_id"] for e in ev})
            self.assertNotIn(kb["id"], {e["resource_id"] for e in ev})
            self.assertNotIn("openai/audit-model", {e["resource_id"] for e in ev})
            self.assertNotIn(self.B, {e["resource_id"] for e in ev})
            self.assertEqual(self.ok("GET", "/audit?resource_id=" + kb["id"], token=t)["data"], [])
            self.assertEqual(self.ok("GET", "/audit?resource_type=model_price", token=t)["data"], [])
            # Asking for another workspace answers as for one that does not exist.
            rb = self.api("GET", "/audit?workspace_id=" + self.B, token=t)
            rm = self.api("GET", "/audit?workspace_id=" + MISSING["workspaces"], token=t)
            self.not_found(rb)
            self.assertEqual((rb.status, rb.json), (rm.status, rm.json))
            own = self.list_all("/audit?workspace_id=" + self.A, token=t)
            self.assertEqual([e["id"] for e in own], [e["id"] for e in ev])
        # A token that reaches everything sees everything, and may filter.
        ev = self.list_all("/audit", token=admin_g["token"])
        self.assertEqual([e["id"] for e in ev], [e["id"] for e in everything])
        self.assertIn(None, {e["workspace_id"] for e in ev})
        eb = self.list_all("/audit?workspace_id=" + self.B, token=admin_g["token"])
        self.assertTrue(eb)
        self.assertEqual({e["workspace_id"] for e in eb}, {self.B})
        self.assertIn(kb["id"], {e["resource_id"] for e in eb})


if __name__ == "__main__":
    main()
