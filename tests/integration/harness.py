"""
Integration test harness: real sluice-gateway and mock_provider processes on
free loopback ports, and small raw-socket HTTP/1.1 helpers.

Python 3 standard library only. The binaries come from the command line
(--gateway, --mock) or from the SLUICE_GATEWAY / SLUICE_MOCK environment
variables, which CMakeLists.txt sets for every registered test.

Every process runs with sanitizer options that make findings fatal, and
stopping a process asserts a clean exit (code 0 after SIGTERM) and a stderr
free of sanitizer reports, so a memory error anywhere fails the test that
triggered it.
"""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))

SANITIZER_MARKERS = ("AddressSanitizer", "runtime error", "LeakSanitizer",
                     "UndefinedBehaviorSanitizer", "ThreadSanitizer")

CHILD_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    "LSAN_OPTIONS": "",
}

START_TIMEOUT = 15.0  # sanitizer builds start slowly on a loaded CI machine
# An idle gateway drains in milliseconds, so a gateway still running this
# long after SIGTERM (plus its grace period) did not honour it.
STOP_TIMEOUT = 3.0


def _binary(env_name, default_rel):
    p = os.environ.get(env_name)
    if p:
        return p
    root = os.path.abspath(os.path.join(HERE, "..", ".."))
    return os.path.join(root, "build", "it", default_rel)


def gateway_binary():
    return _binary("SLUICE_GATEWAY", "dataplane/sluice-gateway")


def mock_binary():
    return _binary("SLUICE_MOCK", "tests/mock_provider/mock_provider")


def parse_binary_args(argv):
    """Consumes --gateway PATH and --mock PATH from argv (for unittest mains)."""
    out = []
    i = 0
    while i < len(argv):
        if argv[i] in ("--gateway", "--mock") and i + 1 < len(argv):
            os.environ["SLUICE_GATEWAY" if argv[i] == "--gateway" else "SLUICE_MOCK"] = argv[i + 1]
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------

class ProcessError(AssertionError):
    pass


class Process:
    """A child that prints "listening on HOST:PORT" on stdout once ready."""

    name = "process"

    def __init__(self, argv):
        self.argv = argv
        self.proc = None
        self.host = None
        self.port = None
        self.stderr_file = tempfile.TemporaryFile(mode="w+b")
        self._stdout_lines = []
        self._reader = None
        self.returncode = None
        self._stderr_cache = None

    def start(self, timeout=START_TIMEOUT):
        env = dict(os.environ)
        env.update(CHILD_ENV)
        env.update(getattr(self, "extra_env", {}))
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self.stderr_file,
                                     stdin=subprocess.DEVNULL, env=env)
        ready = threading.Event()

        def read_stdout():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self._stdout_lines.append(line)
                m = re.match(r"^listening on (.+):(\d+)$", line)
                if m and not ready.is_set():
                    self.host, self.port = m.group(1), int(m.group(2))
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=read_stdout, daemon=True)
        self._reader.start()
        if not ready.wait(timeout) or self.port is None:
            self.kill()
            raise ProcessError("%s did not print 'listening on' within %.0fs; stderr:\n%s"
                               % (self.name, timeout, self.stderr()))
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        if self._stderr_cache is not None:
            return self._stderr_cache
        self.stderr_file.flush()
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode("utf-8", "replace")

    def sanitizer_findings(self):
        return [l for l in self.stderr().splitlines() if any(m in l for m in SANITIZER_MARKERS)]

    def grace_s(self):
        if "--shutdown-grace-ms" in self.argv:
            return int(self.argv[self.argv.index("--shutdown-grace-ms") + 1]) / 1000.0
        return 0.0

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._release()

    def _release(self):
        """After exit: keeps stderr's text, closes the pipes."""
        if self.proc is None or self.proc.poll() is None or self._stderr_cache is not None:
            return
        self._stderr_cache = self.stderr()
        self.stderr_file.close()
        if self._reader is not None:
            self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def stop(self, timeout=None, check=True):
        """SIGTERM; asserts exit code 0 and no sanitizer output."""
        if timeout is None:
            timeout = STOP_TIMEOUT + self.grace_s()
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
            if check:
                raise ProcessError("%s did not exit within %.0fs of SIGTERM; stderr:\n%s"
                                   % (self.name, timeout, self.stderr()[-4000:]))
            return
        self.check_exit(check)

    def check_exit(self, check=True):
        self._release()
        rc = self.proc.returncode
        findings = self.sanitizer_findings()
        if check and (rc != 0 or findings):
            raise ProcessError("%s exited with %s%s; stderr:\n%s"
                               % (self.name, rc, " and sanitizer findings" if findings else "",
                                  self.stderr()[-8000:]))


