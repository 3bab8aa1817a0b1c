"""
What the gateway tells about itself: trace ids, the overhead header,
/health and the Prometheus /metrics.
"""
import re
import time

import harness
from harness import (CHAT_BODY, GatewayTestCase, build_request, metric, parse_metrics, request,
                     stream_events)

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class TraceAndOverhead(GatewayTestCase):

    def test_trace_id_generated_when_absent(self):
        ids = set()
        for _ in range(5):
            r = self.chat()
            self.assertEqual(r.status, 200, r)
            t = r.header("x-sluice-trace-id")
            self.assertRegex(t or "", UUID4)
            ids.add(t)
        self.assertEqual(len(ids), 5, "trace ids repeat")

    def test_trace_id_echoed_everywhere(self):
        # Success, stream, gateway error and upstream error all carry it.
        h = self.headers() + [("x-sluice-trace-id", "trace-abc_123.4:5")]
        r = self.chat(headers=h)
        self.assertEqual(r.header("x-sluice-trace-id"), "trace-abc_123.4:5")
        r = self.chat(headers=h, body=dict(CHAT_BODY, stream=True))
        self.assertEqual(r.header("x-sluice-trace-id"), "trace-abc_123.4:5")
        self.assertEqual(r.events()[-1].data, "[DONE]")
        r = self.chat(headers=h, body=b"{bad json")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.header("x-sluice-trace-id"), "trace-abc_123.4:5")
        r = self.chat(headers=h + [("x-mock-status", "503")])
        self.assertEqual(r.status, 503)
        self.assertEqual(r.header("x-sluice-trace-id"), "trace-abc_123.4:5")
        # ... and it is the gateway's, not forwarded upstream
        for rec in self.mock.requests():
            self.assertNotIn("x-sluice-trace-id", {k.lower() for k, _ in rec["headers"]})

    def test_overlong_trace_id_is_replaced(self):
        r = self.chat(headers=self.headers() + [("x-sluice-trace-id", "a" * 129)])
        self.assertEqual(r.status, 200)
        self.assertRegex(r.header("x-sluice-trace-id") or "", UUID4)
        r = self.chat(headers=self.headers() + [("x-sluice-trace-id", "a" * 128)])
        self.assertEqual(r.header("x-sluice-trace-id"), "a" * 128)

    def test_overhead_excludes_the_upstream_wait(self):
        t0 = time.monotonic()
        r = self.chat(headers=self.headers() + [("x-mock-delay-ms", "400")])
        total = time.monotonic() - t0
        self.assertEqual(r.status, 200, r)
        self.assertGreater(total, 0.39)
        ov = int(r.header("x-sluice-overhead-us"))
        self.assertLess(ov, 100000, "overhead %d us includes the 400 ms upstream wait" % ov)
        self.assertEqual(r.header("x-sluice-provider"), "openai")


    def test_every_response_carries_the_overhead(self):
        """Proxied or not, answered by the pipeline or by the HTTP layer."""
        responses = [
            request(self.gw.port, "GET", "/health"),
            request(self.gw.port, "GET", "/metrics"),
            request(self.gw.port, "POST", "/health"),
            request(self.gw.port, "GET", "/nowhere"),
            self.chat(),
            self.chat(headers=[h for h in self.headers() if h[0] != "x-sluice-provider"]),
        ]
        with self.conn() as c:
            c.send(b"NOT HTTP\r\n\r\n")
            responses.append(c.read_head())
        for r in responses:
            v = r.header("x-sluice-overhead-us")
            self.assertIsNotNone(v, r)
            self.assertTrue(v.isdigit(), r)
            self.assertLess(int(v), 1000000, r)
        self.assert_healthy()


class Health(GatewayTestCase):

    def test_health(self):
        r = harness.request(self.gw.port, "GET", "/health")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(r.json(), {"status": "ok"})
        r = harness.request(self.gw.port, "POST", "/health", body=b"{}")
        self.assert_error(r, 405, code="method_not_allowed")


