"""
The AWS Bedrock adapter end to end: OpenAI requests to the gateway with
x-sluice-provider: bedrock and the x-sluice-aws-* credential headers go to
the mock's Bedrock Runtime API (POST /model/{modelId}/converse,
/converse-stream, /invoke) as SigV4-signed Converse and InvokeModel
requests. Each test checks the request the mock recorded (path with the
percent-encoded model id, body, X-Amz-Date, X-Amz-Security-Token, and the
Authorization header, whose signature is recomputed here independently
with hashlib/hmac from the recorded bytes) and the OpenAI answer, stream,
tool calls, embeddings and errors the client gets. The secret access key
must never appear in a response, in what the mock received, or in the
gateway's stderr. Faults come from the mock's x-mock-* headers, which the
adapter forwards (unsigned) like any other custom client header.
"""
import base64
import hashlib
import hmac
import json
import re
import struct
import time
from urllib.parse import quote

import harness
from harness import GatewayTestCase, request

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
MODEL_PATH = "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = ("IQoJb3JpZ2luX2VjEXAMPLEtokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/"
         "BBBBBBBBBBBBBBBBBBBBBBBB+CCCCCCCCCCCCCCCC==")
REGION = "us-west-2"
TEXT = "This is a mock response."
WORDS = ["This", " is", " a", " mock", " response."]
THROTTLED = "Too many requests, please wait before trying again."
EMBED_DIMS = 8  # the mock's default
TOOLS = [{"type": "function",
          "function": {"name": "get_weather", "description": "Weather for a city",
                       "parameters": {"type": "object",
                                      "properties": {"city": {"type": "string"}},
                                      "required": ["city"]}}}]


