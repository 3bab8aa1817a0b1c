"""
The mock provider's API formats, checked against the providers' published
shapes: Anthropic Messages, Google Gemini (and Vertex AI), Cohere v2, AWS
Bedrock Converse (with its binary event stream, decoded here independently
with struct and zlib.crc32), Azure OpenAI, and Voyage / Jina embeddings.
Also checks that the generic faults (x-mock-status in each provider's error
shape, drop-after, malformed, chunks, delays) and the recording apply to
every format.

Only the mock runs here (no gateway). Each test gets a fresh mock, so the
first request of a test is request 1 and every id in it is predictable.
"""
import base64
import json
import struct
import time
import unittest
import zlib

import harness
from harness import Closed, Conn, Mock, build_request, parse_sse

DEFAULT_TEXT = "This is a mock response."
WORDS = ["This", " is", " a", " mock", " response."]

PROMPT = "Hello there, how are you?"  # 25 characters: 6 input tokens
PROMPT_TOKENS = 6

SIGV4 = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request, "
         "SignedHeaders=content-type;host;x-amz-date, "
         "Signature=" + "0123456789abcdef" * 4)
AMZ_DATE = "20250101T120000Z"

WEATHER_SCHEMA = {"type": "object",
                  "properties": {"city": {"type": "string"},
                                 "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                                 "days": {"type": "integer"}},
                  "required": ["city"]}
WEATHER_ARGS = {"city": "mock", "unit": "celsius", "days": 1}
WEATHER_ARGS_JSON = '{"city":"mock","unit":"celsius","days":1}'  # 41 chars: 10 tokens


# ---------------------------------------------------------------------------
# AWS event stream, decoded independently of the mock's encoder
# ---------------------------------------------------------------------------

class FrameError(AssertionError):
    pass


def decode_frame(data, off=0):
    """One event-stream message at data[off:]: (headers, payload, next offset).
    Verifies both CRCs and parses every header (string values only)."""
    if len(data) - off < 16:
        raise FrameError("truncated prelude")
    total, hlen, prelude_crc = struct.unpack_from(">III", data, off)
    if zlib.crc32(data[off:off + 8]) != prelude_crc:
        raise FrameError("bad prelude CRC")
    if total < 16 + hlen or off + total > len(data):
        raise FrameError("bad lengths: total %d headers %d available %d"
                         % (total, hlen, len(data) - off))
    (message_crc,) = struct.unpack_from(">I", data, off + total - 4)
    if zlib.crc32(data[off:off + total - 4]) != message_crc:
        raise FrameError("bad message CRC")
    headers = {}
    p, end = off + 12, off + 12 + hlen
    while p < end:
        nlen = data[p]
        name = data[p + 1:p + 1 + nlen].decode("utf-8")
        p += 1 + nlen
        vtype = data[p]
        p += 1
        if vtype != 7:
            raise FrameError("header %s has type %d, not string" % (name, vtype))
        (vlen,) = struct.unpack_from(">H", data, p)
        p += 2
        headers[name] = data[p:p + vlen].decode("utf-8")
        p += vlen
    if p != end:
        raise FrameError("headers overrun")
    return headers, data[end:off + total - 4], off + total


def decode_frames(data):
    out, off = [], 0
    while off < len(data):
        h, payload, off = decode_frame(data, off)
        out.append((h, payload))
    return out


# ---------------------------------------------------------------------------
# base
# ---------------------------------------------------------------------------

class MockCase(unittest.TestCase):
    """A fresh mock per test, stopped and checked for a clean exit after."""

    def setUp(self):
        self.mock = Mock().start()

    def tearDown(self):
        self.mock.stop()

    def post(self, path, body, headers=(), timeout=15.0):
        return harness.request(self.mock.port, "POST", path, list(headers), body, timeout=timeout)

    def stream(self, path, body, headers=(), timeout=15.0):
        """The response head and the HTTP chunks of a stream, read until the
        end or until the connection breaks; r.complete says which."""
        with Conn(self.mock.port, timeout=timeout) as c:
            c.send(build_request("POST", path, list(headers), body, host=self.mock.hostport))
            deadline = time.monotonic() + timeout
            r = c.read_head(deadline)
            chunks = []
            try:
                for _, d in c.iter_body(r, "POST", deadline):
                    chunks.append(d)
            except (Closed, ConnectionResetError):
                pass
            r.body = b"".join(chunks)
            return r, chunks

    def assert_json(self, r, status=200):
        self.assertEqual(r.status, status, r)
        self.assertTrue((r.header("content-type") or "").startswith("application/json"), r)
        return r.json()


def sse_pairs(body):
    """[(event name, data object)] of an SSE body (data [DONE] kept as a string)."""
    out = []
    for e in parse_sse(body):
        out.append((e.event, e.data if e.data == "[DONE]" else json.loads(e.data)))
    return out


# ---------------------------------------------------------------------------
# Anthropic
# ---------------------------------------------------------------------------

ANTHROPIC_H = [("x-api-key", "sk-ant-test"), ("anthropic-version", "2023-06-01"),
               ("content-type", "application/json")]
ANTHROPIC_BODY = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "Be brief.",
                  "messages": [{"role": "user", "content": PROMPT}]}
ANTHROPIC_TOKENS = (len("Be brief.") + len(PROMPT)) // 4  # 8
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER_SCHEMA},
                   {"name": "other", "input_schema": {"type": "object"}}]


