"""
The upstream client: connections to a provider are reused across requests,
TLS peers are verified (a private CA is trusted only when given with
--upstream-ca-file), and HTTP/2 is used where the provider offers it.

The TLS provider is a real nginx (Debian's, with http_ssl and http_v2) that
terminates TLS and HTTP/2 in front of the mock; its access log records the
protocol each request arrived with. Certificates come from the openssl
command line, made fresh for every run.
"""
import os
import shutil
import subprocess
import tempfile
import time

import harness
from harness import Gateway, GatewayTestCase, free_closed_port, request

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_certs(d):
    """A CA and a server certificate for the name localhost only, signed by it."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=sluice-test-ca", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
            "-subj", "/CN=localhost", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)


class ConnectionReuse(GatewayTestCase):
    gateway_args = ("--workers", "1")

    def test_sequential_requests_share_one_upstream_connection(self):
        for _ in range(20):
            r = self.chat()
            self.assertEqual(r.status, 200, r)
        conns = {rec["conn"] for rec in self.mock.requests()}
        self.assertEqual(len(conns), 1, conns)

    def test_streams_reuse_connections_too(self):
        body = dict(harness.CHAT_BODY, stream=True)
        for _ in range(5):
            r = self.chat(body=body)
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.events()[-1].is_done(), r)
        conns = {rec["conn"] for rec in self.mock.requests()}
        self.assertEqual(len(conns), 1, conns)

    def test_many_distinct_urls_each_reach_their_own_path(self):
        # More distinct URLs than the worker keeps parsed, interleaved with
        # repeats, so that cached entries are replaced while others are reused.
        paths = []
        for i in range(80):
            q = "/v1/chat/completions?n=%d" % (i % 50)
            r = self.chat(path=q)
            self.assertEqual(r.status, 200, r)
            paths.append(q)
        self.assertEqual([rec["path"] for rec in self.mock.requests()], paths)

    def test_broken_connection_is_not_reused(self):
        body = dict(harness.CHAT_BODY, stream=True)
        h = self.headers(**{"x-mock-drop-after": "2"})
        r = self.chat(body=body, headers=h)
        self.assertTrue(r.events()[-1].is_error(), r)
        r = self.chat()
        self.assertEqual(r.status, 200, r)
        recs = self.mock.requests()
        self.assertNotEqual(recs[0]["conn"], recs[1]["conn"])


class CompressedUpstream(GatewayTestCase):
    """A provider that gzips its body: the client gets it decoded, with no
    Content-Encoding left behind (the gateway may read bodies later)."""

    def test_gzip_body_is_decoded(self):
        import gzip
        import http.server
        import json
        import threading

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                body = gzip.compress(json.dumps({"ok": True}).encode())
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                # One request per connection, or shutdown() waits for the
                # gateway's kept-alive connection forever.
                self.close_connection = True

            def log_message(self, *a):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            h = [(k, v) for k, v in self.headers() if k != "x-sluice-custom-host"]
            h.append(("x-sluice-custom-host", "http://127.0.0.1:%d/v1" % srv.server_port))
            r = self.chat(headers=h)
        finally:
            srv.shutdown()
            srv.server_close()
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.header("content-encoding"), r)
        self.assertEqual(r.json(), {"ok": True})


class TlsAndHttp2(GatewayTestCase):
    """nginx with TLS and HTTP/2 in front of the mock."""

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="sluice-tls-")
        make_certs(self.dir)
        self.tls_port = free_closed_port()
        conf = """
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format proto '$server_protocol $request_method $request_uri $status $connection';
    access_log {d}/access.log proto;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {d}/srv.pem;
        ssl_certificate_key {d}/srv.key;
        location / {{
            proxy_pass http://127.0.0.1:{mock};
            proxy_http_version 1.1;
            proxy_buffering off;
        }}
    }}
}}
""".format(d=self.dir, port=self.tls_port, mock=self.mock.port)
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(conf)
        self.nginx = subprocess.Popen([NGINX, "-c", os.path.join(self.dir, "nginx.conf"),
                                       "-p", self.dir], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import socket
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.fail("nginx did not start: %s" % self.nginx.stderr.read())

    def tearDown(self):
        self.nginx.terminate()
        self.nginx.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
        super().tearDown()

    def tls_headers(self, host="localhost"):
        h = [(k, v) for k, v in self.headers() if k != "x-sluice-custom-host"]
        h.append(("x-sluice-custom-host", "https://%s:%d/v1" % (host, self.tls_port)))
        return h

    def access_log(self, want=0):
        """nginx writes a line after it has answered: wait for want lines."""
        deadline = time.monotonic() + 5
        while True:
            with open(os.path.join(self.dir, "access.log")) as f:
                lines = [l.split() for l in f.read().splitlines() if l.strip()]
            if len(lines) >= want or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)

    def restart_gateway(self, *args):
        self.gw.stop()
        self.gw = Gateway(args=args).start()

    def test_unknown_ca_is_refused(self):
        r = self.chat(headers=self.tls_headers())
        self.assert_error(r, 502, code="upstream_unreachable")
        self.assertEqual(self.mock.requests(), [])
        self.assert_healthy()

    def test_trusted_ca_uses_http2_and_reuses_the_connection(self):
        self.restart_gateway("--workers", "1",
                             "--upstream-ca-file", os.path.join(self.dir, "ca.pem"))
        for _ in range(5):
            r = self.chat(headers=self.tls_headers())
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["choices"][0]["message"]["content"],
                             "This is a mock response.")
        log = self.access_log(want=5)
        self.assertEqual(len(log), 5, log)
        for proto, method, uri, status, _ in log:
            self.assertEqual(proto, "HTTP/2.0")
            self.assertEqual((method, uri, status), ("POST", "/v1/chat/completions", "200"))
        # One TLS connection for all of them.
        self.assertEqual(len({l[4] for l in log}), 1, log)
        body = dict(harness.CHAT_BODY, stream=True)
        r = self.chat(body=body, headers=self.tls_headers())
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.events()[-1].is_done(), r)
        self.assertGreater(len(r.events()), 3)

    def test_hostname_must_match_the_certificate(self):
        self.restart_gateway("--upstream-ca-file", os.path.join(self.dir, "ca.pem"))
        # The certificate names localhost, not the address it listens on.
        h = self.tls_headers(host="127.0.0.1")
        r = self.chat(headers=h)
        self.assert_error(r, 502, code="upstream_unreachable")


if __name__ == "__main__":
    harness.main()