def tokens(chars):
    """The mock's token count for this many characters."""
    return max(chars // 4, 1)


def hmac256(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


class BedrockCase(GatewayTestCase):

    def br_headers(self, token=None, portkey=False, **extra):
        p = "x-portkey-" if portkey else "x-sluice-"
        h = [(p + "provider", "bedrock"),
             (p + "custom-host", self.mock.base),
             (p + "aws-access-key-id", KEY_ID),
             (p + "aws-secret-access-key", SECRET),
             (p + "aws-region", REGION),
             ("Content-Type", "application/json")]
        if token is not None:
            h.append((p + "aws-session-token", token))
        for k, v in extra.items():
            h.append((k.replace("_", "-"), v))
        return h

    def br(self, body, path="/v1/chat/completions", headers=None, token=None, **extra):
        r = request(self.gw.port, "POST", path,
                    headers if headers is not None else self.br_headers(token, **extra), body,
                    timeout=15.0)
        self.assert_no_secret(r)
        return r

    def assert_no_secret(self, r):
        self.assertNotIn(SECRET.encode(), r.body, r)
        for k, v in r.headers:
            self.assertNotIn(SECRET, v, r)

    def tearDown(self):
        super().tearDown()
        if self.gw is not None:
            self.assertNotIn(SECRET, self.gw.stderr())
        if self.mock is not None:
            self.assertNotIn(SECRET, self.mock.stderr())

    # -- the recorded upstream request --------------------------------------------

    def upstream(self, op, model_path=MODEL_PATH, token=None, accept="application/json"):
        """The one request the mock got: (record, parsed body). Checks the path,
        the headers and the signature."""
        reqs = self.mock.requests()
        self.assertEqual(len(reqs), 1, reqs)
        rec = reqs[0]
        self.assertEqual(rec["method"], "POST")
        self.assertEqual(rec["path"], "/model/%s/%s" % (model_path, op))
        hdrs = {k.lower(): v for k, v in rec["headers"]}
        self.assertEqual(hdrs.get("content-type"), "application/json")
        if accept is not None:
            self.assertEqual(hdrs.get("accept"), accept)
        self.assertFalse([k for k in hdrs if k.startswith("x-sluice-")], hdrs)
        for k, v in rec["headers"]:
            self.assertNotIn(SECRET, v)
        self.assertNotIn(SECRET.encode(), base64.b64decode(rec["body_base64"]))
        self.check_signature(rec, hdrs, token)
        return rec, json.loads(rec["body"])

    def check_signature(self, rec, hdrs, token):
        """AWS Signature Version 4, recomputed from the bytes the mock received."""
        m = re.match(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/bedrock/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$",
                     hdrs.get("authorization", ""))
        self.assertIsNotNone(m, hdrs)
        key_id, date, region, signed, signature = m.groups()
        self.assertEqual(key_id, KEY_ID)
        self.assertEqual(region, REGION)
        amz_date = hdrs.get("x-amz-date", "")
        self.assertRegex(amz_date, r"^\d{8}T\d{6}Z$")
        self.assertEqual(amz_date[:8], date)
        sent = time.mktime(time.strptime(amz_date, "%Y%m%dT%H%M%SZ")) - time.timezone
        self.assertLess(abs(sent - time.time()), 300)
        want = ["content-type", "host", "x-amz-date"]
        if token is not None:
            want.append("x-amz-security-token")
            self.assertEqual(hdrs.get("x-amz-security-token"), token)
        else:
            self.assertNotIn("x-amz-security-token", hdrs)
        self.assertEqual(signed, ";".join(want))
        # The canonical URI encodes the path as sent once more (%3A -> %253A).
        path = rec["path"].split("?")[0]
        canon_uri = "/".join(quote(seg, safe="-_.~") for seg in path.split("/"))
        canon_headers = "".join("%s:%s\n" % (h, " ".join(hdrs[h].split())) for h in want)
        body = base64.b64decode(rec["body_base64"])
        creq = "\n".join(["POST", canon_uri, "", canon_headers, signed,
                          hashlib.sha256(body).hexdigest()])
        scope = "%s/%s/bedrock/aws4_request" % (date, region)
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(creq.encode("utf-8")).hexdigest()])
        k = hmac256(("AWS4" + SECRET).encode("utf-8"), date)
        k = hmac256(k, region)
        k = hmac256(k, "bedrock")
        k = hmac256(k, "aws4_request")
        self.assertEqual(hmac.new(k, sts.encode("utf-8"), hashlib.sha256).hexdigest(), signature,
                         "signature mismatch; canonical request:\n" + creq)

    def sse(self, r):
        """The data of each event: parsed JSON, or "[DONE]"."""
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type", "").startswith("text/event-stream"), r)
        self.assertTrue(r.complete, r)
        return ["[DONE]" if ev.is_done() else ev.json() for ev in r.events()]

    def assert_bedrock_healthy(self):
        self.assertTrue(self.gw.alive(), "gateway died; stderr:\n" + self.gw.stderr()[-4000:])
        self.mock.clear()
        r = self.br({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["choices"][0]["message"]["content"], TEXT)


class Converse(BedrockCase):

    def test_converse(self):
        body = {"model": MODEL,
                "messages": [{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": "Hello there"}],
                "temperature": 0.5, "max_tokens": 50, "top_p": 0.9, "stop": ["END"]}
        r = self.br(body)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type").startswith("application/json"), r)
        j = r.json()
        self.assertEqual(j["object"], "chat.completion")
        self.assertEqual(j["model"], MODEL)
        self.assertTrue(j["id"].startswith("chatcmpl-"), j)
        self.assertIsInstance(j["created"], int)
        c = j["choices"][0]
        self.assertEqual(c["message"], {"role": "assistant", "content": TEXT})
        self.assertEqual(c["finish_reason"], "stop")
        prompt = tokens(len("Be brief.") + len("Hello there"))
        self.assertEqual(j["usage"]["prompt_tokens"], prompt)
        self.assertEqual(j["usage"]["completion_tokens"], 5)
        self.assertEqual(j["usage"]["total_tokens"], prompt + 5)
        _, sent = self.upstream("converse")
        self.assertEqual(sent, {
            "messages": [{"role": "user", "content": [{"text": "Hello there"}]}],
            "system": [{"text": "Be brief."}],
            "inferenceConfig": {"maxTokens": 50, "temperature": 0.5, "topP": 0.9,
                                "stopSequences": ["END"]}})

    def test_session_token_and_portkey_headers(self):
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
        r = self.br(body, token=TOKEN)
        self.assertEqual(r.status, 200, r)
        self.upstream("converse", token=TOKEN)
        self.mock.clear()
        r = self.br(body, headers=self.br_headers(TOKEN, portkey=True))
        self.assertEqual(r.status, 200, r)
        self.upstream("converse", token=TOKEN)

    def test_max_tokens_is_length(self):
        r = self.br({"model": MODEL, "max_tokens": 2,
                     "messages": [{"role": "user", "content": "Hello"}]})
        self.assertEqual(r.status, 200, r)
        c = r.json()["choices"][0]
        self.assertEqual(c["message"]["content"], "This is")
        self.assertEqual(c["finish_reason"], "length")

    def test_tool_round_trip(self):
        body = {"model": MODEL, "tools": TOOLS, "tool_choice": "required",
                "messages": [{"role": "user", "content": "Weather in Paris?"}]}
        r = self.br(body)
        self.assertEqual(r.status, 200, r)
        c = r.json()["choices"][0]
        self.assertEqual(c["finish_reason"], "tool_calls")
        self.assertIsNone(c["message"]["content"])
        calls = c["message"]["tool_calls"]
        self.assertEqual(len(calls), 1, calls)
        self.assertEqual(calls[0]["type"], "function")
        self.assertTrue(calls[0]["id"].startswith("tooluse_mock_"), calls)
        self.assertEqual(calls[0]["function"]["name"], "get_weather")
        self.assertEqual(calls[0]["function"]["arguments"], '{"city":"mock"}')
        _, sent = self.upstream("converse")
        self.assertEqual(sent["toolConfig"], {
            "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather for a city",
                                    "inputSchema": {"json": TOOLS[0]["function"]["parameters"]}}}],
            "toolChoice": {"any": {}}})

        # The result goes back as a toolResult block in a user turn.
        self.mock.clear()
        follow = {"model": MODEL, "tools": TOOLS, "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "18C, sunny"}]}
        r = self.br(follow)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["choices"][0]["message"]["content"], TEXT)
        _, sent = self.upstream("converse")
        self.assertEqual(sent["messages"], [
            {"role": "user", "content": [{"text": "Weather in Paris?"}]},
            {"role": "assistant", "content": [{"toolUse": {
                "toolUseId": calls[0]["id"], "name": "get_weather", "input": {"city": "mock"}}}]},
            {"role": "user", "content": [{"toolResult": {
                "toolUseId": calls[0]["id"], "content": [{"text": "18C, sunny"}]}}]}])

    def test_image_urls_refused(self):
        body = {"model": MODEL, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}
        r = self.br(body)
        e = self.assert_error(r, 400, type_="invalid_request_error")
        self.assertIn("base64 data URLs", e["message"])
        self.assertEqual(self.mock.requests(), [])
        # A data URL goes as bytes.
        body["messages"][0]["content"][1]["image_url"]["url"] = "data:image/png;base64,iVBORw0K"
        r = self.br(body)
        self.assertEqual(r.status, 200, r)
        _, sent = self.upstream("converse")
        self.assertEqual(sent["messages"][0]["content"][1],
                         {"image": {"format": "png", "source": {"bytes": "iVBORw0K"}}})