class Anthropic(MockCase):

    def test_message(self):
        r = self.post("/v1/messages", ANTHROPIC_BODY, ANTHROPIC_H)
        j = self.assert_json(r)
        self.assertEqual(j, {
            "id": "msg_mock_1", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": DEFAULT_TEXT}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": ANTHROPIC_TOKENS, "output_tokens": 5,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})
        self.assertEqual(r.header("request-id"), "req_mock_1")

    def test_content_blocks_count_as_input(self):
        body = dict(ANTHROPIC_BODY, system=[{"type": "text", "text": "Be brief."}],
                    messages=[{"role": "user", "content": [{"type": "text", "text": PROMPT}]}])
        j = self.assert_json(self.post("/v1/messages", body, ANTHROPIC_H))
        self.assertEqual(j["usage"]["input_tokens"], ANTHROPIC_TOKENS)

    def test_stream_event_order_and_types(self):
        r, _ = self.stream("/v1/messages", dict(ANTHROPIC_BODY, stream=True), ANTHROPIC_H)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type").startswith("text/event-stream"), r)
        self.assertTrue(r.complete)
        evs = sse_pairs(r.body)
        names = [n for n, _ in evs]
        self.assertEqual(names, ["message_start", "content_block_start", "ping"]
                         + ["content_block_delta"] * 5
                         + ["content_block_stop", "message_delta", "message_stop"])
        for name, data in evs:
            self.assertEqual(data["type"], name)
        start = evs[0][1]["message"]
        self.assertEqual(start["id"], "msg_mock_1")
        self.assertEqual(start["content"], [])
        self.assertIsNone(start["stop_reason"])
        self.assertEqual(start["usage"]["input_tokens"], ANTHROPIC_TOKENS)
        self.assertEqual(evs[1][1], {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}})
        deltas = [d["delta"] for n, d in evs if n == "content_block_delta"]
        self.assertTrue(all(d["type"] == "text_delta" for d in deltas))
        self.assertEqual([d["text"] for d in deltas], WORDS)
        self.assertEqual(evs[-2][1], {"type": "message_delta",
                                      "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                      "usage": {"output_tokens": 5}})

    def test_chunks_sets_the_number_of_text_deltas(self):
        r, _ = self.stream("/v1/messages", dict(ANTHROPIC_BODY, stream=True),
                           ANTHROPIC_H + [("x-mock-chunks", "2")])
        deltas = [d["delta"]["text"] for n, d in sse_pairs(r.body) if n == "content_block_delta"]
        self.assertEqual(deltas, ["This is", " a mock response."])

    def test_tool_use(self):
        body = dict(ANTHROPIC_BODY, tools=ANTHROPIC_TOOLS)
        j = self.assert_json(self.post("/v1/messages", body, ANTHROPIC_H))
        self.assertEqual(j["content"], [{"type": "tool_use", "id": "toolu_mock_1",
                                         "name": "get_weather", "input": WEATHER_ARGS}])
        self.assertEqual(j["stop_reason"], "tool_use")
        self.assertEqual(j["usage"]["output_tokens"], len(WEATHER_ARGS_JSON) // 4)

    def test_tool_choice_and_tool_result(self):
        body = dict(ANTHROPIC_BODY, tools=ANTHROPIC_TOOLS, tool_choice={"type": "tool", "name": "other"})
        j = self.assert_json(self.post("/v1/messages", body, ANTHROPIC_H))
        self.assertEqual(j["content"][0]["name"], "other")
        self.assertEqual(j["content"][0]["input"], {})
        # The conversation continues after the tool ran: a text answer.
        msgs = [{"role": "user", "content": PROMPT},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                                   "name": "get_weather", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                              "content": "sunny"}]}]
        j = self.assert_json(self.post("/v1/messages", dict(body, messages=msgs), ANTHROPIC_H))
        self.assertEqual(j["content"], [{"type": "text", "text": DEFAULT_TEXT}])
        self.assertEqual(j["stop_reason"], "end_turn")

    def test_tool_use_stream_with_text_first(self):
        body = dict(ANTHROPIC_BODY, tools=ANTHROPIC_TOOLS, stream=True)
        r, _ = self.stream("/v1/messages", body, ANTHROPIC_H + [("x-mock-content", "Let me check.")])
        evs = sse_pairs(r.body)
        for name, data in evs:
            self.assertEqual(data["type"], name)
        self.assertEqual([n for n, _ in evs],
                         ["message_start", "content_block_start", "ping"]
                         + ["content_block_delta"] * 3 + ["content_block_stop", "content_block_start"]
                         + ["content_block_delta"] * 4
                         + ["content_block_stop", "message_delta", "message_stop"])
        text = "".join(d["delta"]["text"] for n, d in evs
                       if n == "content_block_delta" and d["index"] == 0)
        self.assertEqual(text, "Let me check.")
        tool_start = evs[7][1]
        self.assertEqual(tool_start, {"type": "content_block_start", "index": 1,
                                      "content_block": {"type": "tool_use", "id": "toolu_mock_1",
                                                        "name": "get_weather", "input": {}}})
        parts = [d["delta"] for n, d in evs if n == "content_block_delta" and d["index"] == 1]
        self.assertTrue(all(p["type"] == "input_json_delta" for p in parts))
        self.assertEqual(parts[0]["partial_json"], "")
        self.assertGreater(len(parts), 2)  # the arguments are split
        self.assertEqual(json.loads("".join(p["partial_json"] for p in parts)), WEATHER_ARGS)
        self.assertEqual(evs[-2][1]["delta"]["stop_reason"], "tool_use")
        self.assertEqual(evs[-2][1]["usage"]["output_tokens"], 3 + len(WEATHER_ARGS_JSON) // 4)

    def test_max_tokens_truncates(self):
        j = self.assert_json(self.post("/v1/messages", dict(ANTHROPIC_BODY, max_tokens=2),
                                       ANTHROPIC_H))
        self.assertEqual(j["content"][0]["text"], "This is")
        self.assertEqual(j["stop_reason"], "max_tokens")
        self.assertEqual(j["usage"]["output_tokens"], 2)

    def test_required_headers_and_fields(self):
        no_key = [h for h in ANTHROPIC_H if h[0] != "x-api-key"]
        j = self.assert_json(self.post("/v1/messages", ANTHROPIC_BODY, no_key), 401)
        self.assertEqual(j["type"], "error")
        self.assertEqual(j["error"]["type"], "authentication_error")
        self.assertTrue(j["error"]["message"])
        no_version = [h for h in ANTHROPIC_H if h[0] != "anthropic-version"]
        j = self.assert_json(self.post("/v1/messages", ANTHROPIC_BODY, no_version), 400)
        self.assertEqual(j["error"]["type"], "invalid_request_error")
        self.assertIn("anthropic-version", j["error"]["message"])
        body = {k: v for k, v in ANTHROPIC_BODY.items() if k != "max_tokens"}
        j = self.assert_json(self.post("/v1/messages", body, ANTHROPIC_H), 400)
        self.assertEqual(j["error"], {"type": "invalid_request_error",
                                      "message": "max_tokens: Field required"})
        j = self.assert_json(self.post("/v1/messages", b"{not json", ANTHROPIC_H), 400)
        self.assertEqual(j["error"]["type"], "invalid_request_error")

    def test_error_statuses(self):
        for status, etype in [(400, "invalid_request_error"), (401, "authentication_error"),
                              (403, "permission_error"), (404, "not_found_error"),
                              (413, "request_too_large"), (429, "rate_limit_error"),
                              (500, "api_error"), (529, "overloaded_error")]:
            for stream in (False, True):
                r = self.post("/v1/messages", dict(ANTHROPIC_BODY, stream=stream),
                              ANTHROPIC_H + [("x-mock-status", str(status)),
                                             ("x-mock-retry-after", "7")])
                j = self.assert_json(r, status)
                self.assertEqual(j["type"], "error")
                self.assertEqual(j["error"]["type"], etype)
                self.assertTrue(j["error"]["message"])
                self.assertTrue(j["request_id"].startswith("req_mock_"))
                self.assertEqual(r.header("retry-after"), "7")

    def test_stream_error_event(self):
        r, _ = self.stream("/v1/messages", dict(ANTHROPIC_BODY, stream=True),
                           ANTHROPIC_H + [("x-mock-stream-error", "1")])
        self.assertEqual(r.status, 200)
        self.assertTrue(r.complete)  # the stream ends cleanly after the error event
        evs = sse_pairs(r.body)
        self.assertEqual([n for n, _ in evs], ["message_start", "content_block_start", "ping",
                                               "content_block_delta", "content_block_delta",
                                               "error"])
        self.assertEqual(evs[-1][1], {"type": "error", "error": {"type": "overloaded_error",
                                                                  "message": "Overloaded"}})

    def test_count_tokens(self):
        body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": PROMPT}]}
        j = self.assert_json(self.post("/v1/messages/count_tokens", body, ANTHROPIC_H))
        self.assertEqual(j, {"input_tokens": PROMPT_TOKENS})


# ---------------------------------------------------------------------------
# Gemini and Vertex AI
# ---------------------------------------------------------------------------

GEMINI_PATH = "/v1beta/models/gemini-2.0-flash:generateContent"
GEMINI_STREAM = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
GEMINI_H = [("x-goog-api-key", "AIza-test"), ("content-type", "application/json")]
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
GEMINI_TOOLS = [{"functionDeclarations": [
    {"name": "get_weather", "description": "Weather",
     "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"},
                                                     "unit": {"type": "STRING",
                                                              "enum": ["celsius", "fahrenheit"]},
                                                     "days": {"type": "INTEGER"}}}}]}]
