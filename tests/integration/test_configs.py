"""
Routing configs (x-sluice-config, Portkey's schema): fallback, retries,
load balancing, conditional routing, request_timeout, override_params, and
the response headers that say what happened. Failing targets are small
scripted upstreams that always answer one status; answering ones are mocks.
"""
import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import harness
from harness import GatewayTestCase, Mock, free_closed_port, request


class StatusUpstream:
    """Answers every request with one OpenAI-style error status (and counts them)."""

    def __init__(self, status, headers=(), delay=0.0, reset=False):
        self.status, self.headers, self.delay, self.reset = status, list(headers), delay, reset
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.count = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                n = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        n = int(line.split(b":")[1])
                while len(buf) < n:
                    buf += s.recv(65536)
                buf = buf[n:]
                self.count += 1
                time.sleep(self.delay)
                if self.reset:  # drop the connection with a RST, no answer
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                body = json.dumps({"error": {"message": "scripted %d" % self.status,
                                             "type": "test", "param": None, "code": None}}).encode()
                h = ["HTTP/1.1 %d X" % self.status, "Content-Type: application/json",
                     "Content-Length: %d" % len(body)] + self.headers
                s.sendall(("\r\n".join(h) + "\r\n\r\n").encode() + body)
        except OSError:
            pass
        finally:
            s.close()

    def close(self):
        self.ls.close()

    @property
    def base(self):
        return "http://127.0.0.1:%d/v1" % self.port