class Stream(BedrockCase):

    def test_stream_text(self):
        body = {"model": MODEL, "stream": True, "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "Hello there"}]}
        r = self.br(body)
        evs = self.sse(r)
        self.assertEqual(evs[-1], "[DONE]")
        chunks = evs[:-1]
        for c in chunks:
            self.assertEqual(c["object"], "chat.completion.chunk")
            self.assertEqual(c["model"], MODEL)
            self.assertEqual(c["id"], chunks[0]["id"])
        self.assertEqual(chunks[0]["choices"][0]["delta"], {"role": "assistant", "content": ""})
        texts = [c["choices"][0]["delta"].get("content") for c in chunks[1:] if c["choices"]]
        self.assertEqual([t for t in texts if t], WORDS)
        fin = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
        self.assertEqual([f for f in fin if f], ["stop"])
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["prompt_tokens"], tokens(len("Hello there")))
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 5)
        self.upstream("converse-stream", accept=None)

    def test_stream_tools(self):
        body = {"model": MODEL, "stream": True, "tools": TOOLS,
                "messages": [{"role": "user", "content": "Weather in Paris?"}]}
        r = self.br(body)
        evs = self.sse(r)
        self.assertEqual(evs[-1], "[DONE]")
        chunks = evs[:-1]
        self.assertEqual(chunks[0]["choices"][0]["delta"], {"role": "assistant", "content": ""})
        calls = [tc for c in chunks if c["choices"]
                 for tc in c["choices"][0]["delta"].get("tool_calls", [])]
        self.assertTrue(calls[0]["id"].startswith("tooluse_mock_"), calls)
        self.assertEqual(calls[0]["function"]["name"], "get_weather")
        self.assertTrue(all(tc["index"] == 0 for tc in calls), calls)
        self.assertTrue(all("id" not in tc for tc in calls[1:]), calls)
        args = "".join(tc["function"].get("arguments", "") for tc in calls)
        self.assertEqual(json.loads(args), {"city": "mock"})
        self.assertGreater(len(calls), 2)  # the arguments came in pieces
        fin = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
        self.assertEqual([f for f in fin if f], ["tool_calls"])
        _, sent = self.upstream("converse-stream", accept=None)
        self.assertEqual(sent["toolConfig"]["tools"][0]["toolSpec"]["name"], "get_weather")

    def test_mid_stream_exception(self):
        body = {"model": MODEL, "stream": True,
                "messages": [{"role": "user", "content": "Hello"}]}
        for fault, words in (("1", "bedrock: throttlingException: " + THROTTLED),
                             ("modelStreamErrorException",
                              "bedrock: modelStreamErrorException: Mock stream error.")):
            self.mock.clear()
            r = self.br(body, x_mock_stream_error=fault)
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.complete, r)
            evs = r.events()
            self.assertFalse([e for e in evs if e.is_done()], evs)
            texts = [e.json()["choices"][0]["delta"].get("content") for e in evs[:-1]]
            self.assertEqual([t for t in texts if t], WORDS[:2])
            self.assertTrue(evs[-1].is_error(), evs)
            err = evs[-1].json()["error"]
            self.assertTrue(err["message"].startswith(words), err)
            self.assertEqual(err["code"], "upstream_stream_error")
        self.assert_bedrock_healthy()

    def test_corrupted_frame(self):
        body = {"model": MODEL, "stream": True,
                "messages": [{"role": "user", "content": "Hello"}]}
        r = self.br(body, x_mock_malformed="crc")
        self.assertEqual(r.status, 200, r)
        evs = r.events()
        self.assertEqual(evs[0].json()["choices"][0]["delta"]["role"], "assistant")
        self.assertFalse([e for e in evs if e.is_done()], evs)
        self.assertTrue(evs[-1].is_error(), evs)
        self.assertEqual(evs[-1].json()["error"]["code"], "upstream_bad_response")
        self.assert_bedrock_healthy()

    def test_cut_stream_is_incomplete(self):
        body = {"model": MODEL, "stream": True,
                "messages": [{"role": "user", "content": "Hello"}]}
        r = self.br(body, x_mock_drop_after="3")
        self.assertEqual(r.status, 200, r)
        evs = r.events()
        self.assertFalse([e for e in evs if e.is_done()], evs)
        self.assertTrue(evs[-1].is_error(), evs)
        self.assert_bedrock_healthy()


