"""
Streams on passthrough paths: an SSE stream that ends without [DONE] (as the
Responses API's do) is complete when the provider ends it cleanly, and its
non-JSON events pass untouched; the same stream cut by a reset still ends
with an error event. The provider here is a small Python SSE server, since
the mock speaks the chat and completions formats.
"""
import socket
import threading

import harness
from harness import GatewayTestCase, request

EVENTS = (b"event: response.created\ndata: {\"type\":\"response.created\"}\n\n"
          b"event: response.output_text.delta\ndata: {\"delta\":\"Hi\"}\n\n"
          b": a comment line\n\n"
          b"event: response.completed\ndata: {\"type\":\"response.completed\"}\n\n")


class SseServer:
    """Answers every request with EVENTS, chunked; reset=True cuts it short."""

    def __init__(self, reset=False):
        self.reset = reset
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    def handle(self, c):
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return
            buf += d
        head, _, rest = buf.partition(b"\r\n\r\n")
        n = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        while len(rest) < n:
            rest += c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        body = EVENTS[:60] if self.reset else EVENTS
        c.sendall(b"%x\r\n%s\r\n" % (len(body), body))
        if self.reset:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.close()
            return
        c.sendall(b"0\r\n\r\n")
        c.close()

    def close(self):
        self.sock.close()


class PassthroughStream(GatewayTestCase):

    def post(self, server):
        h = [(k, v) for k, v in self.headers() if k != "x-sluice-custom-host"]
        h.append(("x-sluice-custom-host", "http://127.0.0.1:%d/v1" % server.port))
        return request(self.gw.port, "POST", "/v1/responses", h,
                       {"model": "gpt-4o-mini", "input": "Hi", "stream": True})

    def test_stream_without_done_is_complete(self):
        srv = SseServer()
        try:
            r = self.post(srv)
        finally:
            srv.close()
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.complete, r)
        ev = r.events()
        self.assertEqual([e.event for e in ev],
                         ["response.created", "response.output_text.delta", "response.completed"])
        self.assertFalse(any(e.is_error() for e in ev), r)
        self.assert_healthy()

    def test_reset_stream_still_ends_with_an_error_event(self):
        srv = SseServer(reset=True)
        try:
            r = self.post(srv)
        finally:
            srv.close()
        self.assertEqual(r.status, 200, r)
        ev = r.events()
        self.assertTrue(ev and ev[-1].is_error(), r)
        self.assertEqual(ev[-1].json()["error"]["code"], "upstream_stream_error")
        self.assert_healthy()


if __name__ == "__main__":
    harness.main()
