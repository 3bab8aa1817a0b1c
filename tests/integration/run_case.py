#!/usr/bin/env python3
"""
Runs one declarative integration case (a directory under cases/); see README.md
for the file formats.

    run_case.py [--gateway PATH] [--mock PATH] [-v] CASE_DIR...

Exit status 0 when every case passes, 1 otherwise.
"""
import base64
import json
import os
import re
import shlex
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ANY = "{{ANY}}"


class CaseFailure(AssertionError):
    pass


# ---- matching ---------------------------------------------------------------

def match_value(expected, actual, path, exact, errors):
    """Compares JSON values; "{{ANY}}" and "{{RE:...}}" strings are placeholders."""
    if isinstance(expected, str) and expected == ANY:
        return
    if isinstance(expected, str) and expected.startswith("{{RE:") and expected.endswith("}}"):
        pat = expected[5:-2]
        if not isinstance(actual, str) or re.fullmatch(pat, actual, re.S) is None:
            errors.append("%s: %r does not match /%s/" % (path or "$", actual, pat))
        return
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            errors.append("%s: expected an object, got %r" % (path or "$", actual))
            return
        for k, v in expected.items():
            if k not in actual:
                errors.append("%s.%s: missing" % (path or "$", k))
            else:
                match_value(v, actual[k], "%s.%s" % (path or "$", k), exact, errors)
        if exact:
            for k in actual:
                if k not in expected:
                    errors.append("%s.%s: unexpected key (value %r)" % (path or "$", k, actual[k]))
        return
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            errors.append("%s: expected a list of %d, got %r" % (path or "$", len(expected), actual))
            return
        for i, (e, a) in enumerate(zip(expected, actual)):
            match_value(e, a, "%s[%d]" % (path or "$", i), exact, errors)
        return
    # bool is an int in Python: compare types too
    if type(expected) is not type(actual) and not (
            isinstance(expected, (int, float)) and isinstance(actual, (int, float))
            and not isinstance(expected, bool) and not isinstance(actual, bool)):
        errors.append("%s: expected %r, got %r" % (path or "$", expected, actual))
    elif expected != actual:
        errors.append("%s: expected %r, got %r" % (path or "$", expected, actual))


def match_headers(spec_headers, absent, get, what, errors):
    for name, want in (spec_headers or {}).items():
        got = get(name)
        if got is None:
            errors.append("%s header %s: missing" % (what, name))
            continue
        match_value(want, got, "%s header %s" % (what, name), True, errors)
    for name in absent or []:
        if get(name) is not None:
            errors.append("%s header %s: present (%r) but must not be" % (what, name, get(name)))


# ---- case files -------------------------------------------------------------

def substitute(text, subs):
    for k, v in subs.items():
        text = text.replace("{{%s}}" % k, v)
    return text


def load_client_request(case, subs):
    """Returns (method, path, request bytes, body bytes)."""
    raw = open(os.path.join(case, "client.http"), "rb").read().decode("utf-8")
    raw = substitute(raw, subs)
    raw = raw.replace("\r\n", "\n")
    head, sep, body = raw.partition("\n\n")
    if not sep:
        head = head.rstrip("\n")
        body = ""
    body_bytes = body.encode("utf-8")
    if body_bytes.endswith(b"\n"):
        body_bytes = body_bytes[:-1]
    body_file = os.path.join(case, "client.body")
    if os.path.exists(body_file):
        if body_bytes:
            raise CaseFailure("client.http has a body and client.body exists: use one")
        body_bytes = open(body_file, "rb").read()
    lines = head.split("\n")
    m = re.match(r"^(\S+) (\S+) HTTP/(1\.[01])$", lines[0])
    if not m:
        raise CaseFailure("client.http: bad request line %r" % lines[0])
    names = {l.split(":", 1)[0].strip().lower() for l in lines[1:] if ":" in l}
    if "host" not in names:
        lines.insert(1, "Host: {{GATEWAY_HOSTPORT}}")
        lines[1] = substitute(lines[1], subs)
    if body_bytes and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body_bytes))
    if "connection" not in names:
        lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body_bytes
    return m.group(1), m.group(2), m.group(3), data, body_bytes, lines


def load_json(case, name, subs):
    p = os.path.join(case, name)
    if not os.path.exists(p):
        return None
    text = substitute(open(p, encoding="utf-8").read(), subs)
    try:
        return json.loads(text)
    except ValueError as e:
        raise CaseFailure("%s: invalid JSON: %s" % (name, e))