class Errors(BedrockCase):

    def test_upstream_error_status(self):
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
        for status, etype, code, msg in (
                (429, "rate_limit_error", "ThrottlingException", THROTTLED),
                (400, "invalid_request_error", "ValidationException",
                 "Mock error 400 (x-mock-status)."),
                (403, "permission_error", "AccessDeniedException", None),
                (503, "api_error", "ServiceUnavailableException",
                 "Bedrock is unable to process your request.")):
            for stream in (False, True):
                self.mock.clear()
                r = self.br(dict(body, stream=stream), x_mock_status=str(status))
                e = self.assert_error(r, status, code=code, type_=etype)
                if msg is not None:
                    self.assertEqual(e["message"], msg)
                self.assertEqual(len(self.mock.requests()), 1)
        # Bedrock's own validation of the body (an empty system block list is fine, a bad
        # model id for InvokeModel is not).
        self.mock.clear()
        r = self.br({"model": "amazon.titan-embed-text-v2:0", "input": "x", "dimensions": 100},
                    path="/v1/embeddings")
        e = self.assert_error(r, 400, code="ValidationException", type_="invalid_request_error")
        self.assertIn("dimensions", e["message"])
        self.assert_bedrock_healthy()

    def test_missing_credentials(self):
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
        base = [("x-sluice-provider", "bedrock"), ("x-sluice-custom-host", self.mock.base),
                ("Content-Type", "application/json")]
        r = self.br(body, headers=base + [("x-sluice-aws-region", REGION)])
        e = self.assert_error(r, 401, code="missing_api_key", type_="authentication_error")
        self.assertIn("x-sluice-aws-access-key-id", e["message"])
        self.assertIn("x-sluice-aws-secret-access-key", e["message"])
        r = self.br(body, headers=base + [("x-sluice-aws-access-key-id", KEY_ID),
                                          ("x-sluice-aws-region", REGION)])
        e = self.assert_error(r, 401, code="missing_api_key")
        self.assertIn("x-sluice-aws-secret-access-key", e["message"])
        # The secret without a region: refused, and the secret is not repeated.
        r = self.br(body, headers=base + [("x-sluice-aws-access-key-id", KEY_ID),
                                          ("x-sluice-aws-secret-access-key", SECRET)])
        e = self.assert_error(r, 400, param="x-sluice-aws-region")
        self.assertEqual(self.mock.requests(), [])


