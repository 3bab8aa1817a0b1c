"""
Upstream failures and client failures around streams: the gateway must turn
each into a clean, honest answer (an error status before the head, an SSE
error event after it, never a [DONE] on a broken stream) and stay healthy.
"""
import re
import time

import harness
from harness import (CHAT_BODY, GatewayTestCase, build_request, free_closed_port, metric,
                     stream_events, with_gateway_args)

STREAM_BODY = dict(CHAT_BODY, stream=True)


class StreamFaults(GatewayTestCase):

    def open_stream(self, *extra, body=STREAM_BODY):
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions", self.headers() + list(extra), body,
                             host="x"))
        r = c.read_head(deadline=time.monotonic() + 10)
        return c, r

    def read_stream(self, *extra, body=STREAM_BODY):
        c, r = self.open_stream(*extra, body=body)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type", "").startswith("text/event-stream"), r)
        evs = list(stream_events(c, r, deadline=time.monotonic() + 15))
        self.assertTrue(r.complete, "chunked body not terminated with the last chunk")
        return r, evs

    def assert_broken_stream(self, evs, n_good, code):
        """n_good ordinary events, then one error event, then nothing (no [DONE])."""
        self.assertFalse(any(e.is_done() for e in evs), "a broken stream ended with [DONE]: %r" % evs)
        if n_good is not None:
            self.assertEqual(len(evs), n_good + 1, evs)
        for e in evs[:-1]:
            j = e.json()
            self.assertNotIn("error", j)
            self.assertEqual(j["object"], "chat.completion.chunk")
        last = evs[-1]
        self.assertIsNone(last.event)
        err = last.json()
        self.assertEqual(set(err), {"error"})
        e = err["error"]
        for k in ("message", "type", "param", "code"):
            self.assertIn(k, e)
        self.assertEqual(e["code"], code, err)
        return e

    def test_upstream_reset_mid_stream(self):
        r, evs = self.read_stream(("x-mock-drop-after", "2"))
        e = self.assert_broken_stream(evs, 2, "upstream_stream_error")
        self.assertEqual(evs[0].json()["choices"][0]["delta"]["role"], "assistant")
        self.assertEqual(evs[1].json()["choices"][0]["delta"]["content"], "This")
        self.assertEqual(e["type"], "api_error")
        m = self.wait_metric(lambda m: metric(m, "sluice_upstream_errors_total",
                                              provider="openai", kind="stream"))
        self.assertEqual(metric(m, "sluice_upstream_errors_total", provider="openai", kind="stream"), 1)
        self.assert_healthy()

    def test_upstream_reset_right_after_an_event_loses_nothing(self):
        # Events are spaced out; the reset comes right behind the third. Every
        # byte the upstream sent before its reset must still reach the client.
        r, evs = self.read_stream(("x-mock-drop-after", "3"), ("x-mock-chunk-delay-ms", "100"))
        self.assert_broken_stream(evs, 3, "upstream_stream_error")
        self.assertEqual(evs[2].json()["choices"][0]["delta"]["content"], " is")
        self.assert_healthy()

    def test_upstream_reset_before_first_event(self):
        r, evs = self.read_stream(("x-mock-drop-after", "0"))
        self.assert_broken_stream(evs, 0, "upstream_stream_error")
        self.assert_healthy()

    def test_malformed_event(self):
        r, evs = self.read_stream(("x-mock-malformed", "1"))
        # The first event is whole; the second is cut in half: nothing after it is relayed.
        self.assert_broken_stream(evs, 1, "upstream_bad_response")
        self.assert_healthy()

    def test_connection_is_reusable_after_a_broken_stream(self):
        # The error event ends a well-framed response: the next request on the
        # same connection is served normally.
        c, r = self.open_stream(("x-mock-malformed", "1"))
        evs = list(stream_events(c, r, deadline=time.monotonic() + 5))
        self.assert_broken_stream(evs, 1, "upstream_bad_response")
        if (r.header("connection") or "").lower() == "keep-alive":
            c.send(build_request("POST", "/v1/chat/completions", self.headers(), CHAT_BODY, host="x"))
            r2 = c.read_response("POST", deadline=time.monotonic() + 5)
            self.assertEqual(r2.status, 200, r2)
            self.assertEqual(r2.json()["choices"][0]["message"]["content"], "This is a mock response.")
        else:
            self.assertTrue(c.wait_closed(2.0))
        self.assert_healthy()

    def test_upstream_timeout_mid_stream(self):
        t0 = time.monotonic()
        r, evs = self.read_stream(("x-mock-chunks", "40"), ("x-mock-chunk-delay-ms", "50"),
                                  ("x-sluice-request-timeout", "600"))
        took = time.monotonic() - t0
        e = self.assert_broken_stream(evs, None, "upstream_timeout")
        self.assertGreaterEqual(len(evs), 4, "expected some events before the timeout: %r" % evs)
        self.assertLess(len(evs), 40)
        self.assertEqual(e["type"], "timeout_error")
        self.assertGreater(took, 0.5)
        self.assertLess(took, 1.5, "the stream outlived its timeout: %.2fs" % took)
        self.assert_healthy()

    def test_upstream_timeout_before_headers(self):
        t0 = time.monotonic()
        r = self.chat(headers=self.headers() + [("x-mock-delay-ms", "3000"),
                                                ("x-sluice-request-timeout", "300")])
        took = time.monotonic() - t0
        self.assert_error(r, 504, code="upstream_timeout", type_="timeout_error")
        self.assertEqual(r.header("x-sluice-provider"), "openai")
        self.assertLess(took, 1.5)
        self.assertGreater(took, 0.25)
        m = self.wait_metric(lambda m: metric(m, "sluice_upstream_errors_total",
                                              provider="openai", kind="timeout"))
        self.assertEqual(metric(m, "sluice_upstream_errors_total", provider="openai", kind="timeout"), 1)
        self.assert_healthy()

    @with_gateway_args("--upstream-timeout-ms", "400")
    def test_gateway_wide_upstream_timeout(self):
        t0 = time.monotonic()
        r = self.chat(body=STREAM_BODY, headers=self.headers() + [("x-mock-delay-ms", "3000")])
        self.assert_error(r, 504, code="upstream_timeout")
        self.assertLess(time.monotonic() - t0, 1.5)
        self.assert_healthy()

    def test_upstream_unreachable(self):
        port = free_closed_port()
        h = [(k, v) for k, v in self.headers() if k != "x-sluice-custom-host"]
        h.append(("x-sluice-custom-host", "http://127.0.0.1:%d/v1" % port))
        t0 = time.monotonic()
        r = self.chat(headers=h)
        self.assert_error(r, 502, code="upstream_unreachable", type_="api_error")
        self.assertEqual(r.header("x-sluice-provider"), "openai")
        self.assertIsNotNone(r.header("x-sluice-overhead-us"))
        self.assertLess(time.monotonic() - t0, 2.0)
        r = self.chat(headers=h, body=STREAM_BODY)  # a stream fails the same way: before any head
        self.assert_error(r, 502, code="upstream_unreachable")
        m = self.wait_metric(lambda m: metric(m, "sluice_upstream_errors_total",
                                              provider="openai", kind="connect") == 2)
        self.assertEqual(metric(m, "sluice_upstream_errors_total", provider="openai", kind="connect"), 2)
        self.assert_healthy()

    def test_non_stream_upstream_reset(self):
        # The mock promises a Content-Length, sends half the body and resets.
        r = self.chat(headers=self.headers() + [("x-mock-drop-after", "0")])
        self.assertEqual(r.status, 502, r)
        self.assert_error(r, 502)
        self.assert_healthy()

    def test_non_stream_body_is_relayed_byte_for_byte(self):
        # A well-framed body goes back exactly as the provider sent it, even
        # when it is not valid JSON (the mock cuts it in half here).
        h = self.headers() + [("x-mock-malformed", "1")]
        r = self.chat(headers=h)
        self.assertEqual(r.status, 200, r)
        direct = harness.request(self.mock.port, "POST", "/v1/chat/completions",
                                 [(k, v) for k, v in h if not k.startswith("x-sluice-")], CHAT_BODY)
        self.assertEqual(r.header("content-type"), direct.header("content-type"))

        def normalized(b):  # the reply id and creation time differ between the two
            b = re.sub(rb"chatcmpl-mock-[0-9]+", b"chatcmpl-mock-N", b)
            return re.sub(rb'"created":[0-9]+', b'"created":0', b)
        self.assertEqual(normalized(r.body), normalized(direct.body))
        self.assertRaises(ValueError, r.json)
        self.assert_healthy()

    def test_upstream_closing_its_connection_is_harmless(self):
        for i in range(3):
            r = self.chat(headers=self.headers() + [("x-mock-close", "1"),
                                                    ("x-mock-content", "close %d" % i)])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["choices"][0]["message"]["content"], "close %d" % i)
        self.assert_healthy()

    def test_client_disconnects_mid_stream(self):
        base = self.metrics()
        base_inflight = metric(base, "sluice_requests_in_flight")  # counts the scrape itself
        base_conns = metric(base, "sluice_open_connections")
        c, r = self.open_stream(("x-mock-chunks", "100"), ("x-mock-chunk-delay-ms", "50"))
        self.assertEqual(r.status, 200, r)
        first = next(stream_events(c, r, deadline=time.monotonic() + 5))
        self.assertEqual(first.json()["choices"][0]["delta"]["role"], "assistant")
        c.close()
        t0 = time.monotonic()
        m = self.wait_metric(lambda m: metric(m, "sluice_requests_in_flight") == base_inflight
                             and metric(m, "sluice_open_connections") == base_conns
                             and metric(m, "sluice_requests_total", provider="openai",
                                        model="gpt-4o-mini", status="499") == 1)
        self.assertEqual(metric(m, "sluice_requests_in_flight"), base_inflight,
                         "in-flight requests after the client left")
        self.assertEqual(metric(m, "sluice_open_connections"), base_conns)
        self.assertEqual(metric(m, "sluice_requests_total", provider="openai",
                                model="gpt-4o-mini", status="499"), 1)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assert_healthy()

    def test_client_disconnects_while_upstream_is_thinking(self):
        base = self.metrics()
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers() + [("x-mock-delay-ms", "1500")], CHAT_BODY, host="x"))
        time.sleep(0.3)
        c.close()
        m = self.wait_metric(lambda m: metric(m, "sluice_requests_total", provider="openai",
                                              model="gpt-4o-mini", status="499") == 1)
        self.assertEqual(metric(m, "sluice_requests_total", provider="openai", model="gpt-4o-mini",
                                status="499"), 1)
        self.assertEqual(metric(m, "sluice_requests_in_flight"),
                         metric(base, "sluice_requests_in_flight"))
        self.assert_healthy()

    def test_slow_reader_gets_the_whole_large_stream(self):
        # ~7 MB of events: more than the socket buffers and the gateway's
        # backlog limit, so relaying has to pause and resume.
        n = 30000
        c, r = self.open_stream(("x-mock-chunks", str(n)))
        self.assertEqual(r.status, 200, r)
        time.sleep(1.0)
        count = 0
        last = None
        for ev in stream_events(c, r, deadline=time.monotonic() + 30):
            count += 1
            last = ev
        self.assertTrue(r.complete)
        self.assertTrue(last.is_done(), last)
        self.assertEqual(count, 1 + n + 1 + 1)  # role, pieces, finish, [DONE]
        self.assert_healthy()

    @with_gateway_args("--send-timeout-ms", "500")
    def test_client_that_stops_reading_is_dropped(self):
        # ~40 MB of events; the client takes none after the head. Once the
        # socket buffers and the gateway's backlog are full, nothing moves for
        # the send timeout and the gateway lets the client and upstream go.
        base = self.metrics()
        c, r = self.open_stream(("x-mock-chunks", "200000"))
        self.assertEqual(r.status, 200, r)
        m = self.wait_metric(lambda m: metric(m, "sluice_requests_total", provider="openai",
                                              model="gpt-4o-mini", status="499") == 1,
                             timeout=10.0)
        self.assertEqual(metric(m, "sluice_requests_total", provider="openai",
                                model="gpt-4o-mini", status="499"), 1)
        self.assertEqual(metric(m, "sluice_requests_in_flight"),
                         metric(base, "sluice_requests_in_flight"))
        # What was queued before the drop arrives, then the connection ends
        # without the last chunk: the client can tell the stream is cut.
        try:
            for _ in stream_events(c, r, deadline=time.monotonic() + 20):
                pass
        except (harness.Closed, ConnectionResetError):
            pass  # cut mid-chunk: what a dropped client sees
        self.assertFalse(r.complete)
        self.assert_healthy()


if __name__ == "__main__":
    harness.main()