def load_expected_sse(case, subs):
    p = os.path.join(case, "expect-client.sse")
    if not os.path.exists(p):
        return None
    text = substitute(open(p, encoding="utf-8").read(), subs)
    return harness.parse_sse(text.encode("utf-8"))


# ---- checks -----------------------------------------------------------------

def check_client(r, method, path, version, spec, sse, errors):
    want_status = (spec or {}).get("status", 200)
    if r.status != want_status:
        errors.append("client status: expected %d, got %d" % (want_status, r.status))
    if not r.complete:
        errors.append("client response framing incomplete (no last chunk / short body)")
    if path.startswith("/v1/"):
        for h in ("x-sluice-trace-id", "x-sluice-overhead-us"):
            if r.header(h) is None:
                errors.append("client header %s: missing (every /v1 response carries it)" % h)
        ov = r.header("x-sluice-overhead-us")
        if ov is not None and not re.fullmatch(r"[0-9]+", ov):
            errors.append("x-sluice-overhead-us is not an integer: %r" % ov)
    for h in ("transfer-encoding", "content-length"):
        if len(r.header_all(h)) > 1:
            errors.append("client header %s appears %d times" % (h, len(r.header_all(h))))
    spec = spec or {}
    match_headers(spec.get("headers"), spec.get("headers_absent"), r.header, "client", errors)
    if "body_json" in spec or "body_json_exact" in spec:
        try:
            body = r.json()
        except ValueError:
            errors.append("client body is not JSON: %r" % r.body[:300])
        else:
            if "body_json" in spec:
                match_value(spec["body_json"], body, "client body", False, errors)
            if "body_json_exact" in spec:
                match_value(spec["body_json_exact"], body, "client body", True, errors)
    if "body_text" in spec and r.text() != spec["body_text"]:
        errors.append("client body: expected %r, got %r" % (spec["body_text"], r.text()[:300]))
    if "body_length" in spec and len(r.body) != spec["body_length"]:
        errors.append("client body length: expected %d, got %d" % (spec["body_length"], len(r.body)))
    if sse is not None:
        if not (r.header("content-type") or "").startswith("text/event-stream"):
            errors.append("client content-type is not text/event-stream: %r"
                          % r.header("content-type"))
        if version == "1.1" and not r.chunked:
            errors.append("SSE response to an HTTP/1.1 client is not chunked")
        if version == "1.0" and r.chunked:
            errors.append("chunked response to an HTTP/1.0 client")
        try:
            got = harness.parse_sse(r.body)
        except (AssertionError, UnicodeDecodeError) as e:
            errors.append("client SSE body: %s" % e)
            return
        if len(got) != len(sse):
            errors.append("client SSE: expected %d events, got %d:\n  %s"
                          % (len(sse), len(got), "\n  ".join(repr(e) for e in got)))
        for i, (want, have) in enumerate(zip(sse, got)):
            where = "client SSE event %d" % i
            if want.event != have.event:
                errors.append("%s: event name %r, expected %r" % (where, have.event, want.event))
            try:
                wj = json.loads(want.data)
            except ValueError:
                if want.data != have.data:
                    errors.append("%s: data %r, expected %r" % (where, have.data, want.data))
                continue
            try:
                hj = json.loads(have.data)
            except ValueError:
                errors.append("%s: data is not JSON: %r" % (where, have.data))
                continue
            match_value(wj, hj, where, True, errors)


def record_header(rec, name):
    n = name.lower()
    for k, v in rec["headers"]:
        if k.lower() == n:
            return v
    return None