class Embeddings(BedrockCase):

    def test_titan(self):
        r = self.br({"model": TITAN, "input": "Hello there, how are you?"}, path="/v1/embeddings")
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["object"], "list")
        self.assertEqual(j["model"], TITAN)
        self.assertEqual(len(j["data"]), 1)
        d = j["data"][0]
        self.assertEqual((d["object"], d["index"]), ("embedding", 0))
        self.assertEqual(len(d["embedding"]), EMBED_DIMS)
        self.assertEqual(j["usage"], {"prompt_tokens": 6, "total_tokens": 6})
        _, sent = self.upstream("invoke", model_path="amazon.titan-embed-text-v2%3A0")
        self.assertEqual(sent, {"inputText": "Hello there, how are you?"})

        # base64: the same vector as little-endian float32.
        self.mock.clear()
        r = self.br({"model": TITAN, "input": ["Hello there, how are you?"], "dimensions": 256,
                     "encoding_format": "base64"}, path="/v1/embeddings")
        self.assertEqual(r.status, 200, r)
        raw = base64.b64decode(r.json()["data"][0]["embedding"])
        self.assertEqual(len(raw), 4 * 256)
        v = struct.unpack("<256f", raw)
        self.assertAlmostEqual(sum(x * x for x in v), 1.0, places=3)
        _, sent = self.upstream("invoke", model_path="amazon.titan-embed-text-v2%3A0")
        self.assertEqual(sent, {"inputText": "Hello there, how are you?", "dimensions": 256})

        # Titan embeds one text per call.
        self.mock.clear()
        r = self.br({"model": TITAN, "input": ["a", "b"]}, path="/v1/embeddings")
        e = self.assert_error(r, 400, param="input")
        self.assertIn("one text per request", e["message"])
        self.assertEqual(self.mock.requests(), [])

    def test_cohere(self):
        r = self.br({"model": COHERE, "input": ["Hello there", "General Kenobi"]},
                    path="/v1/embeddings", x_sluice_cohere_input_type="search_query")
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual([d["index"] for d in j["data"]], [0, 1])
        self.assertTrue(all(len(d["embedding"]) == EMBED_DIMS for d in j["data"]))
        want = tokens(len("Hello there")) + tokens(len("General Kenobi"))
        self.assertEqual(j["usage"], {"prompt_tokens": want, "total_tokens": want})
        _, sent = self.upstream("invoke", model_path=COHERE)
        self.assertEqual(sent, {"texts": ["Hello there", "General Kenobi"],
                                "input_type": "search_query"})


if __name__ == "__main__":
    harness.main()
