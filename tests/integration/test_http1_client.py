"""
Plain http:// upstreams: the gateway's upstream client against servers that
do what real HTTP/1.1 servers do at the edges. Scripted upstreams here are
raw sockets, so each test controls every byte and every close.

By default plain http:// goes through the native HTTP/1.1 engine; ctest
runs this module a second time with "--upstream-http1 libcurl"
(integration.http1_client.libcurl), and both must behave the same.
"""
import gzip
import json
import re
import socket
import threading
import time
import zlib

import harness
from harness import GatewayTestCase, request

OK_BODY = json.dumps({"ok": True}).encode()


def read_request(sock, buf=b""):
    """One request (head and Content-Length body) from sock, or None at EOF."""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            return None, buf
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip())
    while len(rest) < n:
        d = sock.recv(65536)
        if not d:
            return None, b""
        rest += d
    return head.decode("latin-1"), rest[n:]


def response(body=OK_BODY, status="200 OK", headers=(), close=False):
    h = ["HTTP/1.1 " + status, "Content-Type: application/json",
         "Content-Length: %d" % len(body)] + list(headers)
    if close:
        h.append("Connection: close")
    return ("\r\n".join(h) + "\r\n\r\n").encode("latin-1") + body


class RawUpstream:
    """Accepts connections and runs handle(sock, index) for each in a thread."""

    def __init__(self, handle):
        self.handle = handle
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.connections = 0
        self.requests = []
        self.lock = threading.Lock()
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                i = self.connections
                self.connections += 1
                self.socks.append(s)
            threading.Thread(target=self._run, args=(s, i), daemon=True).start()

    def _run(self, s, i):
        try:
            self.handle(self, s, i)
        except OSError:
            pass
        finally:
            s.close()

    def close(self):
        self.ls.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def base(self, host="127.0.0.1"):
        return "http://%s:%d/v1" % (host, self.port)