class Configs(GatewayTestCase):
    gateway_args = ("--workers", "1")

    def setUp(self):
        super().setUp()
        self.mock2 = Mock().start()
        self.addCleanup(self.mock2.stop)

    def failing(self, status, **kw):
        up = StatusUpstream(status, **kw)
        self.addCleanup(up.close)
        return up

    def target(self, base, **extra):
        t = {"provider": "openai", "api_key": "sk-cfg", "custom_host": base}
        t.update(extra)
        return t

    def call(self, config, body=None, headers=(), path="/v1/chat/completions"):
        h = [("Content-Type", "application/json"), ("x-sluice-config", json.dumps(config))]
        h += list(headers)
        return request(self.gw.port, "POST", path, h, body or harness.CHAT_BODY)

    def test_fallback_on_a_listed_status(self):
        bad = self.failing(429)
        cfg = {"strategy": {"mode": "fallback", "on_status_codes": [429, 500]},
               "targets": [self.target(bad.base), self.target(self.mock.base + "/v1")]}
        r = self.call(cfg)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-sluice-target"), "config.targets[1]")
        self.assertEqual(r.header("x-sluice-fallback"), "config.targets[0]=429")
        self.assertEqual(r.header("x-portkey-last-used-option-index"), "config.targets[1]")
        self.assertEqual(r.header("x-sluice-retries"), "0")
        self.assertEqual(r.header("x-portkey-trace-id"), r.header("x-sluice-trace-id"))
        self.assertEqual(bad.count, 1)
        up = self.mock.last()
        self.assertEqual({k.lower(): v for k, v in up["headers"]}["authorization"], "Bearer sk-cfg")

    def test_no_fallback_on_an_unlisted_status(self):
        bad = self.failing(400)
        cfg = {"strategy": {"mode": "fallback", "on_status_codes": [429, 500]},
               "targets": [self.target(bad.base), self.target(self.mock.base + "/v1")]}
        r = self.call(cfg)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.mock.requests(), [])
        self.assertEqual(r.header("x-sluice-target"), "config.targets[0]")

    def test_fallback_without_codes_on_any_error_and_on_network_failure(self):
        closed = "http://127.0.0.1:%d/v1" % free_closed_port()
        bad = self.failing(503)
        cfg = {"strategy": {"mode": "fallback"},
               "targets": [self.target(closed), self.target(bad.base),
                           self.target(self.mock.base + "/v1")]}
        r = self.call(cfg)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-sluice-target"), "config.targets[2]")
        self.assertEqual(r.header("x-sluice-fallback"),
                         "config.targets[0]=502,config.targets[1]=503")

    def test_fallback_on_a_connection_reset(self):
        bad = self.failing(200, reset=True)
        cfg = {"strategy": {"mode": "fallback", "on_status_codes": [429]},
               "targets": [self.target(bad.base), self.target(self.mock.base + "/v1")]}
        r = self.call(cfg)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-sluice-fallback"), "config.targets[0]=502")

    def test_all_targets_failing_answers_the_last_error(self):
        a, b = self.failing(500), self.failing(503)
        cfg = {"strategy": {"mode": "fallback"}, "targets": [self.target(a.base), self.target(b.base)]}
        r = self.call(cfg)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"]["message"], "scripted 503")

    def test_retries_then_fallback(self):
        bad = self.failing(500)
        cfg = {"retry": {"attempts": 2},
               "strategy": {"mode": "fallback"},
               "targets": [self.target(bad.base), self.target(self.mock.base + "/v1")]}
        t0 = time.monotonic()
        r = self.call(cfg)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(bad.count, 3)  # the first try and two retries
        self.assertEqual(r.header("x-sluice-retries"), "2")
        self.assertEqual(r.header("x-portkey-retry-attempt-count"), "2")
        self.assertLess(time.monotonic() - t0, 5)

    def test_retry_honours_retry_after_when_asked(self):
        bad = self.failing(429, headers=["Retry-After: 1"])
        cfg = {"retry": {"attempts": 1, "use_retry_after_headers": True},
               "custom_host": bad.base, "provider": "openai", "api_key": "k"}
        t0 = time.monotonic()
        r = self.call(cfg)
        took = time.monotonic() - t0
        self.assertEqual(r.status, 429, r)
        self.assertEqual(bad.count, 2)
        self.assertGreaterEqual(took, 0.95)

    def test_client_gone_during_backoff_cancels_the_retry(self):
        bad = self.failing(429, headers=["Retry-After: 2"])
        cfg = {"retry": {"attempts": 1, "use_retry_after_header": True},
               "custom_host": bad.base, "provider": "openai", "api_key": "k"}
        c = self.conn()
        body = json.dumps(harness.CHAT_BODY).encode()
        c.send(harness.build_request("POST", "/v1/chat/completions",
                                     [("Content-Type", "application/json"),
                                      ("x-sluice-config", json.dumps(cfg))], body))
        time.sleep(0.4)
        c.close()
        time.sleep(2.2)
        self.assertEqual(bad.count, 1)  # the retry was never sent
        self.assert_healthy()

    def test_no_retry_on_a_status_not_listed(self):
        bad = self.failing(401)
        cfg = {"retry": {"attempts": 3}, "provider": "openai", "api_key": "k",
               "custom_host": bad.base}
        r = self.call(cfg)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(bad.count, 1)

    def test_loadbalance_split_by_weight(self):
        cfg = {"strategy": {"mode": "loadbalance"},
               "targets": [self.target(self.mock.base + "/v1", weight=0.75),
                           self.target(self.mock2.base + "/v1", weight=0.25),
                           self.target("http://127.0.0.1:9/v1", weight=0)]}
        n = 1000
        for _ in range(n):
            r = self.call(cfg)
            self.assertEqual(r.status, 200, r)
        a, b = len(self.mock.requests()), len(self.mock2.requests())
        self.assertEqual(a + b, n)
        self.assertLess(abs(a / n - 0.75), 0.05, (a, b))

    def test_least_latency_prefers_the_faster_target(self):
        slow = self.failing(200, delay=0.05)
        cfg = {"strategy": {"mode": "loadbalance", "policy": "least_latency"},
               "targets": [self.target(slow.base), self.target(self.mock.base + "/v1")]}
        for _ in range(12):
            r = self.call(cfg)
            self.assertEqual(r.status, 200, r)
        # Each is tried once to learn its latency; then the fast one gets them all.
        self.assertEqual(slow.count, 1)
        self.assertEqual(len(self.mock.requests()), 11)

    def test_conditional_on_metadata_and_params(self):
        cfg = {"strategy": {"mode": "conditional", "conditions": [
                   {"query": {"metadata.plan": {"$eq": "paid"}}, "then": "paid"},
                   {"query": {"params.model": {"$regex": "^mini"}}, "then": "free"}],
                   "default": "free"},
               "targets": [dict(self.target(self.mock.base + "/v1"), name="paid"),
                           dict(self.target(self.mock2.base + "/v1"), name="free")]}
        r = self.call(cfg, headers=[("x-sluice-metadata", json.dumps({"plan": "paid"}))])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-sluice-target"), "config.targets[0]")
        r = self.call(cfg, headers=[("x-sluice-metadata", json.dumps({"plan": "free"}))])
        self.assertEqual(r.header("x-sluice-target"), "config.targets[1]")
        self.assertEqual(len(self.mock.requests()), 1)
        self.assertEqual(len(self.mock2.requests()), 1)

    def test_nested_fallback_inside_loadbalance(self):
        bad = self.failing(502)
        cfg = {"strategy": {"mode": "loadbalance"},
               "targets": [{"strategy": {"mode": "fallback"}, "weight": 1,
                            "targets": [self.target(bad.base),
                                        self.target(self.mock.base + "/v1")]}]}
        r = self.call(cfg)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-sluice-target"), "config.targets[0].targets[1]")

    def test_request_timeout_is_408_and_can_fall_back(self):
        slow = self.failing(200, delay=1.0)
        cfg = {"request_timeout": 200, "provider": "openai", "api_key": "k",
               "custom_host": slow.base}
        r = self.call(cfg)
        self.assert_error(r, 408, code="request_timeout_exceeded")
        cfg = {"strategy": {"mode": "fallback", "on_status_codes": [408]},
               "targets": [self.target(slow.base, request_timeout=200),
                           self.target(self.mock.base + "/v1")]}
        r = self.call(cfg)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-sluice-fallback"), "config.targets[0]=408")

    def test_override_params_change_the_request(self):
        cfg = {"override_params": {"model": "gpt-4o", "temperature": 0.1},
               "strategy": {"mode": "fallback"},
               "targets": [self.target(self.mock.base + "/v1",
                                       override_params={"max_tokens": 7})]}
        r = self.call(cfg)
        self.assertEqual(r.status, 200, r)
        sent = json.loads(self.mock.last()["body"])
        self.assertEqual(sent["model"], "gpt-4o")
        self.assertEqual(sent["temperature"], 0.1)
        self.assertEqual(sent["max_tokens"], 7)
        self.assertEqual(sent["messages"], harness.CHAT_BODY["messages"])

    def test_many_distinct_configs_each_route_by_their_own(self):
        # More configs than a worker keeps parsed, interleaved with repeats.
        for i in range(80):
            k = i % 45
            cfg = {"override_params": {"max_tokens": k + 1},
                   "provider": "openai", "api_key": "k", "custom_host": self.mock.base + "/v1"}
            r = self.call(cfg)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(json.loads(self.mock.last()["body"])["max_tokens"], k + 1)

    def test_stream_falls_back_before_the_first_byte(self):
        bad = self.failing(429)
        cfg = {"strategy": {"mode": "fallback"},
               "targets": [self.target(bad.base), self.target(self.mock.base + "/v1")]}
        r = self.call(cfg, body=dict(harness.CHAT_BODY, stream=True))
        self.assertEqual(r.status, 200, r)
        evs = r.events()
        self.assertTrue(evs[-1].is_done(), r)
        self.assertEqual(r.header("x-sluice-target"), "config.targets[1]")

    def test_provider_from_the_header_when_the_config_names_none(self):
        cfg = {"retry": {"attempts": 1}, "custom_host": self.mock.base + "/v1"}
        r = self.call(cfg, headers=[("x-sluice-provider", "openai"),
                                    ("Authorization", "Bearer sk-h")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-sluice-target"), "config")

    def test_provider_options_in_targets(self):
        cfg = {"strategy": {"mode": "fallback"}, "targets": [
            {"provider": "bedrock", "custom_host": self.mock.base,
             "aws_access_key_id": "AKIDCONFIG", "aws_secret_access_key": "secret-in-config",
             "aws_region": "eu-west-1"}]}
        r = self.call(dict(cfg), body=dict(harness.CHAT_BODY,
                                           model="anthropic.claude-3-haiku-20240307-v1:0"))
        self.assertEqual(r.status, 200, r)
        auth = {k.lower(): v for k, v in self.mock.last()["headers"]}["authorization"]
        self.assertIn("Credential=AKIDCONFIG/", auth)
        self.assertIn("/eu-west-1/bedrock/aws4_request", auth)
        self.assertNotIn("secret-in-config", json.dumps(self.mock.last()))
        cfg = {"provider": "azure-openai", "api_key": "az-key", "deployment_id": "dep-9",
               "api_version": "2024-06-01", "custom_host": self.mock.base + "/openai"}
        r = self.call(cfg)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.mock.last()["path"],
                         "/openai/deployments/dep-9/chat/completions?api-version=2024-06-01")

    def test_circuit_breaker_opens_skips_and_probes(self):
        bad = self.failing(500)
        cfg = {"circuit_breaker": {"failures": 2, "cooldown_ms": 600},
               "strategy": {"mode": "fallback"},
               "targets": [self.target(bad.base), self.target(self.mock.base + "/v1")]}
        for _ in range(2):
            r = self.call(cfg)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("x-sluice-fallback"), "config.targets[0]=500")
        self.assertEqual(bad.count, 2)
        # Open: the failing target is not even tried.
        r = self.call(cfg)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-sluice-fallback"), "config.targets[0]=open")
        self.assertEqual(bad.count, 2)
        m = self.metrics()
        states = {dict(k[1])["target"]: v for k, v in m.items()
                  if k[0] == "sluice_circuit_breaker_state"}
        self.assertIn(1.0, states.values(), states)
        self.assertTrue(any(t.startswith("openai %s" % bad.base) for t in states), states)
        # After the cool-down one probe goes through; it fails, so open again.
        time.sleep(0.7)
        r = self.call(cfg)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(bad.count, 3)
        r = self.call(cfg)
        self.assertEqual(bad.count, 3)
        self.assertEqual(r.header("x-sluice-fallback"), "config.targets[0]=open")

    def test_circuit_breaker_closes_after_a_good_probe(self):
        flaky = self.failing(500)
        cfg = {"circuit_breaker": {"failures": 1, "cooldown_ms": 300},
               "strategy": {"mode": "fallback"},
               "targets": [self.target(flaky.base), self.target(self.mock.base + "/v1")]}
        self.assertEqual(self.call(cfg).header("x-sluice-fallback"), "config.targets[0]=500")
        self.assertEqual(self.call(cfg).header("x-sluice-fallback"), "config.targets[0]=open")
        flaky.status = 200  # the provider recovers
        time.sleep(0.4)
        r = self.call(cfg)  # the probe
        self.assertEqual(r.header("x-sluice-target"), "config.targets[0]")
        for _ in range(3):  # closed: it takes the traffic again
            r = self.call(cfg)
            self.assertEqual(r.header("x-sluice-target"), "config.targets[0]")
            self.assertIsNone(r.header("x-sluice-fallback"))
        self.assertEqual(flaky.count, 5)

    def test_every_breaker_open_is_a_503(self):
        bad = self.failing(502)
        cfg = {"circuit_breaker": {"failures": 1, "cooldown_ms": 60000},
               "provider": "openai", "api_key": "k", "custom_host": bad.base}
        self.assertEqual(self.call(cfg).status, 502)
        r = self.call(cfg)
        self.assert_error(r, 503, code="circuit_open")
        self.assertEqual(bad.count, 1)

    def test_forward_headers_pass_what_is_otherwise_kept_back(self):
        cfg = {"provider": "openai", "api_key": "k", "custom_host": self.mock.base + "/v1",
               "forward_headers": ["Cookie", "x-forwarded-for", "Authorization", "Host"]}
        r = self.call(cfg, headers=[("Cookie", "session=abc"), ("X-Forwarded-For", "10.1.1.1"),
                                    ("Authorization", "Bearer client-secret")])
        self.assertEqual(r.status, 200, r)
        hdrs = [(k.lower(), v) for k, v in self.mock.last()["headers"]]
        self.assertIn(("cookie", "session=abc"), hdrs)
        self.assertIn(("x-forwarded-for", "10.1.1.1"), hdrs)
        # Credentials and the transport's headers are never the config's to pass.
        self.assertEqual([v for k, v in hdrs if k == "authorization"], ["Bearer k"])
        self.assertEqual(len([v for k, v in hdrs if k == "host"]), 1)
        # Without forward_headers they stay back.
        cfg.pop("forward_headers")
        self.call(cfg, headers=[("Cookie", "session=abc")])
        self.assertNotIn("cookie", [k.lower() for k, _ in self.mock.last()["headers"]])

    def test_invalid_config_is_a_400_naming_the_path(self):
        cfg = {"strategy": {"mode": "fallback"},
               "targets": [{"provider": "openai", "retry": {"attempts": 99}}]}
        r = self.call(cfg)
        e = self.assert_error(r, 400, param="x-sluice-config")
        self.assertEqual(e["message"], "config.targets[0].retry.attempts: must be an integer 0..10")
        r = request(self.gw.port, "POST", "/v1/chat/completions",
                    [("Content-Type", "application/json"), ("x-portkey-config", "{not json")],
                    harness.CHAT_BODY)
        self.assert_error(r, 400, param="x-sluice-config")
        r = request(self.gw.port, "POST", "/v1/chat/completions",
                    [("Content-Type", "application/json"), ("x-sluice-config", "pc-abc123")],
                    harness.CHAT_BODY)
        self.assert_error(r, 400, param="x-sluice-config")
        self.assert_healthy()

    def test_unknown_provider_in_a_target(self):
        cfg = {"strategy": {"mode": "fallback"}, "targets": [{"provider": "nope", "api_key": "k"}]}
        r = self.call(cfg)
        e = self.assert_error(r, 400, code="unknown_provider")
        self.assertIn("config.targets[0]", e["message"])