SAFETY_CATEGORIES = ["HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_DANGEROUS_CONTENT",
                     "HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_SEXUALLY_EXPLICIT"]
VERTEX_PATH = ("/v1/projects/my-project/locations/us-central1/publishers/google/models/"
               "gemini-2.0-flash:generateContent")


def gemini_sse(body):
    """The JSON objects of a Gemini alt=sse body; checks the exact framing:
    "data: " + JSON + CRLF CRLF, nothing else."""
    assert body.endswith(b"\r\n\r\n"), body[-40:]
    blocks = body.split(b"\r\n\r\n")
    assert blocks[-1] == b"", blocks[-1]
    out = []
    for b in blocks[:-1]:
        assert b.startswith(b"data: "), b[:40]
        assert b"\n" not in b and b"\r" not in b, b
        out.append(json.loads(b[6:]))
    return out


class Gemini(MockCase):

    def test_generate_content(self):
        j = self.assert_json(self.post(GEMINI_PATH, GEMINI_BODY, GEMINI_H))
        self.assertEqual(j["candidates"][0]["content"], {"parts": [{"text": DEFAULT_TEXT}],
                                                         "role": "model"})
        self.assertEqual(j["candidates"][0]["finishReason"], "STOP")
        self.assertEqual(j["candidates"][0]["index"], 0)
        self.assertEqual([s["category"] for s in j["candidates"][0]["safetyRatings"]],
                         SAFETY_CATEGORIES)
        self.assertEqual(j["usageMetadata"]["promptTokenCount"], PROMPT_TOKENS)
        self.assertEqual(j["usageMetadata"]["candidatesTokenCount"], 5)
        self.assertEqual(j["usageMetadata"]["totalTokenCount"], PROMPT_TOKENS + 5)
        self.assertEqual(j["modelVersion"], "gemini-2.0-flash")
        self.assertEqual(j["responseId"], "mock-1")

    def test_system_instruction_both_spellings(self):
        for key in ("systemInstruction", "system_instruction"):
            body = dict(GEMINI_BODY, **{key: {"parts": [{"text": "Be brief."}]}})
            j = self.assert_json(self.post(GEMINI_PATH, body, GEMINI_H))
            self.assertEqual(j["usageMetadata"]["promptTokenCount"], ANTHROPIC_TOKENS)

    def test_api_key_in_query(self):
        r = self.post(GEMINI_PATH + "?key=AIza-test", GEMINI_BODY, [("content-type", "application/json")])
        self.assert_json(r)

    def test_stream_sse_framing(self):
        r, chunks = self.stream(GEMINI_STREAM, GEMINI_BODY, GEMINI_H)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type").startswith("text/event-stream"), r)
        self.assertTrue(r.complete)
        evs = gemini_sse(r.body)
        self.assertEqual(len(evs), 5)
        self.assertEqual(len(chunks), 5)  # one event per HTTP chunk
        self.assertNotIn(b"[DONE]", r.body)
        self.assertEqual([e["candidates"][0]["content"]["parts"][0]["text"] for e in evs], WORDS)
        for e in evs[:-1]:
            self.assertNotIn("finishReason", e["candidates"][0])
        last = evs[-1]
        self.assertEqual(last["candidates"][0]["finishReason"], "STOP")
        self.assertEqual(last["usageMetadata"]["promptTokenCount"], PROMPT_TOKENS)
        self.assertEqual(last["usageMetadata"]["candidatesTokenCount"], 5)
        self.assertEqual(last["usageMetadata"]["totalTokenCount"], PROMPT_TOKENS + 5)
        # Usage is cumulative, as Gemini's.
        self.assertEqual([e["usageMetadata"]["candidatesTokenCount"] for e in evs], [1, 2, 3, 4, 5])

    def test_stream_without_alt_sse_is_a_json_array(self):
        r, _ = self.stream(GEMINI_STREAM.split("?")[0], GEMINI_BODY, GEMINI_H + [("x-mock-chunks", "2")])
        self.assertTrue(r.header("content-type").startswith("application/json"), r)
        arr = json.loads(r.body)
        self.assertEqual([e["candidates"][0]["content"]["parts"][0]["text"] for e in arr],
                         ["This is", " a mock response."])

    def test_function_call(self):
        body = dict(GEMINI_BODY, tools=GEMINI_TOOLS)
        j = self.assert_json(self.post(GEMINI_PATH, body, GEMINI_H))
        self.assertEqual(j["candidates"][0]["content"]["parts"],
                         [{"functionCall": {"name": "get_weather", "args": WEATHER_ARGS}}])
        self.assertEqual(j["candidates"][0]["finishReason"], "STOP")
        r, _ = self.stream(GEMINI_STREAM, body, GEMINI_H)
        evs = gemini_sse(r.body)
        self.assertEqual(len(evs), 1)
        self.assertEqual(evs[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["args"],
                         WEATHER_ARGS)
        # After the function ran: text.
        contents = GEMINI_BODY["contents"] + [
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                             "response": {"t": 20}}}]}]
        j = self.assert_json(self.post(GEMINI_PATH, dict(body, contents=contents), GEMINI_H))
        self.assertEqual(j["candidates"][0]["content"]["parts"], [{"text": DEFAULT_TEXT}])

    def test_max_output_tokens(self):
        body = dict(GEMINI_BODY, generationConfig={"maxOutputTokens": 3})
        j = self.assert_json(self.post(GEMINI_PATH, body, GEMINI_H))
        self.assertEqual(j["candidates"][0]["content"]["parts"][0]["text"], "This is a")
        self.assertEqual(j["candidates"][0]["finishReason"], "MAX_TOKENS")

    def test_safety_blocks(self):
        j = self.assert_json(self.post(GEMINI_PATH, GEMINI_BODY,
                                       GEMINI_H + [("x-mock-safety-block", "1")]))
        self.assertNotIn("candidates", j)
        self.assertEqual(j["promptFeedback"]["blockReason"], "SAFETY")
        self.assertTrue(any(s.get("blocked") for s in j["promptFeedback"]["safetyRatings"]))
        j = self.assert_json(self.post(GEMINI_PATH, GEMINI_BODY,
                                       GEMINI_H + [("x-mock-safety-block", "candidate")]))
        self.assertEqual(j["candidates"][0]["finishReason"], "SAFETY")
        self.assertNotIn("content", j["candidates"][0])
        r, _ = self.stream(GEMINI_STREAM, GEMINI_BODY, GEMINI_H + [("x-mock-safety-block", "1")])
        evs = gemini_sse(r.body)
        self.assertEqual(len(evs), 1)
        self.assertEqual(evs[0]["promptFeedback"]["blockReason"], "SAFETY")

    def test_errors_in_google_shape(self):
        r = self.post(GEMINI_PATH, GEMINI_BODY, [("content-type", "application/json")])
        j = self.assert_json(r, 403)
        self.assertEqual(j["error"]["status"], "PERMISSION_DENIED")
        for status, name in [(400, "INVALID_ARGUMENT"), (404, "NOT_FOUND"),
                             (429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"),
                             (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED")]:
            for path in (GEMINI_PATH, GEMINI_STREAM):
                j = self.assert_json(self.post(path, GEMINI_BODY,
                                               GEMINI_H + [("x-mock-status", str(status))]), status)
                self.assertEqual(set(j), {"error"})
                self.assertEqual(j["error"]["code"], status)
                self.assertEqual(j["error"]["status"], name)
                self.assertTrue(j["error"]["message"])
        j = self.assert_json(self.post(GEMINI_PATH, {"contents": []}, GEMINI_H), 400)
        self.assertEqual(j["error"]["status"], "INVALID_ARGUMENT")

    def test_vertex(self):
        j = self.assert_json(self.post(VERTEX_PATH, GEMINI_BODY, [("Authorization", "Bearer ya29.x")]))
        self.assertEqual(j["candidates"][0]["content"]["parts"][0]["text"], DEFAULT_TEXT)
        j = self.assert_json(self.post(VERTEX_PATH, GEMINI_BODY, GEMINI_H), 401)
        self.assertEqual(j["error"]["status"], "UNAUTHENTICATED")
        r, _ = self.stream(VERTEX_PATH.replace(":generateContent", ":streamGenerateContent?alt=sse"),
                           GEMINI_BODY, [("Authorization", "Bearer ya29.x")])
        self.assertEqual(len(gemini_sse(r.body)), 5)

    def test_embeddings(self):
        body = {"model": "models/text-embedding-004", "content": {"parts": [{"text": "hello"}]},
                "outputDimensionality": 16}
        j = self.assert_json(self.post("/v1beta/models/text-embedding-004:embedContent", body, GEMINI_H))
        self.assertEqual(len(j["embedding"]["values"]), 16)
        self.assertAlmostEqual(sum(v * v for v in j["embedding"]["values"]), 1.0, places=5)
        body = {"requests": [{"model": "models/text-embedding-004", "content": {"parts": [{"text": t}]}}
                             for t in ("a", "b", "a")]}
        j = self.assert_json(self.post("/v1beta/models/text-embedding-004:batchEmbedContents",
                                       body, GEMINI_H))
        vals = [e["values"] for e in j["embeddings"]]
        self.assertEqual([len(v) for v in vals], [8, 8, 8])
        self.assertEqual(vals[0], vals[2])
        self.assertNotEqual(vals[0], vals[1])

    def test_count_tokens(self):
        j = self.assert_json(self.post("/v1beta/models/gemini-2.0-flash:countTokens", GEMINI_BODY, GEMINI_H))
        self.assertEqual(j["totalTokens"], PROMPT_TOKENS)

    def test_stream_error(self):
        r, _ = self.stream(GEMINI_STREAM, GEMINI_BODY, GEMINI_H + [("x-mock-stream-error", "1")])
        evs = gemini_sse(r.body)
        self.assertEqual(len(evs), 3)
        self.assertEqual(evs[-1], {"error": {"code": 503, "status": "UNAVAILABLE",
                                             "message": "The model is overloaded. Please try again later."}})


# ---------------------------------------------------------------------------
# Cohere v2
# ---------------------------------------------------------------------------

COHERE_H = [("Authorization", "Bearer co-test"), ("content-type", "application/json")]
COHERE_BODY = {"model": "command-a-03-2025", "messages": [{"role": "user", "content": PROMPT}]}
COHERE_TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                                  "parameters": WEATHER_SCHEMA}}]