def check_upstream(recs, spec, client_body, errors):
    want_count = spec.get("count", 1)
    if len(recs) != want_count:
        errors.append("upstream: expected %d request(s), mock recorded %d: %s"
                      % (want_count, len(recs), [(r["method"], r["path"]) for r in recs]))
    if not recs or want_count == 0:
        return
    rec = recs[-1]
    if "method" in spec and rec["method"] != spec["method"]:
        errors.append("upstream method: expected %s, got %s" % (spec["method"], rec["method"]))
    if "path" in spec:
        match_value(spec["path"], rec["path"], "upstream path", True, errors)
    match_headers(spec.get("headers"), spec.get("headers_absent"),
                  lambda n: record_header(rec, n), "upstream", errors)
    for name in spec.get("headers_once", []):
        n = sum(1 for k, _ in rec["headers"] if k.lower() == name.lower())
        if n != 1:
            errors.append("upstream header %s appears %d times, expected once" % (name, n))
    body = base64.b64decode(rec["body_base64"])
    if "body_json" in spec:
        try:
            got = json.loads(body)
        except ValueError:
            errors.append("upstream body is not JSON: %r" % body[:300])
        else:
            match_value(spec["body_json"], got, "upstream body", True, errors)
    if "body_text" in spec and body.decode("utf-8", "replace") != spec["body_text"]:
        errors.append("upstream body: expected %r, got %r" % (spec["body_text"], body[:300]))
    if spec.get("body_same_as_client") and body != client_body:
        errors.append("upstream body differs from the client's (%d vs %d bytes; first difference "
                      "at %s)" % (len(body), len(client_body), first_diff(body, client_body)))


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def check_direct(mock, method, path, lines, body, r, errors):
    """Sends the client's request straight to the mock; the gateway's reply must be byte-equal."""
    hs = []
    for l in lines[1:]:
        k, _, v = l.partition(":")
        if k.strip().lower() in ("host", "connection", "content-length"):
            continue
        if k.strip().lower().startswith(("x-sluice-", "x-portkey-")):
            continue
        hs.append((k.strip(), v.strip()))
    d = harness.request(mock.port, method, path, hs, body)
    if d.status != r.status:
        errors.append("direct: mock answered %d, gateway %d" % (d.status, r.status))
    if d.header("content-type") != r.header("content-type"):
        errors.append("direct: content-type %r, through the gateway %r"
                      % (d.header("content-type"), r.header("content-type")))
    if d.body != r.body:
        errors.append("direct: body differs (%d bytes direct, %d through the gateway; first "
                      "difference at %d)" % (len(d.body), len(r.body), first_diff(d.body, r.body)))


# ---- driver -----------------------------------------------------------------

def run_case(case, verbose=False):
    case = os.path.abspath(case.rstrip("/"))
    errors = []
    args_file = os.path.join(case, "gateway.args")
    gw_args = shlex.split(open(args_file).read(), comments=True) if os.path.exists(args_file) else []
    mock = harness.Mock().start()
    gw = None
    try:
        gw = harness.Gateway(args=gw_args).start()
        subs = {"MOCK": mock.base, "MOCK_HOSTPORT": mock.hostport, "MOCK_PORT": str(mock.port),
                "GATEWAY_HOSTPORT": "127.0.0.1:%d" % gw.port}
        method, path, version, data, body, lines = load_client_request(case, subs)
        client_spec = load_json(case, "expect-client.json", subs)
        sse = load_expected_sse(case, subs)
        up_spec = load_json(case, "expect-upstream.json", subs)
        if client_spec is None and sse is None:
            raise CaseFailure("a case needs expect-client.json or expect-client.sse")

        with harness.Conn(gw.port, timeout=20) as c:
            c.send(data)
            r = c.read_response(method, deadline=time.monotonic() + 30)
        if verbose:
            print("client response: %r" % r)
        check_client(r, method, path, version, client_spec, sse, errors)

        if up_spec is not None:
            recs = mock.requests()
            if verbose:
                print("upstream requests: %s" % json.dumps(recs, indent=1)[:4000])
            check_upstream(recs, up_spec, body, errors)
        if client_spec and client_spec.get("body_same_as_direct"):
            check_direct(mock, method, path, lines, body, r, errors)

        # Whatever the case did, the gateway still proxies an ordinary request.
        h = harness.request(gw.port, "POST", "/v1/chat/completions",
                            [("x-sluice-provider", "openai"),
                             ("x-sluice-custom-host", mock.base + "/v1"),
                             ("Authorization", "Bearer sk-after"),
                             ("Content-Type", "application/json")], harness.CHAT_BODY)
        if h.status != 200 or h.json()["choices"][0]["message"]["content"] != \
                "This is a mock response.":
            errors.append("gateway does not proxy an ordinary request after the case: %r" % h)
    except Exception as e:  # noqa: BLE001 - every failure is reported below
        errors.append("%s: %s" % (type(e).__name__, e))
        if verbose:
            traceback.print_exc()
    finally:
        for p in (gw, mock):
            if p is None:
                continue
            try:
                p.stop()
            except harness.ProcessError as e:
                errors.append(str(e))
    return errors


def main(argv):
    argv = harness.parse_binary_args(argv[1:])
    verbose = "-v" in argv
    cases = [a for a in argv if a != "-v"]
    if not cases:
        print(__doc__)
        return 2
    failed = 0
    for case in cases:
        t0 = time.monotonic()
        errors = run_case(case, verbose)
        name = os.path.basename(os.path.abspath(case.rstrip("/")))
        if errors:
            failed += 1
            print("FAIL %s (%.2fs)" % (name, time.monotonic() - t0))
            for e in errors:
                print("  - " + e.replace("\n", "\n    "))
        else:
            print("ok   %s (%.2fs)" % (name, time.monotonic() - t0))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
