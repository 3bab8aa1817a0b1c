"""
The Cohere v2 adapter end to end: OpenAI requests to the gateway with
x-sluice-provider: cohere go to the mock's Cohere API (POST /v2/chat,
POST /v2/embed); the test checks the exact request the mock recorded and
the OpenAI answer, stream, tool calls, embeddings and errors the client
gets back. Faults come from the mock's x-mock-* headers, which the adapter
forwards like any other custom client header.
"""
import base64
import json
import struct

import harness
from harness import GatewayTestCase, request

MODEL = "command-a-03-2025"
EMBED_MODEL = "embed-v4.0"
KEY = "co-test-key"
TEXT = "This is a mock response."
# The mock's Cohere usage: tokens.input_tokens = billed input + its prompt template.
TEMPLATE_TOKENS = 64
TOOLS = [{"type": "function",
          "function": {"name": "get_weather", "description": "Weather for a city",
                       "parameters": {"type": "object",
                                      "properties": {"city": {"type": "string"}},
                                      "required": ["city"]}}}]


def billed(chars):
    """The mock's billed tokens for this many characters."""
    return max(chars // 4, 1)


class CohereCase(GatewayTestCase):

    def co_headers(self, **extra):
        h = [("x-sluice-provider", "cohere"),
             ("x-sluice-custom-host", self.mock.base + "/v2"),
             ("Authorization", "Bearer " + KEY),
             ("Content-Type", "application/json")]
        for k, v in extra.items():
            h.append((k.replace("_", "-"), v))
        return h

    def co(self, body, path="/v1/chat/completions", **extra):
        return request(self.gw.port, "POST", path, self.co_headers(**extra), body, timeout=15.0)

    def upstream(self, path):
        """The one request the mock got: (record, parsed body)."""
        reqs = self.mock.requests()
        self.assertEqual(len(reqs), 1, reqs)
        up = reqs[0]
        self.assertEqual(up["method"], "POST")
        self.assertEqual(up["path"], path)
        hdrs = {k.lower(): v for k, v in up["headers"]}
        self.assertEqual(hdrs.get("authorization"), "Bearer " + KEY)
        self.assertEqual(hdrs.get("content-type"), "application/json")
        self.assertFalse([k for k in hdrs if k.startswith("x-sluice-")], hdrs)
        return up, json.loads(up["body"])

    def sse(self, r):
        """The data of each event: parsed JSON, or "[DONE]"."""
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type", "").startswith("text/event-stream"), r)
        self.assertTrue(r.complete, r)
        out = []
        for ev in r.events():
            out.append("[DONE]" if ev.is_done() else ev.json())
        return out

    def assert_cohere_healthy(self):
        self.assertTrue(self.gw.alive(), "gateway died; stderr:\n" + self.gw.stderr()[-4000:])
        r = self.co({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["choices"][0]["message"]["content"], TEXT)


class Chat(CohereCase):

    def test_chat(self):
        body = {"model": MODEL,
                "messages": [{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": "Hello there"}],
                "temperature": 0.5, "max_tokens": 50, "stop": ["END"], "top_p": 0.9,
                "top_k": 10, "seed": 3, "frequency_penalty": 0.1, "presence_penalty": 0.2,
                "user": "u-1"}
        r = self.co(body)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type").startswith("application/json"), r)
        j = r.json()
        self.assertEqual(j["object"], "chat.completion")
        self.assertEqual(j["model"], MODEL)
        self.assertTrue(j["id"])
        self.assertIsInstance(j["created"], int)
        self.assertEqual(len(j["choices"]), 1)
        c = j["choices"][0]
        self.assertEqual(c["message"], {"role": "assistant", "content": TEXT})
        self.assertEqual(c["finish_reason"], "stop")
        # tokens (what the model saw), not billed_units
        prompt = billed(len("Be brief.") + len("Hello there")) + TEMPLATE_TOKENS
        self.assertEqual(j["usage"]["prompt_tokens"], prompt)
        self.assertEqual(j["usage"]["completion_tokens"], 5)
        self.assertEqual(j["usage"]["total_tokens"], prompt + 5)

        _, sent = self.upstream("/v2/chat")
        self.assertEqual(sent, {
            "model": MODEL,
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Hello there"}],
            "max_tokens": 50, "temperature": 0.5, "seed": 3, "frequency_penalty": 0.1,
            "presence_penalty": 0.2, "p": 0.9, "k": 10, "stop_sequences": ["END"]})

    def test_max_tokens_is_length(self):
        r = self.co({"model": MODEL, "max_tokens": 2,
                     "messages": [{"role": "user", "content": "Hello"}]})
        self.assertEqual(r.status, 200, r)
        c = r.json()["choices"][0]
        self.assertEqual(c["message"]["content"], "This is")
        self.assertEqual(c["finish_reason"], "length")

    def test_multimodal_and_custom_headers(self):
        img = "data:image/png;base64,iVBORw0KGgo="
        r = self.co({"model": MODEL, "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "Describe."}]},
            {"role": "user", "content": [{"type": "text", "text": "What is it?"},
                                         {"type": "image_url",
                                          "image_url": {"url": img, "detail": "low"}}]}]},
            x_client_name="it-test", openai_organization="org-x")
        self.assertEqual(r.status, 200, r)
        up, sent = self.upstream("/v2/chat")
        self.assertEqual(sent["messages"], [
            {"role": "system", "content": [{"type": "text", "text": "Describe."}]},
            {"role": "user", "content": [{"type": "text", "text": "What is it?"},
                                         {"type": "image_url",
                                          "image_url": {"url": img, "detail": "low"}}]}])
        hdrs = {k.lower(): v for k, v in up["headers"]}
        self.assertEqual(hdrs.get("x-client-name"), "it-test")
        self.assertNotIn("openai-organization", hdrs)

    def test_stream(self):
        body = {"model": MODEL, "stream": True, "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "Hello there"}]}
        evs = self.sse(self.co(body, x_mock_chunks="3"))
        self.assertEqual(evs[-1], "[DONE]")
        chunks = evs[:-1]
        ids = {c["id"] for c in chunks}
        self.assertEqual(len(ids), 1, ids)
        for c in chunks:
            self.assertEqual(c["object"], "chat.completion.chunk")
            self.assertEqual(c["model"], MODEL)
        self.assertEqual(chunks[0]["choices"][0]["delta"], {"role": "assistant", "content": ""})
        pieces = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
        self.assertEqual(len(pieces), 3, chunks)
        self.assertEqual("".join(pieces), TEXT)
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "stop")
        self.assertEqual(chunks[-1]["choices"], [])
        u = chunks[-1]["usage"]
        self.assertEqual(u["prompt_tokens"], billed(len("Hello there")) + TEMPLATE_TOKENS)
        self.assertEqual(u["completion_tokens"], 5)
        _, sent = self.upstream("/v2/chat")
        self.assertIs(sent["stream"], True)
        self.assertNotIn("stream_options", sent)

    def test_stream_without_include_usage(self):
        body = {"model": MODEL, "stream": True,
                "messages": [{"role": "user", "content": "Hello"}]}
        evs = self.sse(self.co(body))
        self.assertEqual(evs[-1], "[DONE]")
        self.assertEqual(evs[-2]["choices"][0]["finish_reason"], "stop")
        self.assertFalse([e for e in evs[:-1] if not e["choices"]], evs)


class Tools(CohereCase):

    def test_tool_call(self):
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Weather in Paris?"}],
                "tools": TOOLS, "tool_choice": "required"}
        r = self.co(body, x_mock_tool_call="get_weather")
        self.assertEqual(r.status, 200, r)
        c = r.json()["choices"][0]
        self.assertEqual(c["finish_reason"], "tool_calls")
        m = c["message"]
        # Cohere's tool plan is the text that comes with the calls.
        self.assertEqual(m["content"], "I will use the get_weather tool.")
        self.assertEqual(len(m["tool_calls"]), 1, m)
        tc = m["tool_calls"][0]
        self.assertTrue(tc["id"].startswith("get_weather_"), tc)
        self.assertEqual(tc["type"], "function")
        self.assertEqual(tc["function"]["name"], "get_weather")
        args = json.loads(tc["function"]["arguments"])
        self.assertIsInstance(args, dict)
        self.assertIn("city", args)
        _, sent = self.upstream("/v2/chat")
        self.assertEqual(sent["tools"], TOOLS)
        self.assertEqual(sent["tool_choice"], "REQUIRED")

    def test_tool_call_stream(self):
        body = {"model": MODEL, "stream": True,
                "messages": [{"role": "user", "content": "Weather in Paris?"}],
                "tools": TOOLS}
        evs = self.sse(self.co(body, x_mock_tool_call="get_weather"))
        self.assertEqual(evs[-1], "[DONE]")
        chunks = evs[:-1]
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        text, calls, finish = "", {}, None
        for ch in chunks:
            ch0 = ch["choices"][0]
            d = ch0["delta"]
            text += d.get("content") or ""
            for tc in d.get("tool_calls", []):
                slot = calls.setdefault(tc["index"], {"id": None, "name": None, "args": ""})
                if "id" in tc:
                    self.assertIsNone(slot["id"], "id sent twice")
                    slot["id"] = tc["id"]
                    slot["name"] = tc["function"]["name"]
                slot["args"] += tc["function"].get("arguments", "")
            finish = ch0["finish_reason"] or finish
        self.assertEqual(text, "I will use the get_weather tool.")
        self.assertEqual(list(calls), [0])
        self.assertTrue(calls[0]["id"].startswith("get_weather_"))
        self.assertEqual(calls[0]["name"], "get_weather")
        self.assertIn("city", json.loads(calls[0]["args"]))
        self.assertEqual(finish, "tool_calls")

    def test_tool_result_turn(self):
        body = {"model": MODEL, "tools": TOOLS, "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "get_weather_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "get_weather_1", "content": "18C, sunny"}]}
        r = self.co(body)
        self.assertEqual(r.status, 200, r)
        c = r.json()["choices"][0]
        self.assertEqual(c["message"], {"role": "assistant", "content": TEXT})
        self.assertEqual(c["finish_reason"], "stop")
        _, sent = self.upstream("/v2/chat")
        self.assertEqual(sent["messages"], [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [
                {"id": "get_weather_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "get_weather_1", "content": "18C, sunny"}])

    def test_named_tool_choice(self):
        tools = TOOLS + [{"type": "function", "function": {"name": "get_time"}}]
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Time?"}],
                "tools": tools,
                "tool_choice": {"type": "function", "function": {"name": "get_time"}}}
        r = self.co(body)
        self.assertEqual(r.status, 200, r)
        tc = r.json()["choices"][0]["message"]["tool_calls"][0]
        self.assertEqual(tc["function"]["name"], "get_time")
        _, sent = self.upstream("/v2/chat")
        self.assertEqual([t["function"]["name"] for t in sent["tools"]], ["get_time"])
        self.assertEqual(sent["tool_choice"], "REQUIRED")


class Errors(CohereCase):

    def test_upstream_error_status(self):
        r = self.co({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]},
                    x_mock_status="429")
        e = self.assert_error(r, 429, type_="rate_limit_error")
        self.assertIn("per minute request limit", e["message"])
        r = self.co({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]},
                    x_mock_status="500")
        e = self.assert_error(r, 500, type_="api_error")
        self.assertIn("internal server error", e["message"])
        self.assert_cohere_healthy()

    def test_upstream_rejects_request(self):
        # No model: the gateway passes the request on; Cohere's 400 comes back.
        r = self.co({"messages": [{"role": "user", "content": "Hi"}]})
        e = self.assert_error(r, 400, type_="invalid_request_error")
        self.assertEqual(e["message"], "invalid request: model must be specified")

    def test_stream_upstream_error_status(self):
        r = self.co({"model": MODEL, "stream": True,
                     "messages": [{"role": "user", "content": "Hi"}]}, x_mock_status="503")
        self.assert_error(r, 503)

    def test_stream_failed_generation(self):
        r = self.co({"model": MODEL, "stream": True,
                     "messages": [{"role": "user", "content": "Hi"}]}, x_mock_stream_error="1")
        evs = self.sse(r)
        self.assertNotIn("[DONE]", evs)
        self.assertEqual(evs[0]["choices"][0]["delta"]["role"], "assistant")
        self.assertIn("content", evs[1]["choices"][0]["delta"])
        err = evs[-1]["error"]
        self.assertIn("internal server error", err["message"])
        self.assertEqual(err["type"], "api_error")
        self.assert_cohere_healthy()

    def test_stream_cut_short(self):
        # The connection breaks before message-end: the client gets an error event.
        r = self.co({"model": MODEL, "stream": True,
                     "messages": [{"role": "user", "content": "Hi"}]}, x_mock_drop_after="3")
        evs = self.sse(r)
        self.assertNotIn("[DONE]", evs)
        self.assertIn("error", evs[-1])
        self.assert_cohere_healthy()

    def test_malformed_stream_event(self):
        r = self.co({"model": MODEL, "stream": True,
                     "messages": [{"role": "user", "content": "Hi"}]}, x_mock_malformed="1")
        evs = self.sse(r)
        self.assertNotIn("[DONE]", evs)
        self.assertEqual(evs[-1]["error"]["code"], "upstream_bad_response")
        self.assert_cohere_healthy()

    def test_invalid_request_not_sent(self):
        r = self.co({"model": MODEL,
                     "messages": [{"role": "function", "name": "f", "content": "x"}]})
        self.assert_error(r, 400, param="messages")
        r = self.co({"model": MODEL, "n": 3, "messages": [{"role": "user", "content": "x"}]})
        self.assert_error(r, 400, param="n")
        self.assertEqual(self.mock.requests(), [])


class Embeddings(CohereCase):

    def test_embeddings(self):
        r = self.co({"model": EMBED_MODEL, "input": ["a", "bb"], "dimensions": 16},
                    path="/v1/embeddings")
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["object"], "list")
        self.assertEqual(j["model"], EMBED_MODEL)
        self.assertEqual([d["index"] for d in j["data"]], [0, 1])
        for d in j["data"]:
            self.assertEqual(d["object"], "embedding")
            self.assertEqual(len(d["embedding"]), 16)
            self.assertTrue(all(isinstance(x, float) for x in d["embedding"]))
        self.assertNotEqual(j["data"][0]["embedding"], j["data"][1]["embedding"])
        self.assertEqual(j["usage"], {"prompt_tokens": 2, "total_tokens": 2})
        _, sent = self.upstream("/v2/embed")
        self.assertEqual(sent, {"model": EMBED_MODEL, "texts": ["a", "bb"],
                                "input_type": "search_document", "embedding_types": ["float"],
                                "output_dimension": 16})

    def test_input_type_and_base64(self):
        r = self.co({"model": EMBED_MODEL, "input": "hello world"}, path="/v1/embeddings")
        self.assertEqual(r.status, 200, r)
        floats = r.json()["data"][0]["embedding"]
        self.mock.clear()
        r = self.co({"model": EMBED_MODEL, "input": "hello world", "encoding_format": "base64"},
                    path="/v1/embeddings", x_sluice_cohere_input_type="search_query")
        self.assertEqual(r.status, 200, r)
        b64 = r.json()["data"][0]["embedding"]
        raw = base64.b64decode(b64)
        self.assertEqual(len(raw), 4 * len(floats))
        decoded = struct.unpack("<%df" % len(floats), raw)
        for a, b in zip(decoded, floats):
            self.assertAlmostEqual(a, b, places=6)
        _, sent = self.upstream("/v2/embed")
        self.assertEqual(sent["input_type"], "search_query")
        self.assertEqual(sent["texts"], ["hello world"])
        self.assertEqual(sent["embedding_types"], ["float"])

    def test_upstream_error(self):
        r = self.co({"model": EMBED_MODEL, "input": "x", "dimensions": 0}, path="/v1/embeddings")
        e = self.assert_error(r, 400, type_="invalid_request_error")
        self.assertIn("output_dimension", e["message"])

    def test_token_input_refused(self):
        r = self.co({"model": EMBED_MODEL, "input": [1, 2, 3]}, path="/v1/embeddings")
        self.assert_error(r, 400, param="input")
        self.assertEqual(self.mock.requests(), [])


class MessagesClient(CohereCase):
    """An Anthropic-format client (/v1/messages) routed to Cohere."""

    def test_messages(self):
        body = {"model": MODEL, "max_tokens": 64, "system": "Be brief.",
                "messages": [{"role": "user", "content": "Hello"}]}
        r = request(self.gw.port, "POST", "/v1/messages",
                    self.co_headers(anthropic_version="2023-06-01"), body)
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["type"], "message")
        self.assertEqual(j["content"], [{"type": "text", "text": TEXT}])
        self.assertEqual(j["stop_reason"], "end_turn")
        _, sent = self.upstream("/v2/chat")
        self.assertEqual(sent["messages"], [{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "Hello"}])
        self.assertEqual(sent["max_tokens"], 64)


if __name__ == "__main__":
    harness.main()
