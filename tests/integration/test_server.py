"""
HTTP/1.1 server behaviour of the gateway: connection reuse, pipelining,
request framing, limits and timeouts. Every test that feeds the gateway bad
input ends by checking that it still proxies an ordinary request.
"""
import json
import threading
import time

import harness
from harness import CHAT_BODY, Closed, GatewayTestCase, build_request


def chat_request(t, content=None, extra=(), body=None, connection=None):
    """Raw bytes of a chat request to the mock via the gateway."""
    h = t.headers()
    if content is not None:
        h.append(("x-mock-content", content))
    h.extend(extra)
    if connection:
        h.append(("Connection", connection))
    return build_request("POST", "/v1/chat/completions", h, body if body is not None else CHAT_BODY,
                         host="127.0.0.1:%d" % t.gw.port)


def content_of(r):
    return r.json()["choices"][0]["message"]["content"]


class KeepAliveAndPipelining(GatewayTestCase):

    def test_keep_alive_connection_serves_several_requests(self):
        c = self.conn()
        for i in range(3):
            c.send(chat_request(self, "answer %d" % i))
            r = c.read_response("POST")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(content_of(r), "answer %d" % i)
            self.assertEqual((r.header("connection") or "").lower(), "keep-alive", r)
        # A stream and a gateway endpoint on the same connection too.
        body = dict(CHAT_BODY, stream=True)
        c.send(chat_request(self, "streamed", body=body))
        r = c.read_response("POST")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.complete and r.chunked, r)
        evs = r.events()
        self.assertEqual(evs[-1].data, "[DONE]")
        c.send(build_request("GET", "/health"))
        r = c.read_response("GET")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"status": "ok"})
        self.assertEqual(len(self.mock.requests()), 4)

    def test_pipelined_requests_are_answered_in_order(self):
        c = self.conn()
        # The first one is slow upstream: the later ones must still wait their turn.
        data = (chat_request(self, "first", extra=[("x-mock-delay-ms", "300")]) +
                build_request("GET", "/health", host="x") +
                chat_request(self, "third"))
        c.send(data)  # one write
        t0 = time.monotonic()
        r1 = c.read_response("POST")
        r2 = c.read_response("GET")
        r3 = c.read_response("POST")
        self.assertEqual((r1.status, r2.status, r3.status), (200, 200, 200), (r1, r2, r3))
        self.assertEqual(content_of(r1), "first")
        self.assertEqual(r2.json(), {"status": "ok"})
        self.assertEqual(content_of(r3), "third")
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        recs = self.mock.requests()
        self.assertEqual([dict((k.lower(), v) for k, v in rec["headers"])["x-mock-content"]
                          for rec in recs], ["first", "third"])

    def test_pipelined_request_after_an_application_error_is_served(self):
        # A well-framed request with a bad JSON body is answered 400 and the
        # connection goes on with the next pipelined request.
        c = self.conn()
        bad = build_request("POST", "/v1/chat/completions", self.headers(), b"{oops",
                            host="x")
        c.send(bad + chat_request(self, "never", connection="close"))
        r1 = c.read_response("POST")
        self.assert_error(r1, 400, code="invalid_json")
        r2 = c.read_response("POST")
        self.assertEqual(r2.status, 200, r2)
        self.assertEqual(content_of(r2), "never")
        self.assertEqual(len(self.mock.requests()), 1)
        self.assert_healthy()

    def test_concurrent_clients(self):
        results = []

        def client(i):
            try:
                r = self.chat(headers=self.headers() + [("x-mock-content", "client %d" % i),
                                                        ("x-mock-delay-ms", "50")])
                results.append((i, r.status, content_of(r)))
            except Exception as e:  # noqa: BLE001 - reported by the assertion below
                results.append((i, None, repr(e)))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        self.assertEqual(sorted(results), [(i, 200, "client %d" % i) for i in range(40)])
        self.assertEqual(len(self.mock.requests()), 40)
        self.assert_healthy()

    def test_connection_close_is_honoured(self):
        c = self.conn()
        c.send(chat_request(self, "bye", connection="close"))
        r = c.read_response("POST")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.header("connection") or "").lower(), "close")
        self.assertTrue(c.wait_closed(2.0), "gateway kept a Connection: close connection open")