class Http1Upstream(GatewayTestCase):
    gateway_args = ("--workers", "1")

    def upstream(self, handle):
        up = RawUpstream(handle)
        self.addCleanup(up.close)
        return up

    def via(self, up, host="127.0.0.1", **extra):
        h = [(k, v) for k, v in self.headers(**extra) if k != "x-sluice-custom-host"]
        h.append(("x-sluice-custom-host", up.base(host)))
        return h

    # -- connection reuse at its edges -----------------------------------------

    def test_pooled_connection_closed_by_the_server_is_retried_on_a_fresh_one(self):
        # Each connection answers one request and closes when the next one
        # arrives: the race between a server's keep-alive timeout and a
        # reused connection. The client must never see it.
        def handle(up, s, i):
            head, rest = read_request(s)
            if head is None:
                return
            up.requests.append(i)
            s.sendall(response())
            read_request(s, rest)  # the next request: dropped unanswered

        up = self.upstream(handle)
        for _ in range(4):
            r = self.chat(headers=self.via(up))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), {"ok": True})
        self.assertEqual(up.requests, [0, 1, 2, 3])
        self.assert_healthy()

    def test_fresh_connection_closed_without_an_answer_is_a_502(self):
        def handle(up, s, i):
            read_request(s)

        up = self.upstream(handle)
        r = self.chat(headers=self.via(up))
        self.assert_error(r, 502, code="upstream_unreachable")
        self.assert_healthy()

    def test_idle_connection_the_server_closed_is_not_reused(self):
        def handle(up, s, i):
            head, _ = read_request(s)
            if head is None:
                return
            up.requests.append(i)
            s.sendall(response())
            time.sleep(0.1)
            s.shutdown(socket.SHUT_RDWR)

        up = self.upstream(handle)
        for _ in range(3):
            r = self.chat(headers=self.via(up))
            self.assertEqual(r.status, 200, r)
            time.sleep(0.3)
        self.assertEqual(up.requests, [0, 1, 2])

    def test_keep_alive_connection_is_reused(self):
        def handle(up, s, i):
            rest = b""
            while True:
                head, rest = read_request(s, rest)
                if head is None:
                    return
                up.requests.append(i)
                s.sendall(response())

        up = self.upstream(handle)
        for _ in range(5):
            r = self.chat(headers=self.via(up))
            self.assertEqual(r.status, 200, r)
        self.assertEqual(up.connections, 1)
        self.assertEqual(up.requests, [0] * 5)

    def test_answer_before_the_body_was_sent_whole(self):
        # The server answers 413 as soon as it has the head, then (as RFC
        # 9112 asks of a server that keeps the connection) reads and drops
        # the rest of the 20 MB body before the next request. Whether the
        # gateway reuses that connection or not, every request gets its own
        # answer and no body bytes are ever taken for a request.
        def handle(up, s, i):
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                up.requests.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
                n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                s.sendall(response(b'{"error":{"message":"too big"}}', "413 Payload Too Large"))
                while len(buf) < n:
                    d = s.recv(1 << 20)
                    if not d:
                        return
                    buf += d
                buf = buf[n:]

        up = self.upstream(handle)
        big = dict(harness.CHAT_BODY, padding="x" * (20 << 20))
        for body in (big, harness.CHAT_BODY, big, harness.CHAT_BODY):
            r = self.chat(headers=self.via(up), body=body, timeout=60)
            self.assertEqual(r.status, 413, r)
            self.assertEqual(r.json(), {"error": {"message": "too big"}})
        self.assertEqual(up.requests, ["POST /v1/chat/completions HTTP/1.1"] * 4)

    # -- name resolution --------------------------------------------------------

    def test_a_name_is_resolved_and_every_address_tried(self):
        # "localhost" may resolve to ::1 first; the upstream listens on
        # 127.0.0.1 only.
        r = self.chat(headers=self.via_mock("localhost"))
        self.assertEqual(r.status, 200, r)

    def via_mock(self, host):
        h = [(k, v) for k, v in self.headers() if k != "x-sluice-custom-host"]
        h.append(("x-sluice-custom-host", "http://%s:%d/v1" % (host, self.mock.port)))
        return h

    def test_a_name_that_does_not_resolve_is_a_502(self):
        r = self.chat(headers=self.via_mock("no-such-host.invalid"))
        self.assert_error(r, 502, code="upstream_unreachable")

    @harness.with_gateway_args("--no-loopback")
    def test_guard_judges_resolved_addresses(self):
        r = self.chat(headers=self.via_mock("localhost"))
        self.assert_error(r, 400, code="forbidden_custom_host")
        self.assertEqual(self.mock.requests(), [])

    # -- responses --------------------------------------------------------------

    def serve_once(self, raw, close=True):
        def handle(up, s, i):
            head, _ = read_request(s)
            if head is None:
                return
            up.requests.append(head)
            if callable(raw):
                raw(s)
            else:
                s.sendall(raw)
            if close:
                s.shutdown(socket.SHUT_WR)
                while s.recv(65536):
                    pass
        return self.upstream(handle)

    def test_gzip_and_deflate_bodies_are_decoded(self):
        raw_deflate = zlib.compressobj(wbits=-15)
        encodings = {
            "gzip": gzip.compress(OK_BODY),
            "deflate": zlib.compress(OK_BODY),
            "Deflate": raw_deflate.compress(OK_BODY) + raw_deflate.flush(),
        }
        for name, data in encodings.items():
            up = self.serve_once(response(data, headers=["Content-Encoding: " + name]))
            r = self.chat(headers=self.via(up))
            self.assertEqual(r.status, 200, (name, r))
            self.assertIsNone(r.header("content-encoding"), r)
            self.assertEqual(r.json(), {"ok": True}, name)
            self.assertIn("gzip", up.requests[0].lower())  # asked for it

    def test_a_coding_it_cannot_decode_is_a_502(self):
        up = self.serve_once(response(b"\x00\x01garbage", headers=["Content-Encoding: x-snappy"]))
        r = self.chat(headers=self.via(up))
        self.assertEqual(r.status, 502, r)
        self.assert_healthy()

    def test_interim_responses_are_skipped(self):
        raw = (b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
               + response(headers=["X-Upstream: final"]))
        up = self.serve_once(raw)
        r = self.chat(headers=self.via(up))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"ok": True})
        self.assertEqual(r.header("x-upstream"), "final")
        self.assertIsNone(r.header("link"), r)

    def test_body_delimited_by_the_connection_close(self):
        body = json.dumps({"ok": True, "pad": "y" * 200000}).encode()
        raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + body
        up = self.serve_once(raw)
        r = self.chat(headers=self.via(up))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, body)

    def test_head_arriving_a_byte_at_a_time(self):
        raw = response(headers=["X-Long: " + "v" * 3000, "X-Folded-Name-Is-Long: yes"])

        def dribble(s):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(raw) - len(OK_BODY)):
                s.send(raw[i:i + 1])
                if i % 64 == 0:
                    time.sleep(0.001)
            s.sendall(OK_BODY)

        up = self.serve_once(dribble)
        r = self.chat(headers=self.via(up))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-long"), "v" * 3000)
        self.assertEqual(r.header("x-folded-name-is-long"), "yes")
        self.assertEqual(r.json(), {"ok": True})

    def test_chunked_body_with_trailers(self):
        raw = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
               b"5\r\n{\"ok\"\r\n6\r\n: true\r\n1\r\n}\r\n0\r\nX-Checksum: abc\r\n\r\n")
        up = self.serve_once(raw)
        r = self.chat(headers=self.via(up))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"ok": True})
        self.assertIsNone(r.header("x-checksum"), r)

    def test_too_many_response_headers_is_a_502(self):
        up = self.serve_once(response(headers=["X-H%d: v" % i for i in range(2000)]))
        r = self.chat(headers=self.via(up))
        self.assertEqual(r.status, 502, r)
        self.assert_healthy()

    def test_garbage_instead_of_a_response_is_a_502(self):
        up = self.serve_once(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        r = self.chat(headers=self.via(up))
        self.assertEqual(r.status, 502, r)
        self.assert_healthy()

    def test_truncated_body_is_an_error_not_a_short_answer(self):
        up = self.serve_once(response(OK_BODY + b" " * 100)[:-50])
        r = self.chat(headers=self.via(up))
        self.assertEqual(r.status, 502, r)
        self.assert_healthy()

    def test_request_head_is_well_formed(self):
        up = self.serve_once(response())
        r = self.chat(headers=self.via(up, x_custom="kept"), path="/v1/chat/completions?a=1&b=2")
        self.assertEqual(r.status, 200, r)
        lines = up.requests[0].split("\r\n")
        self.assertEqual(lines[0], "POST /v1/chat/completions?a=1&b=2 HTTP/1.1")
        names = [ln.split(":", 1)[0].lower() for ln in lines[1:]]
        self.assertEqual(names.count("host"), 1, lines)
        self.assertEqual(names.count("content-length"), 1, lines)
        self.assertIn("Host: 127.0.0.1:%d" % up.port, lines)
        self.assertIn("x-custom: kept", [ln.lower() for ln in lines])
        self.assertIn("authorization: bearer sk-test", [ln.lower() for ln in lines])
        self.assertNotIn("x-sluice-provider", names)

    def test_get_has_no_body_and_no_length(self):
        up = self.serve_once(response(b'{"object":"list","data":[]}'))
        h = [(k, v) for k, v in self.via(up) if k.lower() != "content-type"]
        r = request(self.gw.port, "GET", "/v1/models", h)
        self.assertEqual(r.status, 200, r)
        lines = up.requests[0].split("\r\n")
        self.assertEqual(lines[0], "GET /v1/models HTTP/1.1")
        self.assertNotIn("content-length", [ln.split(":", 1)[0].lower() for ln in lines])


if __name__ == "__main__":
    harness.main()
