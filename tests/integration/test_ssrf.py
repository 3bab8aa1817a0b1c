"""
The custom-host guard (x-sluice-custom-host): schemes, credentials, metadata
and private addresses, loopback, and the check after DNS resolution. A refused
host must never be contacted: the mock records nothing.
"""
import time

import harness
from harness import GatewayTestCase, metric, with_gateway_args


class CustomHostGuard(GatewayTestCase):

    def via(self, custom_host, alias=False, timeout=15.0):
        h = [(k, v) for k, v in self.headers() if k != "x-sluice-custom-host"]
        h.append(("x-portkey-custom-host" if alias else "x-sluice-custom-host", custom_host))
        return self.chat(headers=h, timeout=timeout)

    def assert_refused(self, custom_host, code, alias=False, param="x-sluice-custom-host"):
        t0 = time.monotonic()
        r = self.via(custom_host, alias)
        with self.subTest(custom_host=custom_host):
            self.assert_error(r, 400, code=code, type_="invalid_request_error", param=param)
            self.assertLess(time.monotonic() - t0, 2.0)
        return r

    def test_metadata_address_is_refused(self):
        for host in ("http://169.254.169.254/latest/meta-data",
                     "http://169.254.169.254:80/v1",
                     "https://169.254.0.1/v1",
                     "http://[::ffff:169.254.169.254]/v1",
                     "http://[fd00:ec2::254]/v1",
                     "http://[fe80::1]/v1",
                     "http://0.0.0.0:%d/v1" % self.mock.port,
                     "http://224.0.0.1/v1"):
            self.assert_refused(host, "forbidden_custom_host")
        self.assert_refused("http://169.254.169.254/v1", "forbidden_custom_host", alias=True)
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_metadata_address_in_numeric_disguise_is_refused(self):
        # 2852039166 == 0xa9fea9fe == 169.254.169.254: refused whether the
        # URL parser normalises it or the resolver does.
        for host in ("http://2852039166/v1", "http://0xa9fea9fe/v1", "http://169.254.43518/v1"):
            self.assert_refused(host, "forbidden_custom_host")
        self.assert_healthy()

    def test_private_addresses_are_refused_by_default(self):
        for host in ("http://10.0.0.1/v1", "http://10.255.255.254:8080/v1", "http://172.16.0.1/v1",
                     "http://192.168.1.1/v1", "http://100.64.0.1/v1", "http://[fc00::1]/v1",
                     "http://[::ffff:10.0.0.1]/v1"):
            self.assert_refused(host, "forbidden_custom_host")
        self.assert_healthy()

    @with_gateway_args("--trusted-hosts", "10.0.0.0/8,169.254.0.0/16", "--upstream-timeout-ms", "500")
    def test_trusted_private_range_is_let_through(self):
        t0 = time.monotonic()
        r = self.via("http://10.0.0.1:9/v1")
        # Allowed by the guard: the gateway tries to connect. Normally nothing
        # is there (502 or 504); a sandbox's transparent proxy may answer
        # instead. Either way it is not the guard's 400.
        self.assertNotEqual(r.status, 400, r)
        if r.status in (502, 504):
            e = self.assert_error(r, r.status)
            self.assertIn(e["code"], ("upstream_unreachable", "upstream_timeout"), r)
        self.assertEqual(r.header("x-sluice-provider"), "openai")
        self.assertLess(time.monotonic() - t0, 3.0)
        # Other private ranges stay refused, and metadata can never be trusted.
        self.assert_refused("http://192.168.1.1/v1", "forbidden_custom_host")
        self.assert_refused("http://169.254.169.254/v1", "forbidden_custom_host")
        self.assert_healthy()

    def test_localhost_name_is_allowed(self):
        r = self.via("http://localhost:%d/v1" % self.mock.port)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["choices"][0]["message"]["content"], "This is a mock response.")
        rec = self.mock.last()
        self.assertEqual(dict((k.lower(), v) for k, v in rec["headers"])["host"],
                         "localhost:%d" % self.mock.port)

    @with_gateway_args("--no-loopback")
    def test_no_loopback_refuses_loopback_after_dns(self):
        # "localhost" is a name: it can only be judged on the address it resolves to.
        r = self.assert_refused("http://localhost:%d/v1" % self.mock.port, "forbidden_custom_host",
                                param=None)
        self.assertEqual(r.header("x-sluice-provider"), "openai")
        for host in ("http://127.0.0.1:%d/v1" % self.mock.port, "http://127.0.0.2:%d/v1" % self.mock.port,
                     "http://[::1]:%d/v1" % self.mock.port, "http://[::ffff:127.0.0.1]:%d/v1" % self.mock.port,
                     "http://2130706433:%d/v1" % self.mock.port):
            self.assert_refused(host, "forbidden_custom_host")
        self.assertEqual(self.mock.requests(), [], "a refused host was contacted")
        m = self.wait_metric(lambda m: metric(m, "sluice_requests_total", provider="openai",
                                              model="gpt-4o-mini", status="400") == 6)
        self.assertEqual(metric(m, "sluice_requests_total", provider="openai", model="gpt-4o-mini",
                                status="400"), 6)

    @with_gateway_args("--no-loopback")
    def test_refusal_after_dns_names_the_header(self):
        # The same refusal must say which input was wrong whether the host
        # was an address (judged at once) or a name (judged after DNS).
        early = self.via("http://127.0.0.1:%d/v1" % self.mock.port)
        late = self.via("http://localhost:%d/v1" % self.mock.port)
        self.assert_error(early, 400, code="forbidden_custom_host", param="x-sluice-custom-host")
        self.assert_error(late, 400, code="forbidden_custom_host", param="x-sluice-custom-host")

    def test_only_http_and_https(self):
        for host in ("ftp://127.0.0.1:%d/v1" % self.mock.port, "file:///etc/passwd",
                     "gopher://127.0.0.1:%d/_GET" % self.mock.port, "dict://127.0.0.1:11211/stat",
                     "ws://127.0.0.1:%d/v1" % self.mock.port):
            self.assert_refused(host, "invalid_custom_host")
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_credentials_in_url_are_refused(self):
        for host in ("http://user:secret@127.0.0.1:%d/v1" % self.mock.port,
                     "http://user@127.0.0.1:%d/v1" % self.mock.port,
                     "http://:secret@127.0.0.1:%d/v1" % self.mock.port):
            r = self.assert_refused(host, "invalid_custom_host")
            self.assertNotIn("secret", r.text(), "the error echoes the credentials")
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_not_a_url(self):
        for host in ("not a url", "127.0.0.1:%d/v1" % self.mock.port, "http://", "//127.0.0.1/v1"):
            self.assert_refused(host, "invalid_custom_host")
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()


if __name__ == "__main__":
    harness.main()