class Cohere(MockCase):

    def test_chat(self):
        j = self.assert_json(self.post("/v2/chat", COHERE_BODY, COHERE_H))
        self.assertEqual(j, {
            "id": "00000000-0000-4000-8000-000000000001",
            "message": {"role": "assistant", "content": [{"type": "text", "text": DEFAULT_TEXT}]},
            "finish_reason": "COMPLETE",
            "usage": {"billed_units": {"input_tokens": PROMPT_TOKENS, "output_tokens": 5},
                      "tokens": {"input_tokens": PROMPT_TOKENS + 64, "output_tokens": 5}}})

    def test_stream_events(self):
        r, _ = self.stream("/v2/chat", dict(COHERE_BODY, stream=True), COHERE_H)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type").startswith("text/event-stream"), r)
        evs = sse_pairs(r.body)
        self.assertEqual(evs[-1], (None, "[DONE]"))
        evs = evs[:-1]
        self.assertEqual([n for n, _ in evs], ["message-start", "content-start"]
                         + ["content-delta"] * 5 + ["content-end", "message-end"])
        for name, data in evs:
            self.assertEqual(data["type"], name)
        self.assertEqual(evs[0][1]["id"], "00000000-0000-4000-8000-000000000001")
        self.assertEqual(evs[0][1]["delta"]["message"]["role"], "assistant")
        self.assertEqual([d["delta"]["message"]["content"]["text"] for n, d in evs
                          if n == "content-delta"], WORDS)
        end = evs[-1][1]["delta"]
        self.assertEqual(end["finish_reason"], "COMPLETE")
        self.assertEqual(end["usage"]["billed_units"], {"input_tokens": PROMPT_TOKENS,
                                                        "output_tokens": 5})

    def test_tool_calls(self):
        body = dict(COHERE_BODY, tools=COHERE_TOOLS)
        j = self.assert_json(self.post("/v2/chat", body, COHERE_H))
        self.assertEqual(j["finish_reason"], "TOOL_CALL")
        self.assertEqual(j["message"]["tool_plan"], "I will use the get_weather tool.")
        call = j["message"]["tool_calls"][0]
        self.assertEqual(call["type"], "function")
        self.assertEqual(call["id"], "get_weather_mock00000001")
        self.assertEqual(call["function"]["name"], "get_weather")
        self.assertEqual(json.loads(call["function"]["arguments"]), WEATHER_ARGS)

        r, _ = self.stream("/v2/chat", dict(body, stream=True), COHERE_H)
        evs = sse_pairs(r.body)[:-1]
        for name, data in evs:
            self.assertEqual(data["type"], name)
        names = [n for n, _ in evs]
        self.assertEqual(names[0], "message-start")
        self.assertEqual(names[1:7], ["tool-plan-delta"] * 6)
        self.assertEqual(names[7], "tool-call-start")
        self.assertEqual(names[-2:], ["tool-call-end", "message-end"])
        start = evs[7][1]["delta"]["message"]["tool_calls"]
        self.assertEqual(start["function"], {"name": "get_weather", "arguments": ""})
        args = "".join(d["delta"]["message"]["tool_calls"]["function"]["arguments"]
                       for n, d in evs if n == "tool-call-delta")
        self.assertEqual(json.loads(args), WEATHER_ARGS)
        self.assertEqual(evs[-1][1]["delta"]["finish_reason"], "TOOL_CALL")
        # A tool message last: text.
        msgs = COHERE_BODY["messages"] + [
            {"role": "assistant", "tool_calls": [call], "tool_plan": "x"},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]
        j = self.assert_json(self.post("/v2/chat", dict(body, messages=msgs), COHERE_H))
        self.assertEqual(j["finish_reason"], "COMPLETE")

    def test_errors(self):
        j = self.assert_json(self.post("/v2/chat", COHERE_BODY, [("content-type", "application/json")]), 401)
        self.assertEqual(set(j), {"id", "message"})
        for status in (400, 404, 429, 500, 503):
            j = self.assert_json(self.post("/v2/chat", dict(COHERE_BODY, stream=True),
                                           COHERE_H + [("x-mock-status", str(status))]), status)
            self.assertEqual(set(j), {"id", "message"})
            self.assertTrue(j["message"])

    def test_stream_error(self):
        r, _ = self.stream("/v2/chat", dict(COHERE_BODY, stream=True),
                           COHERE_H + [("x-mock-stream-error", "1")])
        evs = sse_pairs(r.body)
        self.assertEqual([n for n, _ in evs], ["message-start", "content-start", "content-delta",
                                               "content-delta", "message-end", None])
        self.assertEqual(evs[-2][1]["delta"]["finish_reason"], "ERROR")
        self.assertTrue(evs[-2][1]["delta"]["error"])

    def test_embed(self):
        body = {"model": "embed-v4.0", "input_type": "search_document", "texts": ["a", "bb"],
                "embedding_types": ["float", "int8", "ubinary"]}
        j = self.assert_json(self.post("/v2/embed", body, COHERE_H))
        self.assertEqual(j["response_type"], "embeddings_by_type")
        self.assertEqual(j["texts"], ["a", "bb"])
        self.assertEqual(set(j["embeddings"]), {"float", "int8", "ubinary"})
        self.assertEqual([len(e) for e in j["embeddings"]["float"]], [8, 8])
        for f, q in zip(j["embeddings"]["float"][0], j["embeddings"]["int8"][0]):
            self.assertEqual(q, round(f * 127))
        self.assertEqual([len(e) for e in j["embeddings"]["ubinary"]], [1, 1])
        self.assertEqual(j["meta"]["billed_units"]["input_tokens"], 2)
        del body["input_type"]
        j = self.assert_json(self.post("/v2/embed", body, COHERE_H), 400)
        self.assertIn("input_type", j["message"])