class Mock(Process):
    name = "mock_provider"

    def __init__(self, binary=None, args=()):
        super().__init__([binary or mock_binary(), "--port", "0"] + list(args))

    @property
    def base(self):
        return "http://%s:%d" % (self.host, self.port)

    @property
    def hostport(self):
        return "%s:%d" % (self.host, self.port)

    def admin(self, method, path):
        r = request(self.port, method, path, host=self.host)
        return r

    def requests(self):
        r = self.admin("GET", "/__mock/requests")
        assert r.status == 200, r
        return r.json()

    def last(self):
        r = self.admin("GET", "/__mock/requests/last")
        return r.json() if r.status == 200 else None

    def clear(self):
        r = self.admin("DELETE", "/__mock/requests")
        assert r.status == 204, r


class Gateway(Process):
    name = "sluice-gateway"
    DEFAULT_ARGS = ["--workers", "2", "--shutdown-grace-ms", "1000"]

    def __init__(self, binary=None, args=()):
        # SLUICE_GATEWAY_EXTRA_ARGS runs a whole module again with other
        # settings (e.g. "--upstream-http1 libcurl"); a test's own come last.
        args = shlex.split(os.environ.get("SLUICE_GATEWAY_EXTRA_ARGS", "")) + list(args)
        base = list(self.DEFAULT_ARGS)
        # A test's own value for an option replaces the default one.
        for opt in ("--workers", "--shutdown-grace-ms"):
            if opt in args:
                i = base.index(opt)
                del base[i:i + 2]
        super().__init__([binary or gateway_binary(), "--listen", "127.0.0.1:0"] + base + args)


# ---------------------------------------------------------------------------
# raw HTTP/1.1
# ---------------------------------------------------------------------------

class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []          # [(name, value)] in order, names as sent
        self.body = b""
        self.chunked = False
        self.chunks = []           # [(arrival time, bytes)] for chunked bodies
        self.complete = False      # framing ended properly (length, last chunk)
        self.interim = []          # 1xx statuses seen before this response

    def header(self, name, default=None):
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return default

    def header_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def text(self):
        return self.body.decode("utf-8", "replace")

    def events(self):
        return parse_sse(self.body)

    def __repr__(self):
        return "<Response %s %s headers=%r body=%r>" % (self.status, self.reason, self.headers,
                                                        self.body[:600])


class Closed(Exception):
    """The peer closed the connection before a complete response."""