class RequestFraming(GatewayTestCase):

    def test_chunked_request_body(self):
        body = json.dumps(dict(CHAT_BODY, user="chunked")).encode()
        parts = [body[:7], body[7:40], body[40:]]
        head = build_request("POST", "/v1/chat/completions",
                             self.headers(**{"Transfer-Encoding": "chunked", "Connection": "close"}),
                             None, host="x")
        c = self.conn()
        c.send(head)
        for p in parts:
            c.send(b"%x;ext=1\r\n%s\r\n" % (len(p), p))
            time.sleep(0.02)
        c.send(b"0\r\n\r\n")
        r = c.read_response("POST")
        self.assertEqual(r.status, 200, r)
        rec = self.mock.last()
        self.assertEqual(rec["body"].encode(), body)
        hdrs = {k.lower(): v for k, v in rec["headers"]}
        self.assertEqual(hdrs.get("content-length"), str(len(body)))
        self.assertNotIn("transfer-encoding", hdrs)

    def test_chunked_request_trailers_are_not_merged_into_headers(self):
        # RFC 9110 6.5.1: trailer fields must not be merged into the header
        # section. Here they would also let a client set gateway headers
        # after the head (x-sluice-*) and forward arbitrary fields upstream.
        body = json.dumps(CHAT_BODY).encode()
        h = [(k, v) for k, v in self.headers() if k != "x-sluice-custom-host"]
        h += [("x-portkey-custom-host", self.mock.base + "/v1"), ("Transfer-Encoding", "chunked"),
              ("Connection", "close")]
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions", h, None, host="x"))
        c.send(b"%x\r\n%s\r\n" % (len(body), body))
        c.send(b"0\r\nX-Trailer: t\r\nx-sluice-trace-id: from-trailer\r\n"
               b"OpenAI-Organization: org-from-trailer\r\n\r\n")
        r = c.read_response("POST")
        self.assertEqual(r.status, 200, r)
        self.assertNotEqual(r.header("x-sluice-trace-id"), "from-trailer",
                            "a trailer field set the trace id")
        hdrs = {k.lower(): v for k, v in self.mock.last()["headers"]}
        self.assertNotIn("x-trailer", hdrs, "trailer field forwarded upstream as a header")
        self.assertNotIn("openai-organization", hdrs, "trailer field forwarded upstream as a header")

    def test_chunked_request_trailers_do_not_route(self):
        # The head points at a closed port; a trailer must not redirect the
        # request to another host (x-sluice-* outranks the x-portkey-* alias).
        self.mock.clear()
        body = json.dumps(CHAT_BODY).encode()
        h = [(k, v) for k, v in self.headers() if k != "x-sluice-custom-host"]
        h += [("x-portkey-custom-host", "http://127.0.0.1:%d/v1" % harness.free_closed_port()),
              ("Transfer-Encoding", "chunked"), ("Connection", "close")]
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions", h, None, host="x"))
        c.send(b"%x\r\n%s\r\n0\r\nx-sluice-custom-host: %s/v1\r\n\r\n"
               % (len(body), body, self.mock.base.encode()))
        r = c.read_response("POST")
        self.assertEqual(self.mock.requests(), [], "a trailer field chose the upstream host")
        self.assert_error(r, 502, code="upstream_unreachable")

    def test_large_header_is_forwarded(self):
        # 9000 bytes is well within the gateway's 32 KiB head limit: it has
        # to reach the upstream like any other header (think long bearer tokens).
        value = "t" * 9000
        r = self.chat(headers=self.headers() + [("X-Long-Header", value)])
        self.assertEqual(r.status, 200, r)
        hdrs = {k.lower(): v for k, v in self.mock.last()["headers"]}
        self.assertEqual(len(hdrs.get("x-long-header", "")), 9000,
                         "a 9000-byte header was silently dropped")

    def test_empty_header_value_is_forwarded(self):
        r = self.chat(headers=self.headers() + [("X-Empty", "")])
        self.assertEqual(r.status, 200, r)
        hdrs = {k.lower(): v for k, v in self.mock.last()["headers"]}
        self.assertEqual(hdrs.get("x-empty"), "", "a header with an empty value was dropped")

    def test_expect_100_continue(self):
        body = json.dumps(CHAT_BODY).encode()
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers(Expect="100-continue", **{"Content-Length": str(len(body))}),
                             None, host="x"))
        # The interim response must come before we send the body.
        line = c.readline(deadline=time.monotonic() + 3).decode()
        self.assertEqual(line, "HTTP/1.1 100 Continue")
        self.assertEqual(c.readline(deadline=time.monotonic() + 1), b"")
        c.send(body)
        r = c.read_response("POST")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(content_of(r), "This is a mock response.")
        rec = self.mock.last()
        self.assertNotIn("expect", {k.lower() for k, _ in rec["headers"]})
        self.assertEqual(rec["body"].encode(), body)

    def test_unsupported_expectation_is_refused(self):
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers(Expect="200-ok"), CHAT_BODY, host="x"))
        r = c.read_response("POST")
        self.assertIn(r.status, (400, 417), r)
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_malformed_json(self):
        r = self.chat(body=b'{"model": "gpt-4o-mini", "messages": [')
        e = self.assert_error(r, 400, code="invalid_json", type_="invalid_request_error")
        self.assertIn("malformed JSON", e["message"])
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_wrong_content_type(self):
        h = [(k, v) for k, v in self.headers() if k.lower() != "content-type"]
        r = self.chat(headers=h + [("Content-Type", "application/x-www-form-urlencoded")],
                      body=b"model=gpt-4o-mini")
        self.assert_error(r, 415, code="unsupported_media_type")
        r = self.chat(headers=h, body=json.dumps(CHAT_BODY))  # no content type at all
        self.assert_error(r, 415, code="unsupported_media_type")
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_request_smuggling_is_refused(self):
        # Content-Length and Transfer-Encoding together: whatever the gateway
        # decides, the bytes after the chunked body must never become a
        # request of their own (here a GET the mock would record).
        smuggled = build_request("GET", "/v1/models?smuggled=1", self.headers(), None, host="x")
        body = b"0\r\n\r\n" + smuggled
        head = build_request("POST", "/v1/chat/completions",
                             self.headers(**{"Content-Length": str(len(body)),
                                             "Transfer-Encoding": "chunked"}), None, host="x")
        c = self.conn()
        c.send(head + body)
        try:
            r = c.read_response("POST", deadline=time.monotonic() + 3)
        except Closed:
            r = None
        if r is not None:
            self.assertGreaterEqual(r.status, 400, r)
        c.wait_closed(1.0)
        self.assertFalse([rec for rec in self.mock.requests() if "smuggled" in rec["path"]],
                         "a smuggled request reached the upstream")
        # Two Content-Length values that disagree.
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers() + [("Content-Length", "2"), ("Content-Length", "20")],
                             None, host="x") + b"{}")
        r = c.read_response("POST", deadline=time.monotonic() + 3)
        self.assert_error(r, 400)
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_garbage_request_line(self):
        c = self.conn()
        c.send(b"HELLO WORLD\r\n\r\n")
        r = c.read_response("GET")
        self.assert_error(r, 400, code="bad_request")
        self.assertTrue(c.wait_closed(2.0))
        self.assert_healthy()

    def test_truncated_chunked_body_then_half_close(self):
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers(**{"Transfer-Encoding": "chunked"}), None, host="x"))
        c.send(b"40\r\n{\"model\":\"gpt-4o-mini\",\"mess")  # 0x40 promised, fewer sent
        time.sleep(0.1)
        c.shutdown_write()
        t0 = time.monotonic()
        try:
            r = c.read_response("POST", deadline=time.monotonic() + 3)
        except Closed:
            r = None  # a clean close without an answer is fine too
        self.assertLess(time.monotonic() - t0, 2.5)
        if r is not None:
            self.assert_error(r, 400)
            self.assertTrue(c.wait_closed(2.0))
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_truncated_content_length_body_then_half_close(self):
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers(**{"Content-Length": "500"}), None, host="x"))
        c.send(b'{"model":"gpt-4o-mini"')
        c.shutdown_write()
        try:
            r = c.read_response("POST", deadline=time.monotonic() + 3)
        except Closed:
            r = None
        if r is not None:
            self.assert_error(r, 400)
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()