# ---------------------------------------------------------------------------
# Bedrock
# ---------------------------------------------------------------------------

MODEL_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"
BR_PATH = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
BR_STREAM = BR_PATH + "-stream"
BR_H = [("Authorization", SIGV4), ("X-Amz-Date", AMZ_DATE), ("content-type", "application/json")]
BR_BODY = {"system": [{"text": "Be brief."}],
           "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
           "inferenceConfig": {"maxTokens": 512}}
BR_TOOLS = {"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather",
                                    "inputSchema": {"json": WEATHER_SCHEMA}}}]}
PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class Bedrock(MockCase):

    def events(self, r, chunks):
        """(event type, payload object) per frame, checking every frame's
        CRCs and headers and that each HTTP chunk holds exactly one frame."""
        out = []
        for c in chunks:
            frames = decode_frames(c)
            self.assertEqual(len(frames), 1)
            h, payload = frames[0]
            self.assertEqual(h[":content-type"], "application/json")
            if h[":message-type"] == "exception":
                out.append(("!" + h[":exception-type"], json.loads(payload)))
                continue
            self.assertEqual(h[":message-type"], "event")
            self.assertEqual(list(h), [":event-type", ":content-type", ":message-type"])
            p = json.loads(payload)
            self.assertTrue(PADDING.startswith(p.pop("p")))
            out.append((h[":event-type"], p))
        return out

    def test_converse(self):
        r = self.post(BR_PATH, BR_BODY, BR_H)
        j = self.assert_json(r)
        self.assertEqual(j, {"output": {"message": {"role": "assistant",
                                                    "content": [{"text": DEFAULT_TEXT}]}},
                             "stopReason": "end_turn",
                             "usage": {"inputTokens": ANTHROPIC_TOKENS, "outputTokens": 5,
                                       "totalTokens": ANTHROPIC_TOKENS + 5},
                             "metrics": {"latencyMs": 0}})
        self.assertEqual(r.header("x-amzn-RequestId"), "00000000-0000-4000-8000-000000000001")
        rec = self.mock.last()
        self.assertEqual(rec["path"], BR_PATH)
        self.assertEqual(rec["sigv4"], {"algorithm": "AWS4-HMAC-SHA256", "access_key": "AKIDEXAMPLE",
                                        "date": "20250101", "region": "us-east-1",
                                        "service": "bedrock",
                                        "signed_headers": ["content-type", "host", "x-amz-date"],
                                        "signature": "0123456789abcdef" * 4})

    def test_converse_tool_use(self):
        j = self.assert_json(self.post(BR_PATH, dict(BR_BODY, toolConfig=BR_TOOLS), BR_H))
        self.assertEqual(j["output"]["message"]["content"],
                         [{"toolUse": {"toolUseId": "tooluse_mock_1", "name": "get_weather",
                                       "input": WEATHER_ARGS}}])
        self.assertEqual(j["stopReason"], "tool_use")

    def test_converse_stream_frames(self):
        r, chunks = self.stream(BR_STREAM, BR_BODY, BR_H)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-type"), "application/vnd.amazon.eventstream")
        self.assertTrue(r.complete)
        evs = self.events(r, chunks)
        self.assertEqual([n for n, _ in evs], ["messageStart"] + ["contentBlockDelta"] * 5
                         + ["contentBlockStop", "messageStop", "metadata"])
        self.assertEqual(evs[0][1], {"role": "assistant"})
        self.assertEqual([p["delta"]["text"] for n, p in evs if n == "contentBlockDelta"], WORDS)
        self.assertTrue(all(p["contentBlockIndex"] == 0 for n, p in evs[1:7]))
        self.assertEqual(evs[-2][1], {"stopReason": "end_turn"})
        self.assertEqual(evs[-1][1], {"usage": {"inputTokens": ANTHROPIC_TOKENS, "outputTokens": 5,
                                                "totalTokens": ANTHROPIC_TOKENS + 5},
                                      "metrics": {"latencyMs": 0}})

    def test_converse_stream_tool_use(self):
        r, chunks = self.stream(BR_STREAM, dict(BR_BODY, toolConfig=BR_TOOLS),
                                BR_H + [("x-mock-content", "Sure.")])
        evs = self.events(r, chunks)
        self.assertEqual([n for n, _ in evs],
                         ["messageStart", "contentBlockDelta", "contentBlockStop", "contentBlockStart",
                          "contentBlockDelta", "contentBlockDelta", "contentBlockDelta",
                          "contentBlockStop", "messageStop", "metadata"])
        self.assertEqual(evs[3][1], {"contentBlockIndex": 1,
                                     "start": {"toolUse": {"toolUseId": "tooluse_mock_1",
                                                           "name": "get_weather"}}})
        args = "".join(p["delta"]["toolUse"]["input"] for n, p in evs[4:7])
        self.assertEqual(json.loads(args), WEATHER_ARGS)
        self.assertEqual(evs[-2][1], {"stopReason": "tool_use"})

    def test_stream_exception(self):
        r, chunks = self.stream(BR_STREAM, BR_BODY, BR_H + [("x-mock-stream-error", "1")])
        evs = self.events(r, chunks)
        self.assertEqual([n for n, _ in evs], ["messageStart", "contentBlockDelta", "contentBlockDelta",
                                               "!throttlingException"])
        self.assertEqual(evs[-1][1], {"message": "Too many requests, please wait before trying again."})
        r, chunks = self.stream(BR_STREAM, BR_BODY,
                                BR_H + [("x-mock-stream-error", "modelStreamErrorException")])
        self.assertEqual(self.events(r, chunks)[-1][0], "!modelStreamErrorException")

    def test_malformed_frames(self):
        r, chunks = self.stream(BR_STREAM, BR_BODY, BR_H + [("x-mock-malformed", "crc")])
        decode_frames(chunks[0])
        with self.assertRaisesRegex(FrameError, "message CRC"):
            decode_frames(chunks[1])
        decode_frames(chunks[2])
        r, chunks = self.stream(BR_STREAM, BR_BODY, BR_H + [("x-mock-malformed", "1")])
        h, payload = decode_frames(chunks[1])[0]  # the framing stays valid
        with self.assertRaises(ValueError):
            json.loads(payload)

    def test_auth(self):
        r = self.post(BR_PATH, BR_BODY, [("content-type", "application/json")])
        j = self.assert_json(r, 403)
        self.assertEqual(j, {"message": "Missing Authentication Token"})
        self.assertTrue(r.header("x-amzn-ErrorType").startswith("MissingAuthenticationTokenException"))
        for bad, etype in [(SIGV4.replace("/bedrock/", "/s3/"), "InvalidSignatureException"),
                           (SIGV4.replace("us-east-1", "moon"), "InvalidSignatureException"),
                           (SIGV4.split(", Signature")[0], "IncompleteSignatureException")]:
            r = self.post(BR_PATH, BR_BODY, [("Authorization", bad), ("X-Amz-Date", AMZ_DATE)])
            j = self.assert_json(r, 403)
            self.assertEqual(set(j), {"message"})
            self.assertEqual(r.header("x-amzn-ErrorType").split(":")[0], etype, j)
        r = self.post(BR_PATH, BR_BODY, [("Authorization", SIGV4)])
        self.assertIn("X-Amz-Date", self.assert_json(r, 403)["message"])
        r = self.post(BR_PATH, BR_BODY, [("Authorization", "Bearer bedrock-api-key")])
        self.assert_json(r)

    def test_errors(self):
        for status, etype in [(400, "ValidationException"), (403, "AccessDeniedException"),
                              (404, "ResourceNotFoundException"), (429, "ThrottlingException"),
                              (500, "InternalServerException"), (503, "ServiceUnavailableException")]:
            for path in (BR_PATH, BR_STREAM):
                r = self.post(path, BR_BODY, BR_H + [("x-mock-status", str(status))])
                j = self.assert_json(r, status)
                self.assertEqual(set(j), {"message"})
                self.assertEqual(r.header("x-amzn-ErrorType").split(":")[0], etype)
        j = self.assert_json(self.post(BR_PATH, {"system": []}, BR_H), 400)
        self.assertIn("messages", j["message"])

    def test_titan_and_cohere_embeddings(self):
        r = self.post("/model/amazon.titan-embed-text-v2:0/invoke", {"inputText": PROMPT}, BR_H)
        j = self.assert_json(r)
        self.assertEqual(len(j["embedding"]), 8)
        self.assertEqual(j["inputTextTokenCount"], PROMPT_TOKENS)
        self.assertEqual(j["embeddingsByType"]["float"], j["embedding"])
        self.assertEqual(r.header("x-amzn-bedrock-input-token-count"), str(PROMPT_TOKENS))
        j = self.assert_json(self.post("/model/amazon.titan-embed-text-v2:0/invoke",
                                       {"inputText": PROMPT, "dimensions": 256}, BR_H))
        self.assertEqual(len(j["embedding"]), 256)
        self.assert_json(self.post("/model/amazon.titan-embed-text-v2:0/invoke",
                                   {"inputText": PROMPT, "dimensions": 100}, BR_H), 400)
        j = self.assert_json(self.post("/model/amazon.titan-embed-text-v1/invoke", {"inputText": "x"}, BR_H))
        self.assertEqual(set(j), {"embedding", "inputTextTokenCount"})
        j = self.assert_json(self.post("/model/cohere.embed-english-v3/invoke",
                                       {"texts": ["a", "b"], "input_type": "search_document"}, BR_H))
        self.assertEqual(j["response_type"], "embeddings_floats")
        self.assertEqual(len(j["embeddings"]), 2)
        self.assertEqual(j["texts"], ["a", "b"])


