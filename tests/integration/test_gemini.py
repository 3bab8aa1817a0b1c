"""
The Gemini adapter end to end: OpenAI-format clients through the real
gateway to the mock's Gemini API (/v1beta) and Vertex AI routes. Each test
checks what the client got and, from the mock's recording, the exact
upstream request (path, auth header, body shape).
"""
import json
import time

import harness
from harness import GatewayTestCase, build_request, request, stream_events

MODEL = "gemini-2.0-flash"
MOCK_TEXT = "This is a mock response."
KEY = "AIza-test-key"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "strict": True,
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
            },
            "required": ["city"],
        },
    },
}


def header(rec, name):
    for k, v in rec["headers"]:
        if k.lower() == name.lower():
            return v
    return None


class Gemini(GatewayTestCase):

    def headers(self, **extra):
        h = [("x-sluice-provider", "google"),
             ("x-sluice-custom-host", self.mock.base + "/v1beta"),
             ("Authorization", "Bearer " + KEY),
             ("Content-Type", "application/json")]
        for k, v in extra.items():
            h.append((k.replace("_", "-"), v))
        return h

    def body(self, **kw):
        b = {"model": MODEL, "messages": [{"role": "user", "content": "Hello there"}]}
        b.update(kw)
        return b

    def last_upstream(self):
        rec = self.mock.last()
        self.assertIsNotNone(rec, "the mock saw no request")
        return rec, json.loads(rec["body"])

    def open_stream(self, body, headers=None):
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             headers if headers is not None else self.headers(), body, host="x"))
        deadline = time.monotonic() + 15
        r = c.read_head(deadline=deadline)
        return r, list(stream_events(c, r, deadline=deadline)) if r.status == 200 else []

    # -- chat ---------------------------------------------------------------------------

    def test_chat(self):
        r = self.chat(self.body(messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
        ], temperature=0.3, max_tokens=50, stop=["END"]), self.headers())
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["object"], "chat.completion")
        self.assertEqual(j["model"], MODEL)
        self.assertTrue(j["id"].startswith("chatcmpl-"))
        ch = j["choices"][0]
        self.assertEqual(ch["index"], 0)
        self.assertEqual(ch["message"], {"role": "assistant", "content": MOCK_TEXT})
        self.assertEqual(ch["finish_reason"], "stop")
        u = j["usage"]
        self.assertGreater(u["prompt_tokens"], 0)
        self.assertEqual(u["completion_tokens"], 5)
        self.assertEqual(u["total_tokens"], u["prompt_tokens"] + u["completion_tokens"])

        rec, up = self.last_upstream()
        self.assertEqual(rec["method"], "POST")
        self.assertEqual(rec["path"], "/v1beta/models/%s:generateContent" % MODEL)
        self.assertEqual(header(rec, "x-goog-api-key"), KEY)
        self.assertIsNone(header(rec, "authorization"))
        self.assertEqual(header(rec, "content-type"), "application/json")
        self.assertEqual([k for k, _ in rec["headers"] if k.lower().startswith("x-sluice-")], [])
        self.assertEqual(up, {
            "contents": [
                {"role": "user", "parts": [{"text": "Hello there"}]},
                {"role": "model", "parts": [{"text": "Hi!"}]},
                {"role": "user", "parts": [{"text": "How are you?"}]},
            ],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "generationConfig": {"temperature": 0.3, "maxOutputTokens": 50,
                                 "stopSequences": ["END"]},
        })

    def test_chat_max_tokens_is_length(self):
        r = self.chat(self.body(max_completion_tokens=2), self.headers())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["choices"][0]["finish_reason"], "length")

    def test_chat_images(self):
        r = self.chat(self.body(messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        ]}]), self.headers())
        self.assertEqual(r.status, 200, r)
        _, up = self.last_upstream()
        self.assertEqual(up["contents"][0]["parts"], [
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}},
        ])

    def test_stream(self):
        r, evs = self.open_stream(self.body(stream=True, stream_options={"include_usage": True}),
                                  self.headers(**{"x-mock-chunks": "3"}))
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type").startswith("text/event-stream"))
        self.assertTrue(r.complete)
        self.assertTrue(evs and evs[-1].is_done(), evs)
        chunks = [e.json() for e in evs[:-1]]
        for c in chunks:
            self.assertEqual(c["object"], "chat.completion.chunk")
            self.assertNotIn("error", c)
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        text = "".join(c["choices"][0]["delta"].get("content") or ""
                       for c in chunks if c["choices"])
        self.assertEqual(text, MOCK_TEXT)
        finishes = [c["choices"][0]["finish_reason"] for c in chunks
                    if c["choices"] and c["choices"][0]["finish_reason"]]
        self.assertEqual(finishes, ["stop"])
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 5)
        self.assertEqual(len({c["id"] for c in chunks}), 1)

        rec, up = self.last_upstream()
        self.assertEqual(rec["path"], "/v1beta/models/%s:streamGenerateContent?alt=sse" % MODEL)
        self.assertEqual(header(rec, "x-goog-api-key"), KEY)
        self.assertNotIn("stream", up)

    def test_stream_without_usage_option(self):
        r, evs = self.open_stream(self.body(stream=True))
        self.assertEqual(r.status, 200, r)
        self.assertTrue(evs[-1].is_done())
        self.assertTrue(all("usage" not in e.json() or e.json()["choices"] for e in evs[:-1]))

    def test_stream_error_mid_stream(self):
        r, evs = self.open_stream(self.body(stream=True),
                                  self.headers(**{"x-mock-stream-error": "1",
                                                  "x-mock-chunks": "4"}))
        self.assertEqual(r.status, 200, r)
        self.assertFalse(any(e.is_done() for e in evs), evs)
        self.assertTrue(evs[-1].is_error(), evs)
        self.assertIn("overloaded", evs[-1].json()["error"]["message"])

    def test_stream_malformed_event_is_an_error(self):
        r, evs = self.open_stream(self.body(stream=True),
                                  self.headers(**{"x-mock-malformed": "1",
                                                  "x-mock-chunks": "4"}))
        self.assertEqual(r.status, 200, r)
        self.assertFalse(any(e.is_done() for e in evs), evs)
        self.assertTrue(evs[-1].is_error(), evs)
        self.assertEqual(evs[-1].json()["error"]["code"], "upstream_bad_response")

    def test_stream_drop_is_an_error(self):
        r, evs = self.open_stream(self.body(stream=True),
                                  self.headers(**{"x-mock-drop-after": "1",
                                                  "x-mock-chunks": "4"}))
        self.assertEqual(r.status, 200, r)
        self.assertFalse(any(e.is_done() for e in evs), evs)
        self.assertTrue(evs[-1].is_error(), evs)

    # -- tools --------------------------------------------------------------------------

    def test_tools(self):
        msgs = [{"role": "user", "content": "Weather in Paris?"}]
        r = self.chat(self.body(messages=msgs, tools=[WEATHER_TOOL], tool_choice="required"),
                      self.headers())
        self.assertEqual(r.status, 200, r)
        ch = r.json()["choices"][0]
        self.assertEqual(ch["finish_reason"], "tool_calls")
        self.assertIsNone(ch["message"]["content"])
        calls = ch["message"]["tool_calls"]
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["id"], "call_0")
        self.assertEqual(calls[0]["type"], "function")
        self.assertEqual(calls[0]["function"]["name"], "get_weather")
        args = json.loads(calls[0]["function"]["arguments"])
        self.assertIsInstance(args, dict)

        _, up = self.last_upstream()
        self.assertEqual(up["tools"], [{"functionDeclarations": [{
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "nullable": True, "enum": ["c", "f"]},
                },
                "required": ["city"],
            },
        }]}])
        self.assertEqual(up["toolConfig"], {"functionCallingConfig": {"mode": "ANY"}})

        # The result goes back as a functionResponse named after the call.
        msgs += [ch["message"],
                 {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"temp": 21}'}]
        r = self.chat(self.body(messages=msgs, tools=[WEATHER_TOOL]), self.headers())
        self.assertEqual(r.status, 200, r)
        ch = r.json()["choices"][0]
        self.assertEqual(ch["finish_reason"], "stop")
        self.assertEqual(ch["message"]["content"], MOCK_TEXT)
        _, up = self.last_upstream()
        self.assertEqual(up["contents"][1]["role"], "model")
        self.assertEqual(up["contents"][1]["parts"][0]["functionCall"]["name"], "get_weather")
        self.assertEqual(up["contents"][1]["parts"][0]["functionCall"]["args"], args)
        self.assertEqual(up["contents"][2], {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}]})
        self.assertNotIn("toolConfig", up)

    def test_tool_choice_function_and_none(self):
        r = self.chat(self.body(tools=[WEATHER_TOOL], tool_choice={
            "type": "function", "function": {"name": "get_weather"}}), self.headers())
        self.assertEqual(r.status, 200, r)
        _, up = self.last_upstream()
        self.assertEqual(up["toolConfig"], {"functionCallingConfig": {
            "mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
        r = self.chat(self.body(tools=[WEATHER_TOOL], tool_choice="none"), self.headers())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["choices"][0]["message"]["content"], MOCK_TEXT)

    def test_tools_stream(self):
        r, evs = self.open_stream(self.body(stream=True, tools=[WEATHER_TOOL]))
        self.assertEqual(r.status, 200, r)
        self.assertTrue(evs[-1].is_done())
        chunks = [e.json() for e in evs[:-1]]
        calls = [tc for c in chunks if c["choices"]
                 for tc in c["choices"][0]["delta"].get("tool_calls", [])]
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["index"], 0)
        self.assertEqual(calls[0]["id"], "call_0")
        self.assertEqual(calls[0]["function"]["name"], "get_weather")
        self.assertIsInstance(json.loads(calls[0]["function"]["arguments"]), dict)
        finishes = [c["choices"][0]["finish_reason"] for c in chunks
                    if c["choices"] and c["choices"][0]["finish_reason"]]
        self.assertEqual(finishes, ["tool_calls"])

    # -- safety -------------------------------------------------------------------------

    def test_prompt_blocked(self):
        r = self.chat(self.body(), self.headers(**{"x-mock-safety-block": "1"}))
        e = self.assert_error(r, 400, code="content_filter", type_="invalid_request_error")
        self.assertIn("SAFETY", e["message"])

    def test_prompt_blocked_stream(self):
        r, evs = self.open_stream(self.body(stream=True),
                                  self.headers(**{"x-mock-safety-block": "1"}))
        self.assertEqual(r.status, 200, r)
        self.assertTrue(evs[-1].is_done())
        finishes = [e.json()["choices"][0]["finish_reason"] for e in evs[:-1]
                    if e.json()["choices"] and e.json()["choices"][0]["finish_reason"]]
        self.assertEqual(finishes, ["content_filter"])

    def test_candidate_blocked(self):
        r = self.chat(self.body(), self.headers(**{"x-mock-safety-block": "candidate"}))
        self.assertEqual(r.status, 200, r)
        ch = r.json()["choices"][0]
        self.assertEqual(ch["finish_reason"], "content_filter")
        r, evs = self.open_stream(self.body(stream=True),
                                  self.headers(**{"x-mock-safety-block": "candidate"}))
        self.assertEqual(r.status, 200, r)
        self.assertTrue(evs[-1].is_done())
        self.assertIn("content_filter", [e.json()["choices"][0]["finish_reason"]
                                         for e in evs[:-1] if e.json()["choices"]])

    # -- errors -------------------------------------------------------------------------

    def test_upstream_errors(self):
        cases = [(400, "invalid_request_error", "INVALID_ARGUMENT"),
                 (403, "permission_error", "PERMISSION_DENIED"),
                 (404, "invalid_request_error", "NOT_FOUND"),
                 (429, "rate_limit_error", "RESOURCE_EXHAUSTED"),
                 (500, "api_error", "INTERNAL"),
                 (503, "api_error", "UNAVAILABLE")]
        for status, type_, code in cases:
            for stream in (False, True):
                with self.subTest(status=status, stream=stream):
                    r = self.chat(self.body(stream=stream),
                                  self.headers(**{"x-mock-status": str(status)}))
                    e = self.assert_error(r, status, code=code, type_=type_)
                    self.assertNotIn(KEY, r.text())
                    self.assertTrue(e["message"])

    def test_missing_key(self):
        h = [x for x in self.headers() if x[0] != "Authorization"]
        r = self.chat(self.body(), h)
        self.assertGreaterEqual(r.status, 400, r)
        self.assertIn("error", r.json())

    def test_bad_requests_never_reach_upstream(self):
        self.mock.clear()
        r = self.chat(self.body(model="../x"), self.headers())
        self.assert_error(r, 400, param="model")
        r = self.chat(self.body(messages=[{"role": "user", "content": "hi"},
                                          {"role": "tool", "tool_call_id": "nope",
                                           "content": "x"}]), self.headers())
        self.assert_error(r, 400, param="messages")
        self.assertEqual(self.mock.requests(), [])

    # -- embeddings ---------------------------------------------------------------------

    def test_embeddings(self):
        r = request(self.gw.port, "POST", "/v1/embeddings", self.headers(),
                    {"model": "text-embedding-004", "input": "hello", "dimensions": 4})
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["object"], "list")
        self.assertEqual(j["model"], "text-embedding-004")
        self.assertEqual(len(j["data"]), 1)
        self.assertEqual(j["data"][0]["object"], "embedding")
        self.assertEqual(j["data"][0]["index"], 0)
        self.assertEqual(len(j["data"][0]["embedding"]), 4)
        self.assertIn("prompt_tokens", j["usage"])
        rec, up = self.last_upstream()
        self.assertEqual(rec["path"], "/v1beta/models/text-embedding-004:embedContent")
        self.assertEqual(header(rec, "x-goog-api-key"), KEY)
        self.assertEqual(up, {"model": "models/text-embedding-004",
                              "content": {"parts": [{"text": "hello"}]},
                              "outputDimensionality": 4})

        r = request(self.gw.port, "POST", "/v1/embeddings", self.headers(),
                    {"model": "text-embedding-004", "input": ["a", "b", "a"]})
        self.assertEqual(r.status, 200, r)
        d = r.json()["data"]
        self.assertEqual([x["index"] for x in d], [0, 1, 2])
        self.assertEqual(d[0]["embedding"], d[2]["embedding"])
        self.assertNotEqual(d[0]["embedding"], d[1]["embedding"])
        rec, up = self.last_upstream()
        self.assertEqual(rec["path"], "/v1beta/models/text-embedding-004:batchEmbedContents")
        self.assertEqual(up, {"requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": t}]}}
            for t in ("a", "b", "a")]})

    # -- Vertex AI ----------------------------------------------------------------------

    def vertex_headers(self, **extra):
        h = [("x-sluice-provider", "vertex-ai"),
             ("x-sluice-vertex-project-id", "my-project"),
             ("x-sluice-vertex-region", "us-central1"),
             ("x-sluice-custom-host", self.mock.base +
              "/v1/projects/my-project/locations/us-central1/publishers/google"),
             ("Authorization", "Bearer ya29.token"),
             ("Content-Type", "application/json")]
        for k, v in extra.items():
            h.append((k.replace("_", "-"), v))
        return h

    def test_vertex(self):
        r = self.chat(self.body(), self.vertex_headers())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["choices"][0]["message"]["content"], MOCK_TEXT)
        rec, up = self.last_upstream()
        self.assertEqual(rec["path"], "/v1/projects/my-project/locations/us-central1/publishers/"
                                      "google/models/%s:generateContent" % MODEL)
        self.assertEqual(header(rec, "authorization"), "Bearer ya29.token")
        self.assertIsNone(header(rec, "x-goog-api-key"))
        self.assertEqual(up, {"contents": [{"role": "user", "parts": [{"text": "Hello there"}]}]})

        r, evs = self.open_stream(self.body(stream=True), self.vertex_headers())
        self.assertEqual(r.status, 200, r)
        self.assertTrue(evs[-1].is_done())
        rec, _ = self.last_upstream()
        self.assertTrue(rec["path"].endswith(":streamGenerateContent?alt=sse"), rec["path"])

    def test_vertex_errors(self):
        r = self.chat(self.body(), self.vertex_headers(**{"x-mock-status": "429"}))
        self.assert_error(r, 429, code="RESOURCE_EXHAUSTED", type_="rate_limit_error")
        # Without a custom host, the project and region headers are required.
        self.mock.clear()
        h = [x for x in self.vertex_headers()
             if x[0] not in ("x-sluice-custom-host", "x-sluice-vertex-region")]
        r = self.chat(self.body(), h)
        self.assert_error(r, 400, param="x-sluice-vertex-region")
        self.assertEqual(self.mock.requests(), [])

    def test_vertex_embeddings_use_predict(self):
        # Vertex AI embeds text through :predict (the mock has no such route: a 404).
        r = request(self.gw.port, "POST", "/v1/embeddings", self.vertex_headers(),
                    {"model": "text-embedding-005", "input": ["a", "b"], "dimensions": 8})
        e = self.assert_error(r, 404)
        self.assertIn(":predict", e["message"])
        rec, up = self.last_upstream()
        self.assertEqual(rec["path"], "/v1/projects/my-project/locations/us-central1/publishers/"
                                      "google/models/text-embedding-005:predict")
        self.assertEqual(up, {"instances": [{"content": "a"}, {"content": "b"}],
                              "parameters": {"outputDimensionality": 8}})

    # -- Anthropic-format clients ------------------------------------------------------

    def test_messages_client(self):
        h = [x for x in self.headers() if x[0] != "Authorization"] + [("x-api-key", KEY)]
        r = request(self.gw.port, "POST", "/v1/messages", h,
                    {"model": MODEL, "max_tokens": 100,
                     "messages": [{"role": "user", "content": "Hello there"}]})
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["type"], "message")
        self.assertEqual(j["content"][0]["text"], MOCK_TEXT)
        rec, up = self.last_upstream()
        self.assertEqual(rec["path"], "/v1beta/models/%s:generateContent" % MODEL)
        self.assertEqual(up["generationConfig"], {"maxOutputTokens": 100})


if __name__ == "__main__":
    harness.main()
