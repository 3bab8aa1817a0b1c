"""
Every provider in the table (as `sluice-gateway --list-providers` prints it)
gets a request through the gateway to the mock, in that provider's own API
format: the right path, the right auth style, and an OpenAI answer back.
A provider added to the table is tested here without touching this file.
"""
import json
import re
import subprocess
import urllib.parse

import harness
from harness import GatewayTestCase, request

TEXT = "This is a mock response."
EMBED_MODELS = {"voyage": "voyage-3", "jina": "jina-embeddings-v3"}


def provider_table():
    out = subprocess.run([harness.gateway_binary(), "--list-providers"], check=True,
                         capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\| `([a-z0-9-]+)` \| [^|]+ \| ([a-z0-9-]+) \| `([^`]+)` \| ([^|]+) \| ([^|]+) \|",
                     line)
        if m:
            rows.append({"name": m.group(1), "format": m.group(2), "base": m.group(3),
                         "auth": m.group(4).strip(), "endpoints": m.group(5).strip()})
    return rows


class EveryProvider(GatewayTestCase):
    gateway_args = ("--workers", "1")

    def call(self, p):
        """(headers, path, body, expected upstream path, auth check) for provider p."""
        name, fmt = p["name"], p["format"]
        mock = self.mock.base
        chat = "chat" in p["endpoints"].split(", ")
        model = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5",
                 "gemini": "gemini-2.0-flash", "bedrock-converse":
                 "anthropic.claude-3-haiku-20240307-v1:0", "cohere-v2": "command-r-plus",
                 "azure-openai": "gpt-4o"}[fmt]
        h = [("x-sluice-provider", name), ("Authorization", "Bearer sk-prov"),
             ("Content-Type", "application/json")]
        if chat:
            path = "/v1/chat/completions"
            body = {"model": model, "messages": [{"role": "user", "content": "Hello"}]}
        else:
            path = "/v1/embeddings"
            body = {"model": EMBED_MODELS.get(name, model), "input": "Hello"}
        want_auth = ("authorization", "Bearer sk-prov")
        if fmt == "openai":
            host = mock + "/v1"
            up = "/v1" + path[3:]
        elif fmt == "azure-openai":
            host = mock + "/openai"
            h.append(("x-sluice-azure-deployment-id", "dep-1"))
            up = "/openai/deployments/dep-1" + path[3:]
            want_auth = ("api-key", "sk-prov")
        elif fmt == "anthropic":
            host = mock + "/v1"
            up = "/v1/messages"
            want_auth = ("x-api-key", "sk-prov")
        elif fmt == "gemini" and name == "vertex-ai":
            host = mock + "/v1/projects/p1/locations/us-central1/publishers/google"
            up = "/v1/projects/p1/locations/us-central1/publishers/google/models/%s:generateContent" % model
        elif fmt == "gemini":
            host = mock + "/v1beta"
            up = "/v1beta/models/%s:generateContent" % model
            want_auth = ("x-goog-api-key", "sk-prov")
        elif fmt == "bedrock-converse":
            host = mock
            h += [("x-sluice-aws-access-key-id", "AKIDEXAMPLE"),
                  ("x-sluice-aws-secret-access-key", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                  ("x-sluice-aws-region", "us-east-1")]
            up = "/model/%s/converse" % urllib.parse.quote(model, safe="")
            want_auth = ("authorization", re.compile(
                r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/us-east-1/bedrock/aws4_request, "
                r"SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}"))
        elif fmt == "cohere-v2":
            host = mock + "/v2"
            up = "/v2/chat" if chat else "/v2/embed"
        else:
            self.fail("format %s has no case here" % fmt)
        h.append(("x-sluice-custom-host", host))
        return h, path, body, up, want_auth

    def test_every_provider_reaches_the_mock_in_its_format(self):
        table = provider_table()
        self.assertGreaterEqual(len(table), 40)
        failures = []
        for p in table:
            self.mock.clear()
            h, path, body, up, (aname, avalue) = self.call(p)
            r = request(self.gw.port, "POST", path, h, body)
            rec = self.mock.requests()
            try:
                self.assertEqual(r.status, 200, r)
                j = r.json()
                if path.endswith("/chat/completions"):
                    self.assertEqual(j["object"], "chat.completion", j)
                    self.assertEqual(j["choices"][0]["message"]["content"], TEXT, j)
                    self.assertGreater(j["usage"]["completion_tokens"], 0, j)
                else:
                    self.assertEqual(j["object"], "list", j)
                    self.assertIsInstance(j["data"][0]["embedding"], list, j)
                self.assertEqual(len(rec), 1, rec)
                self.assertEqual(rec[0]["path"].split("?")[0], up)
                hdrs = {k.lower(): v for k, v in rec[0]["headers"]}
                got = hdrs.get(aname)
                if hasattr(avalue, "fullmatch"):
                    self.assertIsNotNone(got and avalue.fullmatch(got), hdrs)
                else:
                    self.assertEqual(got, avalue, hdrs)
                for k in hdrs:
                    self.assertFalse(k.startswith("x-sluice-") or k.startswith("x-portkey-"), k)
                self.assertNotIn("wJalrXUtnFEMI", json.dumps(rec[0]["headers"]))
            except AssertionError as e:
                failures.append("%s (%s): %s" % (p["name"], p["format"], str(e)[:400]))
        self.assertEqual(failures, [], "\n".join(failures))
        # Usage normalised for every format: each provider's tokens are counted.
        m = self.metrics()
        for p in table:
            kind = "completion" if "chat" in p["endpoints"].split(", ") else "prompt"
            got = sum(v for (name, labels), v in m.items()
                      if name == "sluice_tokens_total" and dict(labels).get("provider") == p["name"]
                      and dict(labels).get("type") == kind)
            self.assertGreater(got, 0, "no %s tokens counted for %s" % (kind, p["name"]))

    def test_stream_usage_is_counted_without_changing_the_clients_stream(self):
        body = dict(harness.CHAT_BODY, stream=True)
        r = self.chat(body=body)
        self.assertEqual(r.status, 200, r)
        evs = r.events()
        self.assertTrue(evs[-1].is_done(), r)
        for e in evs[:-1]:
            j = e.json()
            self.assertNotIn("usage", j, j)  # the client did not ask for it
            self.assertTrue(j["choices"], j)
        sent = json.loads(self.mock.last()["body"])
        self.assertEqual(sent["stream_options"], {"include_usage": True})
        labels = dict(provider="openai", model="gpt-4o-mini", status="200", type="completion")
        m = self.wait_metric(lambda m: harness.metric(m, "sluice_tokens_total", **labels))
        self.assertEqual(harness.metric(m, "sluice_tokens_total", **labels), 5)

    def test_an_endpoint_the_provider_lacks_is_refused_before_any_call(self):
        r = self.chat(headers=[("x-sluice-provider", "voyage"), ("Authorization", "Bearer k"),
                               ("Content-Type", "application/json"),
                               ("x-sluice-custom-host", self.mock.base + "/v1")])
        self.assert_error(r, 400, code="unsupported_endpoint")
        self.assertEqual(self.mock.requests(), [])

    def test_missing_url_parameter_names_its_header(self):
        h = [("x-sluice-provider", "azure-openai"), ("Authorization", "Bearer k"),
             ("Content-Type", "application/json")]
        r = self.chat(headers=h)
        self.assert_error(r, 400, param="x-sluice-azure-resource-name")
        self.assertEqual(self.mock.requests(), [])


if __name__ == "__main__":
    harness.main()