# ---------------------------------------------------------------------------
# Azure OpenAI
# ---------------------------------------------------------------------------

AZ_PATH = "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
AZ_H = [("api-key", "azure-key"), ("content-type", "application/json")]
AZ_BODY = {"messages": [{"role": "user", "content": PROMPT}]}


class Azure(MockCase):

    def test_chat(self):
        r = self.post(AZ_PATH, AZ_BODY, AZ_H)
        j = self.assert_json(r)
        self.assertEqual(j["object"], "chat.completion")
        self.assertEqual(j["model"], "my-gpt4o")  # the deployment, when the body has no model
        self.assertEqual(j["choices"][0]["message"]["content"], DEFAULT_TEXT)
        self.assertEqual(j["usage"]["prompt_tokens"], PROMPT_TOKENS)
        self.assertIn("prompt_filter_results", j)
        self.assertIn("content_filter_results", j["choices"][0])
        self.assertEqual(r.header("apim-request-id"), "00000000-0000-4000-8000-000000000001")
        j = self.assert_json(self.post(AZ_PATH, AZ_BODY, [("Authorization", "Bearer entra-token")]))
        self.assertEqual(j["choices"][0]["message"]["content"], DEFAULT_TEXT)

    def test_stream_starts_with_prompt_filter_results(self):
        r, _ = self.stream(AZ_PATH, dict(AZ_BODY, stream=True), AZ_H)
        evs = parse_sse(r.body)
        self.assertEqual(evs[-1].data, "[DONE]")
        first = evs[0].json()
        self.assertEqual(first["choices"], [])
        self.assertIn("prompt_filter_results", first)
        text = "".join(e.json()["choices"][0]["delta"].get("content", "") for e in evs[1:-1])
        self.assertEqual(text, DEFAULT_TEXT)

    def test_api_version_and_key_required(self):
        j = self.assert_json(self.post(AZ_PATH.split("?")[0], AZ_BODY, AZ_H), 404)
        self.assertEqual(j, {"error": {"code": "404", "message": "Resource not found"}})
        j = self.assert_json(self.post(AZ_PATH, AZ_BODY, [("content-type", "application/json")]), 401)
        self.assertEqual(j["error"]["code"], "401")
        j = self.assert_json(self.post(AZ_PATH, AZ_BODY, AZ_H + [("x-mock-status", "429")]), 429)
        self.assertEqual(j["error"]["code"], "429")
        self.assertIn("2024-10-21", j["error"]["message"])

    def test_embeddings(self):
        j = self.assert_json(self.post("/openai/deployments/emb/embeddings?api-version=2024-10-21",
                                       {"input": ["a", "b"]}, AZ_H))
        self.assertEqual(j["model"], "emb")
        self.assertEqual([d["index"] for d in j["data"]], [0, 1])