class Metrics(GatewayTestCase):

    def test_metrics_format(self):
        r = harness.request(self.gw.port, "GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("content-type", "").startswith("text/plain"), r)
        self.assertIn("version=0.0.4", r.header("content-type"))
        text = r.text()
        for name, kind in (("sluice_requests_total", "counter"),
                           ("sluice_request_duration_seconds", "histogram"),
                           ("sluice_overhead_seconds", "histogram"),
                           ("sluice_upstream_errors_total", "counter"),
                           ("sluice_open_connections", "gauge"),
                           ("sluice_requests_in_flight", "gauge")):
            self.assertIn("# TYPE %s %s\n" % (name, kind), text)
            self.assertIn("# HELP %s " % name, text)
        parse_metrics(text)  # every sample line is well formed

    def test_requests_are_counted_with_labels(self):
        self.assertEqual(self.chat().status, 200)
        self.assertEqual(self.chat(body=dict(CHAT_BODY, stream=True)).status, 200)
        self.assertEqual(self.chat(body=dict(CHAT_BODY, model="gpt-4.1")).status, 200)
        self.assertEqual(self.chat(headers=self.headers() + [("x-mock-status", "429")]).status, 429)
        r = self.chat(body={"model": "text-embedding-3-small", "input": "x"}, path="/v1/embeddings")
        self.assertEqual(r.status, 200)
        want = {("gpt-4o-mini", "200"): 2, ("gpt-4.1", "200"): 1, ("gpt-4o-mini", "429"): 1,
                ("text-embedding-3-small", "200"): 1}

        def counted(m):
            return all(metric(m, "sluice_requests_total", provider="openai", model=k[0],
                              status=k[1]) == v for k, v in want.items())
        m = self.wait_metric(counted)
        for (model, status), v in want.items():
            self.assertEqual(metric(m, "sluice_requests_total", provider="openai", model=model,
                                    status=status), v, (model, status))
        n = metric(m, "sluice_request_duration_seconds_count")
        self.assertEqual(n, 5)
        self.assertEqual(metric(m, "sluice_request_duration_seconds_bucket", le="+Inf"), n)
        self.assertEqual(metric(m, "sluice_overhead_seconds_count"), n)
        self.assertEqual(metric(m, "sluice_overhead_seconds_bucket", le="+Inf"), n)
        self.assertGreater(metric(m, "sluice_request_duration_seconds_sum"), 0)
        # Buckets are cumulative.
        for family in ("sluice_request_duration_seconds_bucket", "sluice_overhead_seconds_bucket"):
            vals = sorted(((float(dict(k[1])["le"]), v) for k, v in m.items() if k[0] == family))
            counts = [v for _, v in vals]
            self.assertEqual(counts, sorted(counts), family)

    def test_stream_is_counted_when_it_ends(self):
        c = self.conn()
        c.send(build_request("POST", "/v1/chat/completions",
                             self.headers() + [("x-mock-chunks", "10"), ("x-mock-chunk-delay-ms", "60")],
                             dict(CHAT_BODY, stream=True), host="x"))
        r = c.read_head()
        ev = stream_events(c, r)
        next(ev)
        m = self.metrics()
        self.assertIsNone(metric(m, "sluice_requests_total", provider="openai", model="gpt-4o-mini",
                                 status="200"))
        idle = metric(m, "sluice_requests_in_flight")
        list(ev)
        m = self.wait_metric(lambda m: metric(m, "sluice_requests_total", provider="openai",
                                              model="gpt-4o-mini", status="200") == 1)
        self.assertEqual(metric(m, "sluice_requests_total", provider="openai", model="gpt-4o-mini",
                                status="200"), 1)
        self.assertEqual(metric(m, "sluice_requests_in_flight"), idle - 1)
        dur = metric(m, "sluice_request_duration_seconds_sum")
        self.assertGreater(dur, 0.5, "stream duration not measured to its end")

    def test_gateway_errors_are_counted(self):
        r = self.chat(body=b"{nope")
        self.assertEqual(r.status, 400)
        h = [(k, v) for k, v in self.headers() if k != "x-sluice-custom-host"]
        r = self.chat(headers=h + [("x-sluice-custom-host",
                                    "http://127.0.0.1:%d/v1" % harness.free_closed_port())])
        self.assertEqual(r.status, 502)
        m = self.wait_metric(lambda m: metric(m, "sluice_requests_total", provider="openai",
                                              model="gpt-4o-mini", status="502") == 1)
        self.assertEqual(metric(m, "sluice_requests_total", provider="openai", model="gpt-4o-mini",
                                status="502"), 1)
        self.assertEqual(metric(m, "sluice_upstream_errors_total", provider="openai", kind="connect"), 1)
        total_400 = sum(v for k, v in m.items()
                        if k[0] == "sluice_requests_total" and dict(k[1])["status"] == "400")
        self.assertEqual(total_400, 1)


if __name__ == "__main__":
    harness.main()