class Conn:
    """A client connection with a buffered reader; raw bytes in, parsed responses out."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.port = port
        self.host = host

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self, deadline=None):
        if self.eof:
            raise Closed("connection closed by peer")
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("deadline passed")
            self.sock.settimeout(min(left, self.timeout))
        else:
            self.sock.settimeout(self.timeout)
        d = self.sock.recv(65536)
        if not d:
            self.eof = True
            raise Closed("connection closed by peer")
        self.buf += d
        return time.time()

    def readline(self, deadline=None):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill(deadline)

    def read_exact(self, n, deadline=None):
        t = time.time()
        while len(self.buf) < n:
            t = self._fill(deadline)
        d, self.buf = self.buf[:n], self.buf[n:]
        return d, t

    def read_until_close(self, deadline=None):
        while True:
            try:
                self._fill(deadline)
            except Closed:
                break
        d, self.buf = self.buf, b""
        return d

    def read_head(self, deadline=None):
        r = Response()
        while True:
            line = self.readline(deadline).decode("latin-1")
            m = re.match(r"^HTTP/(\d\.\d) (\d{3})(?: (.*))?$", line)
            if not m:
                raise AssertionError("bad status line %r" % line)
            r.version, r.status, r.reason = m.group(1), int(m.group(2)), m.group(3) or ""
            r.headers = []
            while True:
                h = self.readline(deadline).decode("latin-1")
                if h == "":
                    break
                if ":" not in h:
                    raise AssertionError("bad header line %r" % h)
                k, v = h.split(":", 1)
                r.headers.append((k, v.strip()))
            if 100 <= r.status < 200:
                r.interim.append(r.status)
                continue
            return r

    def iter_body(self, r, method="GET", deadline=None):
        """Yields (arrival time, bytes) pieces of r's body; sets r.complete."""
        if method == "HEAD" or r.status in (204, 304):
            r.complete = True
            return
        te = (r.header("transfer-encoding") or "").lower()
        cl = r.header("content-length")
        if "chunked" in te:
            r.chunked = True
            while True:
                size_line = self.readline(deadline).decode("latin-1")
                size = int(size_line.split(";")[0].strip(), 16)
                if size == 0:
                    # trailers until the empty line
                    while self.readline(deadline) != b"":
                        pass
                    r.complete = True
                    return
                data, t = self.read_exact(size, deadline)
                crlf, _ = self.read_exact(2, deadline)
                if crlf != b"\r\n":
                    raise AssertionError("chunk not followed by CRLF: %r" % crlf)
                r.chunks.append((t, data))
                yield t, data
        elif cl is not None:
            data, t = self.read_exact(int(cl), deadline)
            r.complete = True
            if data:
                yield t, data
        else:
            t = time.time()
            while True:
                if self.buf:  # what came with the head, then each read
                    d, self.buf = self.buf, b""
                    yield t, d
                try:
                    t = self._fill(deadline)
                except Closed:
                    break
            r.complete = True  # close-delimited

    def read_response(self, method="GET", deadline=None, allow_truncated=False):
        r = self.read_head(deadline)
        parts = []
        try:
            for _, d in self.iter_body(r, method, deadline):
                parts.append(d)
        except Closed:
            if not allow_truncated:
                raise
        r.body = b"".join(parts)
        return r

    def request(self, method, path, headers=None, body=None, deadline=None):
        self.send(build_request(method, path, headers, body, host="%s:%d" % (self.host, self.port)))
        return self.read_response(method, deadline)

    def wait_closed(self, timeout):
        """True if the peer closes (EOF or reset) within timeout; data read is kept."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._fill(deadline)
            except Closed:
                return True
            except ConnectionResetError:
                return True
            except socket.timeout:
                return False
        return False


def build_request(method, path, headers=None, body=None, host="localhost", version="1.1"):
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode("utf-8")
    hs = [("Host", host)]
    names = set()
    for k, v in (headers.items() if isinstance(headers, dict) else (headers or [])):
        if k.lower() == "host":
            hs[0] = (k, v)
        else:
            hs.append((k, v))
        names.add(k.lower())
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        hs.append(("Content-Length", str(len(body))))
    head = "%s %s HTTP/%s\r\n" % (method, path, version)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in hs) + "\r\n"
    return head.encode("latin-1") + (body or b"")


def request(port, method, path, headers=None, body=None, host="127.0.0.1", timeout=15.0):
    """One request on a fresh connection (Connection: close)."""
    h = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if not any(k.lower() == "connection" for k, _ in h):
        h.append(("Connection", "close"))
    with Conn(port, host, timeout) as c:
        return c.request(method, path, h, body, deadline=time.monotonic() + timeout)


# ---------------------------------------------------------------------------
# SSE
# ---------------------------------------------------------------------------

class Event:
    def __init__(self, event, data, t=None):
        self.event = event
        self.data = data
        self.t = t

    def json(self):
        return json.loads(self.data)

    def is_done(self):
        return self.data == "[DONE]"

    def is_error(self):
        if self.is_done():
            return False
        try:
            j = json.loads(self.data)
        except ValueError:
            return False
        return isinstance(j, dict) and "error" in j

    def __repr__(self):
        return "<Event %s%s>" % (("event=%s " % self.event) if self.event else "", self.data[:200])


class SSEParser:
    """Incremental SSE decoder (the WHATWG rules the gateway follows)."""

    def __init__(self):
        self.buf = b""
        self.data = []
        self.event = None

    def feed(self, b, t=None):
        self.buf += b
        out = []
        while True:
            m = re.search(rb"\r\n|\r(?!$)|\n", self.buf)
            if not m:
                break
            line = self.buf[:m.start()].decode("utf-8")
            self.buf = self.buf[m.end():]
            if line == "":
                if self.data:
                    out.append(Event(self.event, "\n".join(self.data), t))
                self.data, self.event = [], None
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                self.data.append(value)
            elif field == "event":
                self.event = value
        return out

    def pending(self):
        return bool(self.buf) or bool(self.data)


def parse_sse(body):
    p = SSEParser()
    evs = p.feed(body)
    if p.pending():
        raise AssertionError("SSE body ends inside an event: %r" % p.buf[-200:])
    return evs


def stream_events(conn, r, method="POST", deadline=None):
    """Yields events of a streamed response as they arrive (with arrival times)."""
    p = SSEParser()
    for t, d in conn.iter_body(r, method, deadline):
        for ev in p.feed(d, t):
            yield ev
    if p.pending():
        raise AssertionError("SSE body ends inside an event: %r" % p.buf[-200:])


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------

def parse_metrics(text):
    """{(name, frozenset(labels.items())): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        if not m:
            raise AssertionError("bad metrics line %r" % line)
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return out


def metric(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())))