# ---------------------------------------------------------------------------
# Voyage and Jina on /v1/embeddings
# ---------------------------------------------------------------------------

BEARER = [("Authorization", "Bearer k"), ("content-type", "application/json")]


class EmbeddingProviders(MockCase):

    def test_voyage(self):
        body = {"model": "voyage-3", "input": ["hello", "world"], "input_type": "document",
                "output_dimension": 16}
        j = self.assert_json(self.post("/v1/embeddings", body, BEARER))
        self.assertEqual(j["object"], "list")
        self.assertEqual(j["model"], "voyage-3")
        self.assertEqual(j["usage"], {"total_tokens": 2})
        self.assertEqual([d["object"] for d in j["data"]], ["embedding", "embedding"])
        self.assertEqual([d["index"] for d in j["data"]], [0, 1])
        self.assertEqual([len(d["embedding"]) for d in j["data"]], [16, 16])
        body["output_dtype"] = "int8"
        j = self.assert_json(self.post("/v1/embeddings", body, BEARER))
        self.assertTrue(all(isinstance(v, int) for v in j["data"][0]["embedding"]))
        j = self.assert_json(self.post("/v1/embeddings", body, [("content-type", "application/json")]), 401)
        self.assertEqual(set(j), {"detail"})

    def test_jina(self):
        body = {"model": "jina-embeddings-v3", "task": "retrieval.passage", "dimensions": 4,
                "input": [{"text": "hello"}, "world"]}
        j = self.assert_json(self.post("/v1/embeddings", body, BEARER))
        self.assertEqual(j["usage"], {"total_tokens": 2, "prompt_tokens": 2})
        self.assertEqual([len(d["embedding"]) for d in j["data"]], [4, 4])
        j = self.assert_json(self.post("/v1/embeddings", body, BEARER + [("x-mock-status", "429")]), 429)
        self.assertEqual(set(j), {"detail"})

    def test_same_input_same_vector_everywhere(self):
        a = self.assert_json(self.post("/v1/embeddings", {"model": "voyage-3", "input": "x"}, BEARER))
        b = self.assert_json(self.post("/v1/embeddings", {"model": "text-embedding-3-small",
                                                          "input": "x"}, BEARER))
        self.assertEqual(a["data"][0]["embedding"], b["data"][0]["embedding"])


