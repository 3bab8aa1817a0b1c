"""
POST /v1/messages: Anthropic Messages requests routed to an OpenAI-format
provider (the mock). The client must get Anthropic's answer, stream events
and error shapes; the provider must get a correct OpenAI request.
"""
import base64
import json

import harness
from harness import GatewayTestCase, request

MSG_BODY = {
    "model": "gpt-4o-mini",
    "max_tokens": 256,
    "system": "Be brief.",
    "messages": [{"role": "user", "content": "Hello"}],
}
TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}]


def anthropic_events(body):
    """[(event name, data object)] from an Anthropic SSE body."""
    out = []
    for block in body.decode().split("\n\n"):
        name, data = None, None
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if name is not None:
            out.append((name, data))
    return out


class MessagesToOpenAI(GatewayTestCase):

    def msg_headers(self, **extra):
        h = [("x-sluice-provider", "openai"),
             ("x-sluice-custom-host", self.mock.base + "/v1"),
             ("x-api-key", "sk-ant-client"),
             ("anthropic-version", "2023-06-01"),
             ("Content-Type", "application/json")]
        for k, v in extra.items():
            h.append((k.replace("_", "-"), v))
        return h

    def messages(self, body=None, headers=None, timeout=15.0):
        return request(self.gw.port, "POST", "/v1/messages",
                       headers if headers is not None else self.msg_headers(),
                       body if body is not None else MSG_BODY, timeout=timeout)

    def assert_anthropic_error(self, r, status, etype):
        self.assertEqual(r.status, status, r)
        j = r.json()
        self.assertEqual(j["type"], "error", r)
        self.assertEqual(j["error"]["type"], etype, r)
        self.assertTrue(j["error"]["message"], r)

    def test_answer_in_anthropic_format(self):
        r = self.messages()
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["type"], "message")
        self.assertEqual(j["role"], "assistant")
        self.assertEqual(j["content"], [{"type": "text", "text": "This is a mock response."}])
        self.assertEqual(j["stop_reason"], "end_turn")
        self.assertIsNone(j["stop_sequence"])
        for k in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                  "cache_creation_input_tokens"):
            self.assertIsInstance(j["usage"][k], int, j)
        self.assertGreater(j["usage"]["output_tokens"], 0)
        up = self.mock.last()
        self.assertEqual(up["path"], "/v1/chat/completions")
        sent = json.loads(up["body"])
        self.assertEqual(sent["messages"], [{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "Hello"}])
        self.assertEqual(sent["max_tokens"], 256)
        hdrs = {k.lower(): v for k, v in up["headers"]}
        self.assertEqual(hdrs.get("authorization"), "Bearer sk-ant-client")
        self.assertNotIn("x-api-key", hdrs)
        self.assertNotIn("anthropic-version", hdrs)

    def test_stream_in_anthropic_events(self):
        r = self.messages(dict(MSG_BODY, stream=True))
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type").startswith("text/event-stream"), r)
        evs = anthropic_events(r.body)
        names = [n for n, _ in evs]
        self.assertEqual(names[0], "message_start")
        self.assertEqual(names[1], "content_block_start")
        self.assertEqual(names[-3:], ["content_block_stop", "message_delta", "message_stop"])
        for n, d in evs:
            self.assertEqual(d["type"], n)
        text = "".join(d["delta"]["text"] for n, d in evs if n == "content_block_delta")
        self.assertEqual(text, "This is a mock response.")
        delta = dict(evs)["message_delta"]
        self.assertEqual(delta["delta"]["stop_reason"], "end_turn")
        self.assertGreater(delta["usage"]["output_tokens"], 0)
        sent = json.loads(self.mock.last()["body"])
        self.assertEqual(sent["stream_options"], {"include_usage": True})

    def test_tool_use_round_trip(self):
        body = dict(MSG_BODY, tools=TOOLS, tool_choice={"type": "any"})
        r = self.messages(body, self.msg_headers(x_mock_tool_call="get_weather"))
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["stop_reason"], "tool_use")
        tu = [b for b in j["content"] if b["type"] == "tool_use"]
        self.assertEqual(len(tu), 1, j)
        self.assertEqual(tu[0]["name"], "get_weather")
        self.assertEqual(tu[0]["input"], {})
        sent = json.loads(self.mock.last()["body"])
        self.assertEqual(sent["tool_choice"], "required")
        self.assertEqual(sent["tools"][0], {"type": "function", "function": {
            "name": "get_weather", "parameters": TOOLS[0]["input_schema"],
            "description": "Weather for a city"}})

        # The tool's result goes back as an OpenAI tool message.
        follow = dict(MSG_BODY, tools=TOOLS, messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": tu[0]["id"], "name": "get_weather",
                 "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": tu[0]["id"], "content": "18C, sunny"},
                {"type": "text", "text": "Thanks"}]}])
        r = self.messages(follow)
        self.assertEqual(r.status, 200, r)
        sent = json.loads(self.mock.last()["body"])
        msgs = sent["messages"]
        self.assertEqual(msgs[2]["role"], "assistant")
        self.assertEqual(msgs[2]["content"], "Let me check.")
        call = msgs[2]["tool_calls"][0]
        self.assertEqual(call["id"], tu[0]["id"])
        self.assertEqual(json.loads(call["function"]["arguments"]), {"city": "Paris"})
        self.assertEqual(msgs[3], {"role": "tool", "tool_call_id": tu[0]["id"],
                                   "content": "18C, sunny"})
        self.assertEqual(msgs[4]["role"], "user")

    def test_streamed_tool_use_equals_the_whole_answer(self):
        body = dict(MSG_BODY, tools=TOOLS, stream=True)
        r = self.messages(body, self.msg_headers(x_mock_tool_call="get_weather"))
        self.assertEqual(r.status, 200, r)
        evs = anthropic_events(r.body)
        starts = [d for n, d in evs if n == "content_block_start"
                  and d["content_block"]["type"] == "tool_use"]
        self.assertEqual(len(starts), 1, evs)
        idx = starts[0]["index"]
        args = "".join(d["delta"]["partial_json"] for n, d in evs
                       if n == "content_block_delta" and d["index"] == idx)
        self.assertEqual(json.loads(args), {})
        self.assertEqual(dict(evs)["message_delta"]["delta"]["stop_reason"], "tool_use")

    def test_images_become_image_url_parts(self):
        png = base64.b64encode(b"\x89PNG fake").decode()
        body = dict(MSG_BODY, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": png}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
            {"type": "text", "text": "What is this?"}]}])
        r = self.messages(body)
        self.assertEqual(r.status, 200, r)
        parts = json.loads(self.mock.last()["body"])["messages"][1]["content"]
        self.assertEqual(parts[0], {"type": "image_url",
                                    "image_url": {"url": "data:image/png;base64," + png}})
        self.assertEqual(parts[1]["image_url"]["url"], "https://example.com/a.jpg")
        self.assertEqual(parts[2], {"type": "text", "text": "What is this?"})

    def test_stop_sequences_and_user(self):
        body = dict(MSG_BODY, stop_sequences=["END"], temperature=0.2,
                    metadata={"user_id": "u-42"})
        r = self.messages(body)
        self.assertEqual(r.status, 200, r)
        sent = json.loads(self.mock.last()["body"])
        self.assertEqual(sent["stop"], ["END"])
        self.assertEqual(sent["user"], "u-42")
        self.assertEqual(sent["temperature"], 0.2)

    # -- errors, all in Anthropic's shape --------------------------------------

    def test_missing_max_tokens(self):
        body = {k: v for k, v in MSG_BODY.items() if k != "max_tokens"}
        self.assert_anthropic_error(self.messages(body), 400, "invalid_request_error")
        self.assertEqual(self.mock.requests(), [])

    def test_malformed_json(self):
        r = request(self.gw.port, "POST", "/v1/messages", self.msg_headers(), b'{"model":')
        self.assert_anthropic_error(r, 400, "invalid_request_error")

    def test_missing_provider(self):
        h = [(k, v) for k, v in self.msg_headers() if k != "x-sluice-provider"]
        self.assert_anthropic_error(self.messages(headers=h), 400, "invalid_request_error")

    def test_missing_key(self):
        h = [(k, v) for k, v in self.msg_headers() if k != "x-api-key"]
        self.assert_anthropic_error(self.messages(headers=h), 401, "authentication_error")

    def test_provider_rate_limit_keeps_its_status(self):
        r = self.messages(headers=self.msg_headers(x_mock_status="429"))
        self.assert_anthropic_error(r, 429, "rate_limit_error")

    def test_provider_server_error(self):
        r = self.messages(headers=self.msg_headers(x_mock_status="500"))
        self.assert_anthropic_error(r, 500, "api_error")

    def test_unsupported_block_for_a_non_anthropic_provider(self):
        body = dict(MSG_BODY, messages=[{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                            "data": "x"}}]}])
        self.assert_anthropic_error(self.messages(body), 400, "invalid_request_error")

    def test_broken_stream_ends_with_an_error_event(self):
        r = self.messages(dict(MSG_BODY, stream=True), self.msg_headers(x_mock_drop_after="2"))
        self.assertEqual(r.status, 200, r)
        evs = anthropic_events(r.body)
        self.assertEqual(evs[-1][0], "error", evs)
        self.assertEqual(evs[-1][1]["type"], "error")
        self.assertIn("incomplete", evs[-1][1]["error"]["message"])
        self.assertNotIn("message_stop", [n for n, _ in evs])
        self.assert_healthy()


if __name__ == "__main__":
    harness.main()
