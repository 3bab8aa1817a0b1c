"""
Streaming as the client experiences it: events are relayed as they come (no
buffering), and a SIGTERM lets running streams finish while refusing new
connections.
"""
import signal
import socket
import statistics
import time

import harness
from harness import CHAT_BODY, GatewayTestCase, build_request, stream_events, with_gateway_args

STREAM_BODY = dict(CHAT_BODY, stream=True)


def try_connect(port):
    """"refused", "closed" (accepted, closed unanswered), "answered" or "hung"."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except ConnectionRefusedError:
        return "refused"
    try:
        s.sendall(build_request("GET", "/health"))
        d = s.recv(100)
        return "answered" if d else "closed"
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    except socket.timeout:
        return "hung"
    finally:
        s.close()


class Relay(GatewayTestCase):

    def open_stream(self, *extra):
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions", self.headers() + list(extra),
                             STREAM_BODY, host="x"))
        r = c.read_head(deadline=time.monotonic() + 10)
        self.assertEqual(r.status, 200, r)
        return c, r

    def test_events_are_relayed_as_they_arrive(self):
        n = 200
        c, r = self.open_stream(("x-mock-chunks", str(n)), ("x-mock-chunk-delay-ms", "5"),
                                ("x-mock-timestamps", "1"))
        delays, sent, arrived = [], [], []
        done = False
        for ev in stream_events(c, r, deadline=time.monotonic() + 20):
            if ev.is_done():
                done = True
                continue
            j = ev.json()
            self.assertNotIn("error", j)
            s = j["x_mock_sent_us"] / 1e6
            sent.append(s)
            arrived.append(ev.t)
            delays.append(ev.t - s)
        self.assertTrue(done and r.complete)
        self.assertEqual(len(delays), 1 + n + 1)  # role, pieces, finish
        med = statistics.median(delays)
        worst = max(delays)
        self.assertLess(med, 0.005, "median relay delay %.1f ms" % (med * 1000))
        self.assertLess(worst, 0.25, "an event was held back %.1f ms" % (worst * 1000))
        # Spread over time like the upstream sent them, not one burst at the end.
        sent_span = sent[-1] - sent[0]
        arrival_span = arrived[-1] - arrived[0]
        self.assertGreater(sent_span, 0.8)
        self.assertGreater(arrival_span, 0.8 * sent_span,
                           "events arrived within %.0f ms though sent over %.0f ms"
                           % (arrival_span * 1000, sent_span * 1000))
        distinct = len(set(round(t, 3) for t in arrived))
        self.assertGreater(distinct, n // 4, "events arrived in %d bursts" % distinct)

    def test_first_event_is_not_held_back(self):
        # The first events must arrive long before a slow stream ends.
        c, r = self.open_stream(("x-mock-chunks", "10"), ("x-mock-chunk-delay-ms", "150"))
        t0 = time.monotonic()
        it = stream_events(c, r, deadline=time.monotonic() + 10)
        first = next(it)
        self.assertLess(time.monotonic() - t0, 0.3)
        self.assertEqual(first.json()["choices"][0]["delta"]["role"], "assistant")
        rest = list(it)
        self.assertTrue(rest[-1].is_done())
        self.assertGreater(time.monotonic() - t0, 1.2)

    def test_audio_bytes_are_relayed_without_buffering_the_whole_body(self):
        # Binary bodies are relayed as they come, chunked, and byte-exact.
        body = {"model": "tts-1", "voice": "alloy", "input": "x" * 200000}  # ~6.4 MB of audio
        c = self.conn()
        c.send(build_request("POST", "/v1/audio/speech", self.headers(), body, host="x"))
        r = c.read_response("POST", deadline=time.monotonic() + 20)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-type"), "audio/mpeg")
        self.assertTrue(r.chunked and r.complete)
        self.assertGreater(len(r.chunks), 1)
        direct = harness.request(self.mock.port, "POST", "/v1/audio/speech",
                                 [("Authorization", "Bearer x"), ("Content-Type", "application/json")],
                                 body)
        self.assertEqual(len(r.body), len(direct.body))
        self.assertTrue(r.body == direct.body, "audio bytes differ from the mock's")


class GracefulShutdown(GatewayTestCase):
    gateway_args = ["--shutdown-grace-ms", "10000"]

    def test_sigterm_lets_streams_finish_and_refuses_new_connections(self):
        idle = self.conn()
        idle.send(build_request("GET", "/health"))
        self.assertEqual(idle.read_response("GET").status, 200)
        n = 30
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers() + [("x-mock-chunks", str(n)),
                                               ("x-mock-chunk-delay-ms", "50")],
                             STREAM_BODY, host="x"))
        r = c.read_head(deadline=time.monotonic() + 5)
        self.assertEqual(r.status, 200, r)
        events = stream_events(c, r, deadline=time.monotonic() + 15)
        evs = [next(events)]
        t_term = time.monotonic()
        self.gw.signal(signal.SIGTERM)
        time.sleep(0.3)
        # New connections are refused while the stream goes on.
        self.assertIn(try_connect(self.gw.port), ("refused", "closed"),
                      "gateway served a new connection while draining")
        # The idle keep-alive connection is closed at once.
        self.assertTrue(idle.wait_closed(1.0), "idle connection kept open while draining")
        evs.extend(events)
        self.assertTrue(r.complete, "stream cut short by the shutdown")
        self.assertTrue(evs[-1].is_done(), evs[-3:])
        self.assertEqual(len(evs), 1 + n + 1 + 1)
        self.assertFalse(any(e.is_error() for e in evs))
        self.assertTrue(c.wait_closed(2.0), "connection kept open after the last response")
        rc = self.gw.wait(5.0)
        self.assertEqual(rc, 0, "gateway did not exit 0 after draining (rc %r); stderr:\n%s"
                         % (rc, self.gw.stderr()[-3000:]))
        self.assertLess(time.monotonic() - t_term, 5.0)

    @with_gateway_args("--shutdown-grace-ms", "500")
    def test_grace_period_bounds_the_drain(self):
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers() + [("x-mock-chunks", "200"),
                                               ("x-mock-chunk-delay-ms", "50")],
                             STREAM_BODY, host="x"))
        r = c.read_head(deadline=time.monotonic() + 5)
        events = stream_events(c, r, deadline=time.monotonic() + 15)
        next(events)
        t0 = time.monotonic()
        self.gw.signal(signal.SIGTERM)
        evs = []
        try:
            evs.extend(events)
        except (harness.Closed, ConnectionResetError):
            pass
        self.assertFalse(any(e.is_done() for e in evs), "a cut stream ended with [DONE]")
        rc = self.gw.wait(5.0)
        self.assertEqual(rc, 0, "gateway did not exit 0 (rc %r); stderr:\n%s"
                         % (rc, self.gw.stderr()[-3000:]))
        took = time.monotonic() - t0
        self.assertGreater(took, 0.4)
        self.assertLess(took, 2.5, "drain took %.2fs with a 0.5 s grace period" % took)

    def test_sigterm_on_an_idle_gateway_exits_promptly(self):
        r = self.chat()
        self.assertEqual(r.status, 200)
        t0 = time.monotonic()
        self.gw.signal(signal.SIGTERM)
        rc = self.gw.wait(5.0)
        self.assertEqual(rc, 0, "gateway did not exit 0 within 5 s of SIGTERM (rc %r); stderr:\n%s"
                         % (rc, self.gw.stderr()[-3000:]))
        self.assertLess(time.monotonic() - t0, 1.0)

    def test_sigint_also_drains_and_exits(self):
        r = self.chat()
        self.assertEqual(r.status, 200)
        self.gw.signal(signal.SIGINT)
        rc = self.gw.wait(5.0)
        self.assertEqual(rc, 0, "rc %r; stderr:\n%s" % (rc, self.gw.stderr()[-3000:]))


if __name__ == "__main__":
    harness.main()