class Limits(GatewayTestCase):
    gateway_args = ["--max-body-bytes", "1024", "--max-header-bytes", "4096",
                    "--max-headers", "20"]

    def test_oversized_body_by_content_length_is_refused_before_the_body(self):
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers(**{"Content-Length": "4096"}), None, host="x"))
        # No body is sent: the answer must not wait for it.
        r = c.read_response("POST", deadline=time.monotonic() + 3)
        self.assert_error(r, 413, code="request_too_large")
        self.assertTrue(c.wait_closed(2.0))
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_oversized_body_with_expect_gets_no_100_continue(self):
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers(Expect="100-continue", **{"Content-Length": "4096"}),
                             None, host="x"))
        r = c.read_response("POST", deadline=time.monotonic() + 3)
        self.assertEqual(r.interim, [], "100 Continue sent for a body that will be refused")
        self.assert_error(r, 413, code="request_too_large")
        self.assert_healthy()

    def test_body_at_the_limit_is_accepted(self):
        body = json.dumps(dict(CHAT_BODY, user="x" * 10)).encode()
        body = body[:-1] + b" " * (1024 - len(body)) + b"}"
        self.assertEqual(len(body), 1024)
        r = self.chat(body=body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.mock.last()["body_length"], 1024)

    def test_oversized_chunked_body(self):
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers(**{"Transfer-Encoding": "chunked"}), None, host="x"))
        piece = b'{"model":"gpt-4o-mini","pad":"' + b"p" * 300
        try:
            for _ in range(6):  # 6 * 330 bytes > 1024
                c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway may close while we are still sending
        r = c.read_response("POST", deadline=time.monotonic() + 3)
        self.assert_error(r, 413, code="request_too_large")
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_oversized_headers(self):
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers(**{"X-Big": "b" * 5000}), CHAT_BODY, host="x"))
        r = c.read_response("POST", deadline=time.monotonic() + 3)
        self.assert_error(r, 431, code="headers_too_large")
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_oversized_request_line(self):
        c = self.conn()
        c.send(build_request("GET", "/v1/models?q=" + "q" * 5000, self.headers(), None, host="x"))
        r = c.read_response("GET", deadline=time.monotonic() + 3)
        self.assert_error(r, 431, code="headers_too_large")
        self.assert_healthy()

    def test_too_many_headers(self):
        extra = [("X-H%d" % i, "v") for i in range(25)]
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions", self.headers() + extra, CHAT_BODY,
                             host="x"))
        r = c.read_response("POST", deadline=time.monotonic() + 3)
        self.assert_error(r, 431, code="headers_too_large")
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_headers_just_under_the_count_limit(self):
        # Host, 4 from self.headers(), 13 more, Connection, Content-Length: 20.
        extra = [("X-H%d" % i, "v") for i in range(13)]
        r = self.chat(headers=self.headers() + extra + [("Connection", "close")])
        self.assertEqual(r.status, 200, r)