# ---------------------------------------------------------------------------
# Generic faults and recording on every format
# ---------------------------------------------------------------------------

def stream_units(fmt, r, chunks):
    """The events of a stream: SSE events, or Bedrock frames."""
    if fmt == "bedrock":
        return [decode_frame(c)[:2] for c in chunks]
    return parse_sse(r.body)


FORMATS = {
    # name: (stream path, body, headers, number of events of a default stream)
    "openai": ("/v1/chat/completions",
               {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": PROMPT}]},
               BEARER, 8),
    "anthropic": ("/v1/messages", dict(ANTHROPIC_BODY, stream=True), ANTHROPIC_H, 11),
    "gemini": (GEMINI_STREAM, GEMINI_BODY, GEMINI_H, 5),
    "cohere": ("/v2/chat", dict(COHERE_BODY, stream=True), COHERE_H, 10),
    "bedrock": (BR_STREAM, BR_BODY, BR_H, 9),
    "azure": (AZ_PATH, dict(AZ_BODY, stream=True), AZ_H, 9),
}


class Faults(MockCase):

    def test_complete_streams(self):
        for fmt, (path, body, headers, n) in FORMATS.items():
            with self.subTest(fmt):
                r, chunks = self.stream(path, body, headers)
                self.assertEqual(r.status, 200, r)
                self.assertTrue(r.complete)
                self.assertEqual(len(chunks), n)
                self.assertEqual(len(stream_units(fmt, r, chunks)), n)

    def test_drop_after(self):
        for fmt, (path, body, headers, n) in FORMATS.items():
            with self.subTest(fmt):
                r, chunks = self.stream(path, body, headers + [("x-mock-drop-after", "2")])
                self.assertEqual(r.status, 200, r)
                self.assertFalse(r.complete, "a dropped stream must not end cleanly")
                self.assertEqual(len(chunks), 2)
                self.assertEqual(len(stream_units(fmt, r, chunks)), 2)
                # Non-streaming: half the promised body, then a reset.
                plain = {k: v for k, v in body.items() if k != "stream"} if isinstance(body, dict) else body
                p = path.replace(":streamGenerateContent?alt=sse", ":generateContent").replace(
                    "converse-stream", "converse")
                with Conn(self.mock.port) as c:
                    c.send(build_request("POST", p, headers + [("x-mock-drop-after", "0")], plain,
                                         host=self.mock.hostport))
                    with self.assertRaises((Closed, ConnectionResetError)):
                        c.read_response("POST", deadline=time.monotonic() + 10)

    def test_malformed_second_event(self):
        for fmt, (path, body, headers, n) in FORMATS.items():
            with self.subTest(fmt):
                r, chunks = self.stream(path, body, headers + [("x-mock-malformed", "1")])
                units = stream_units(fmt, r, chunks)
                payloads = [u[1] for u in units] if fmt == "bedrock" else [u.data for u in units]
                json.loads(payloads[0])
                with self.assertRaises(ValueError):
                    json.loads(payloads[1])
                json.loads(payloads[2])

    def test_chunk_delay_and_delay(self):
        for fmt, (path, body, headers, n) in FORMATS.items():
            with self.subTest(fmt):
                t0 = time.monotonic()
                r, chunks = self.stream(path, body, headers + [("x-mock-delay-ms", "60"),
                                                               ("x-mock-chunk-delay-ms", "15")])
                dt = time.monotonic() - t0
                self.assertTrue(r.complete)
                self.assertGreaterEqual(dt, 0.060 + 0.015 * (n - 1) - 0.005)

    def test_timestamps(self):
        for fmt, (path, body, headers, n) in FORMATS.items():
            with self.subTest(fmt):
                r, chunks = self.stream(path, body, headers + [("x-mock-timestamps", "1")])
                units = stream_units(fmt, r, chunks)
                payloads = [u[1] for u in units] if fmt == "bedrock" else \
                    [u.data for u in units if u.data != "[DONE]"]
                for p in payloads:
                    self.assertIn("x_mock_sent_us", json.loads(p))

    def test_every_request_is_recorded(self):
        self.mock.clear()
        for fmt, (path, body, headers, n) in FORMATS.items():
            self.stream(path, body, headers + [("x-mock-status", "500")])
        recs = self.mock.requests()
        self.assertEqual([r["path"] for r in recs], [v[0] for v in FORMATS.values()])
        self.assertEqual(json.loads(recs[1]["body"]), FORMATS["anthropic"][1])
        self.assertTrue(all(r["method"] == "POST" for r in recs))


if __name__ == "__main__":
    harness.main()