class FileConfig(GatewayTestCase):
    """--config FILE: the config of requests without x-sluice-config, reloaded on SIGHUP."""
    gateway_args = ("--workers", "2")

    def setUp(self):
        self.bad = StatusUpstream(429)
        self.addCleanup(self.bad.close)
        self.mock_b = Mock().start()
        self.addCleanup(self.mock_b.stop)
        fd, self.path = tempfile.mkstemp(prefix="sluice-config-", suffix=".json")
        os.close(fd)
        self.addCleanup(os.unlink, self.path)
        self.write({"strategy": {"mode": "fallback"},
                    "targets": [{"provider": "openai", "api_key": "k", "custom_host": self.bad.base},
                                {"provider": "openai", "api_key": "k",
                                 "custom_host": "http://127.0.0.1:%d/v1" % self.mock_b.port}]})
        super().setUp()

    def gateway_args_for_test(self):
        return super().gateway_args_for_test() + ["--config", self.path]

    def write(self, cfg):
        with open(self.path, "w") as f:
            f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))

    def plain(self):
        return request(self.gw.port, "POST", "/v1/chat/completions",
                       [("Content-Type", "application/json")], harness.CHAT_BODY)

    def test_file_config_routes_and_reloads_on_sighup(self):
        r = self.plain()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-sluice-target"), "config.targets[1]")
        self.assertEqual(len(self.mock_b.requests()), 1)
        # A new config on SIGHUP, for every worker.
        self.write({"provider": "openai", "api_key": "k", "custom_host": self.mock.base + "/v1",
                    "override_params": {"max_tokens": 3}})
        self.gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(self.mock.requests()) == 0:
            time.sleep(0.05)
            r = self.plain()
            self.assertEqual(r.status, 200, r)
        for _ in range(6):  # every worker has it
            self.assertEqual(self.plain().header("x-sluice-target"), "config")
        self.assertEqual(json.loads(self.mock.last()["body"])["max_tokens"], 3)
        # An invalid file is refused; the config in use stays.
        self.write('{"retry": {"attempts": 42}}')
        self.gw.signal(signal.SIGHUP)
        time.sleep(0.3)
        r = self.plain()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("x-sluice-target"), "config")
        self.assertIn("config not reloaded", self.gw.stderr())
        self.assertIn("config.retry.attempts: must be an integer 0..10", self.gw.stderr())

    def test_a_header_config_wins_over_the_file(self):
        cfg = {"provider": "openai", "api_key": "k", "custom_host": self.mock.base + "/v1"}
        r = request(self.gw.port, "POST", "/v1/chat/completions",
                    [("Content-Type", "application/json"), ("x-sluice-config", json.dumps(cfg))],
                    harness.CHAT_BODY)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(self.mock.requests()), 1)
        self.assertEqual(self.bad.count, 0)

    def test_an_invalid_file_at_start_is_refused(self):
        fd, bad_path = tempfile.mkstemp(suffix=".json")
        os.write(fd, b'{"strategy": {"mode": "sideways"}, "targets": [{}]}')
        os.close(fd)
        self.addCleanup(os.unlink, bad_path)
        p = subprocess.run([harness.gateway_binary(), "--listen", "127.0.0.1:0", "--config",
                            bad_path], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("config.strategy.mode: must be single, fallback, loadbalance or conditional",
                      p.stderr)


if __name__ == "__main__":
    harness.main()