class Timeouts(GatewayTestCase):
    gateway_args = ["--header-timeout-ms", "1000", "--body-timeout-ms", "700",
                    "--idle-timeout-ms", "600"]

    def test_slowloris_headers_are_cut_off_and_others_are_served(self):
        head = build_request("POST", "/v1/chat/completions", self.headers(), None, host="x")
        c = self.conn()
        result = {}

        def other_client():
            time.sleep(0.4)
            t = time.monotonic()
            r = self.chat()
            result["other"] = (r.status, time.monotonic() - t)

        th = threading.Thread(target=other_client)
        th.start()
        t0 = time.monotonic()
        closed_at = None
        got = b""
        c.sock.setblocking(False)
        try:
            for i in range(len(head)):
                try:
                    c.sock.send(head[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    closed_at = time.monotonic()
                    break
                end = time.monotonic() + 0.2
                while time.monotonic() < end:
                    try:
                        d = c.sock.recv(65536)
                    except BlockingIOError:
                        time.sleep(0.01)
                        continue
                    except ConnectionResetError:
                        closed_at = time.monotonic()
                        break
                    if not d:
                        closed_at = time.monotonic()
                        break
                    got += d
                if closed_at is not None or time.monotonic() - t0 > 4:
                    break
        finally:
            th.join()
        self.assertIsNotNone(closed_at, "slow client never cut off (got %r)" % got)
        self.assertLess(closed_at - t0, 2.0, "cut off only after %.2fs" % (closed_at - t0))
        self.assertGreater(closed_at - t0, 0.8, "cut off too early, %.2fs" % (closed_at - t0))
        if got:
            self.assertTrue(got.startswith(b"HTTP/1.1 408 "), got)
            self.assertIn(b'"request_timeout"', got)
        self.assertEqual(result["other"][0], 200)
        self.assertLess(result["other"][1], 0.5, "other client waited behind the slow one")
        self.assertEqual(len(self.mock.requests()), 1)  # only the other client's
        self.assert_healthy()

    def test_slow_body_times_out(self):
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers(**{"Content-Length": "200"}), None, host="x"))
        c.send(b'{"model":')
        t0 = time.monotonic()
        r = c.read_response("POST", deadline=time.monotonic() + 3)
        self.assert_error(r, 408, code="request_timeout")
        self.assertGreater(time.monotonic() - t0, 0.5)
        self.assertLess(time.monotonic() - t0, 1.5)
        self.assertTrue(c.wait_closed(2.0))
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_body_timeout_measures_silence_not_total_time(self):
        body = json.dumps(CHAT_BODY).encode()
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers(**{"Content-Length": str(len(body))}), None, host="x"))
        # 1.4 s in total, never silent for more than 0.35 s (limit 0.7 s)
        step = max(1, len(body) // 4)
        for i in range(0, len(body), step):
            time.sleep(0.35)
            c.send(body[i:i + step])
        r = c.read_response("POST", deadline=time.monotonic() + 3)
        self.assertEqual(r.status, 200, r)

    def test_silent_connection_is_closed(self):
        c = self.conn()
        t0 = time.monotonic()
        self.assertTrue(c.wait_closed(3.0), "a connection that never sends stays open")
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assert_healthy()

    def test_idle_keep_alive_connection_is_closed(self):
        c = self.conn()
        c.send(chat_request(self, "idle"))
        r = c.read_response("POST")
        self.assertEqual(r.status, 200, r)
        t0 = time.monotonic()
        self.assertTrue(c.wait_closed(3.0), "idle keep-alive connection never closed")
        self.assertGreater(time.monotonic() - t0, 0.4)
        self.assertLess(time.monotonic() - t0, 1.5)


if __name__ == "__main__":
    harness.main()