# ---------------------------------------------------------------------------
# test base
# ---------------------------------------------------------------------------

def free_closed_port():
    """A loopback port nothing listens on (bound then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


CHAT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}


class GatewayTestCase(unittest.TestCase):
    """Starts a fresh mock and gateway for every test; stops and checks them after."""

    gateway_args = ()

    def setUp(self):
        self.mock = None
        self.gw = None
        self._conns = []
        self.mock = Mock().start()
        try:
            self.gw = Gateway(args=self.gateway_args_for_test()).start()
        except BaseException:
            self.mock.stop(check=False)  # tearDown does not run when setUp fails
            raise

    def gateway_args_for_test(self):
        m = getattr(self, self._testMethodName)
        return list(self.gateway_args) + list(getattr(m, "gateway_args", ()))

    def tearDown(self):
        for c in self._conns:
            c.close()
        errors = []
        for p in (self.gw, self.mock):
            if p is None:
                continue
            try:
                p.stop()
            except ProcessError as e:
                errors.append(str(e))
        if errors:
            raise AssertionError("\n".join(errors))

    # -- helpers --------------------------------------------------------------

    def conn(self, timeout=10.0):
        c = Conn(self.gw.port, timeout=timeout)
        self._conns.append(c)
        return c

    def headers(self, **extra):
        """Headers of an ordinary proxied request to the mock."""
        h = [("x-sluice-provider", "openai"),
             ("x-sluice-custom-host", self.mock.base + "/v1"),
             ("Authorization", "Bearer sk-test"),
             ("Content-Type", "application/json")]
        for k, v in extra.items():
            h.append((k.replace("_", "-"), v))
        return h

    def chat(self, body=None, headers=None, path="/v1/chat/completions", timeout=15.0):
        return request(self.gw.port, "POST", path, headers if headers is not None else self.headers(),
                       body if body is not None else CHAT_BODY, timeout=timeout)

    def assert_error(self, r, status, code=None, type_=None, param=None):
        self.assertEqual(r.status, status, r)
        self.assertTrue((r.header("content-type") or "").startswith("application/json"), r)
        j = r.json()
        self.assertIsInstance(j.get("error"), dict, r)
        e = j["error"]
        for k in ("message", "type", "param", "code"):
            self.assertIn(k, e, r)
        self.assertIsInstance(e["message"], str)
        self.assertTrue(e["message"], r)
        if code is not None:
            self.assertEqual(e["code"], code, r)
        if type_ is not None:
            self.assertEqual(e["type"], type_, r)
        if param is not None:
            self.assertEqual(e["param"], param, r)
        return e

    def assert_healthy(self):
        """The gateway still proxies an ordinary request end to end."""
        self.assertTrue(self.gw.alive(), "gateway died; stderr:\n" + self.gw.stderr()[-4000:])
        r = self.chat()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["choices"][0]["message"]["content"], "This is a mock response.")
        h = request(self.gw.port, "GET", "/health")
        self.assertEqual(h.status, 200, h)

    def metrics(self):
        r = request(self.gw.port, "GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        return parse_metrics(r.text())

    def wait_metric(self, pred, timeout=3.0):
        """Polls /metrics until pred(metrics) is true; returns the last metrics."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.metrics()
            if pred(m) or time.monotonic() > deadline:
                return m
            time.sleep(0.05)


def with_gateway_args(*args):
    """Decorator: extra gateway arguments for one test method."""
    def deco(fn):
        fn.gateway_args = args
        return fn
    return deco


def main():
    sys.argv = parse_binary_args(sys.argv)
    unittest.main(verbosity=2)
