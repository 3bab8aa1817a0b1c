"""
OpenAI-format clients routed to the anthropic provider: the gateway
translates the request to Anthropic's Messages API (the mock answers as
Anthropic does) and the answers, streams, tool calls and errors back.
"""
import json

import harness
from harness import GatewayTestCase

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 100,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Hello"}]}


class OpenAIToAnthropic(GatewayTestCase):

    def anth_headers(self, **extra):
        h = [("x-sluice-provider", "anthropic"),
             ("x-sluice-custom-host", self.mock.base + "/v1"),
             ("Authorization", "Bearer sk-ant-test"),
             ("Content-Type", "application/json")]
        for k, v in extra.items():
            h.append((k.replace("_", "-"), v))
        return h

    def test_answer_and_the_request_sent(self):
        r = self.chat(body=BODY, headers=self.anth_headers())
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["object"], "chat.completion")
        self.assertRegex(j["id"], r"^msg_mock_\d+$")
        self.assertEqual(j["choices"][0]["message"], {"role": "assistant",
                                                      "content": "This is a mock response."})
        self.assertEqual(j["choices"][0]["finish_reason"], "stop")
        self.assertEqual(j["usage"]["completion_tokens"], 5)
        self.assertEqual(j["usage"]["total_tokens"],
                         j["usage"]["prompt_tokens"] + j["usage"]["completion_tokens"])
        up = self.mock.last()
        self.assertEqual(up["path"], "/v1/messages")
        hdrs = {k.lower(): v for k, v in up["headers"]}
        self.assertEqual(hdrs["x-api-key"], "sk-ant-test")
        self.assertEqual(hdrs["anthropic-version"], "2023-06-01")
        self.assertNotIn("authorization", hdrs)
        sent = json.loads(up["body"])
        self.assertEqual(sent["system"], [{"type": "text", "text": "Be brief."}])
        self.assertEqual(sent["messages"], [{"role": "user",
                                             "content": [{"type": "text", "text": "Hello"}]}])
        self.assertEqual(sent["max_tokens"], 100)

    def test_max_tokens_cut_is_length(self):
        r = self.chat(body=dict(BODY, max_tokens=2), headers=self.anth_headers())
        self.assertEqual(r.status, 200, r)
        c = r.json()["choices"][0]
        self.assertEqual(c["finish_reason"], "length")
        self.assertEqual(c["message"]["content"], "This is")

    def test_stream_as_openai_chunks(self):
        body = dict(BODY, stream=True, stream_options={"include_usage": True})
        r = self.chat(body=body, headers=self.anth_headers())
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type").startswith("text/event-stream"), r)
        evs = r.events()
        self.assertTrue(evs[-1].is_done(), r)
        chunks = [e.json() for e in evs[:-1]]
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        text = "".join(c["choices"][0]["delta"].get("content") or ""
                       for c in chunks if c["choices"])
        self.assertEqual(text, "This is a mock response.")
        fins = [c["choices"][0]["finish_reason"] for c in chunks
                if c["choices"] and c["choices"][0].get("finish_reason")]
        self.assertEqual(fins, ["stop"])
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 5)
        for c in chunks:
            self.assertEqual(c["object"], "chat.completion.chunk")
            self.assertEqual(c["id"], chunks[0]["id"])

    def test_streamed_tool_call_equals_the_whole_one(self):
        body = dict(BODY, tools=TOOLS, tool_choice="required")
        whole = self.chat(body=body, headers=self.anth_headers()).json()
        call = whole["choices"][0]["message"]["tool_calls"][0]
        self.assertEqual(whole["choices"][0]["finish_reason"], "tool_calls")
        self.assertEqual(call["function"]["name"], "get_weather")
        self.assertEqual(json.loads(call["function"]["arguments"]), {"city": "mock"})
        sent = json.loads(self.mock.last()["body"])
        self.assertEqual(sent["tool_choice"], {"type": "any"})
        self.assertEqual(sent["tools"][0]["input_schema"], TOOLS[0]["function"]["parameters"])

        r = self.chat(body=dict(body, stream=True), headers=self.anth_headers())
        args, names, ids = "", [], []
        for e in r.events()[:-1]:
            for ch in e.json()["choices"]:
                for tc in ch["delta"].get("tool_calls") or []:
                    self.assertEqual(tc["index"], 0)
                    if tc.get("id"):
                        ids.append(tc["id"])
                        names.append(tc["function"]["name"])
                    args += tc["function"].get("arguments") or ""
        self.assertEqual(names, ["get_weather"])
        self.assertEqual(len(ids), 1)
        self.assertEqual(json.loads(args), {"city": "mock"})

    def test_tool_result_round_trip(self):
        body = dict(BODY, tools=TOOLS, messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "toolu_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}])
        r = self.chat(body=body, headers=self.anth_headers())
        self.assertEqual(r.status, 200, r)
        # The last turn answers the call, so the mock writes text this time.
        self.assertEqual(r.json()["choices"][0]["message"]["content"], "This is a mock response.")
        sent = json.loads(self.mock.last()["body"])["messages"]
        self.assertEqual(sent[1], {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
             "input": {"city": "Paris"}}]})
        self.assertEqual(sent[2], {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1",
             "content": [{"type": "text", "text": "18C"}]}]})

    def test_errors_keep_their_status_in_openai_shape(self):
        for status, etype in ((529, "overloaded_error"), (429, "rate_limit_error"),
                              (401, "authentication_error"), (400, "invalid_request_error")):
            r = self.chat(body=BODY, headers=self.anth_headers(x_mock_status=str(status)))
            e = self.assert_error(r, status)
            self.assertEqual(e["type"], etype, r)

    def test_mid_stream_error_event_ends_the_stream_with_an_error(self):
        r = self.chat(body=dict(BODY, stream=True),
                      headers=self.anth_headers(x_mock_stream_error="1"))
        self.assertEqual(r.status, 200, r)
        evs = r.events()
        self.assertFalse(any(e.is_done() for e in evs), r)
        self.assertTrue(evs[-1].is_error(), r)
        self.assertIn("anthropic", evs[-1].json()["error"]["message"])
        self.assert_healthy()

    def test_cut_stream_ends_with_an_error(self):
        r = self.chat(body=dict(BODY, stream=True), headers=self.anth_headers(x_mock_drop_after="3"))
        evs = r.events()
        self.assertTrue(evs[-1].is_error(), r)
        self.assertFalse(any(e.is_done() for e in evs), r)
        self.assert_healthy()

    def test_anthropic_headers_are_passed_on(self):
        r = self.chat(body=BODY, headers=self.anth_headers(
            x_sluice_anthropic_beta="prompt-caching-2024-07-31",
            anthropic_version="2023-06-01", x_request_tag="t1"))
        self.assertEqual(r.status, 200, r)
        hdrs = {k.lower(): v for k, v in self.mock.last()["headers"]}
        self.assertEqual(hdrs["anthropic-beta"], "prompt-caching-2024-07-31")
        self.assertEqual(hdrs["x-request-tag"], "t1")


if __name__ == "__main__":
    harness.main()
