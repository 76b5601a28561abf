"""Hostile-client tests: the real `kesc server` fed every kind of bad input — garbage before and
after the TLS handshake, silent and slow clients, malformed HTTP, percent-encoding abuse, bad
JSON and base64, forged and truncated ciphertexts, oversized bodies, odd client certificates and
create races. Each test asserts the exact answer AND that a well-behaved client is served
correctly while the abuse happens and afterwards; the class ends by demanding a clean
ASan/UBSan report and exit code 0.
"""

import base64
import http.client
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402

DECRYPT_FAILED = "decryption failed: ciphertext is not authentic"
BAD_BODY = "invalid request body"
CERT_REQUIRED = "tls: client certificate is required"
HANDSHAKE_TIMEOUT_S = 2
# A good client's p99 above this means a loop was blocked by someone else's request; below it,
# scheduling noise on a loaded 2-core machine (these are stall detectors, not benchmarks).
STALL_S = 0.5
HEADER_TIMEOUT_S = 3


def b64(data):
    return base64.b64encode(data).decode()


def name_error(name):
    return "key name '%s' is empty, too long or contains invalid characters" % name


def closed_by_peer(sock, timeout=10):
    """True once the peer has closed sock (EOF or reset) within timeout; data is discarded."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except socket.timeout:
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True
    return False


def expired_cert(directory, name):
    """A self-signed client certificate whose notAfter lies in the past."""
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    crt = os.path.join(directory, name + ".crt")
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n")
    for args in (["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + name],
                 ["x509", "-req", "-in", csr, "-signkey", key, "-days", "-1",
                  "-extfile", ext, "-out", crt]):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    return crt, key


class Bystander(threading.Thread):
    """A well-behaved client: encrypts and decrypts on one keep-alive connection in a loop and
    records every failure and every latency."""

    def __init__(self, srv, key):
        super().__init__(daemon=True)
        self.srv, self.key = srv, key
        self.stop_flag = threading.Event()
        self.errors, self.latencies = [], []

    def one(self, conn, i):
        plain = b64(b"bystander %d" % i)
        t0 = time.monotonic()
        conn.request("PUT", "/v1/key/encrypt/" + self.key, body=json.dumps({"plaintext": plain}))
        r = conn.getresponse()
        body = r.read()
        self.latencies.append(time.monotonic() - t0)
        if r.status != 200:
            raise AssertionError("encrypt: %d %r" % (r.status, body))
        ct = json.loads(body)["ciphertext"]
        conn.request("PUT", "/v1/key/decrypt/" + self.key, body=json.dumps({"ciphertext": ct}))
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or json.loads(body)["plaintext"] != plain:
            raise AssertionError("decrypt: %d %r" % (r.status, body))

    def run(self):
        conn = self.srv.connection(timeout=10)
        i = 0
        while not self.stop_flag.is_set():
            try:
                self.one(conn, i)
            except Exception as e:  # any failure of the good client is a finding
                self.errors.append("%s: %s" % (type(e).__name__, e))
                conn.close()
                conn = self.srv.connection(timeout=10)
            i += 1
            time.sleep(0.01)
        conn.close()

    def finish(self):
        self.stop_flag.set()
        self.join(30)
        return self.errors


class HostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = kesctest.Server(start=False, config={"server": {
            "handshake_timeout": "%ds" % HANDSHAKE_TIMEOUT_S,
            "header_timeout": "%ds" % HEADER_TIMEOUT_S}})
        # The expired certificate belongs to a policy: KES (RequireAnyClientCert) never
        # verifies client certificates, it only fingerprints them.
        cls.expired = expired_cert(cls.srv.dir, "expired")
        cls.srv.policies = dict(cls.srv.policies or cls.srv.default_policies())
        cls.srv.policies["expired-policy"] = {
            "allow": ["/v1/key/create/exp-*", "/v1/key/describe/exp-*"],
            "identities": [kesctest.identity_of_cert(cls.expired[0])]}
        cls.srv.write_config()
        cls.srv.start()
        assert cls.srv.request("POST", "/v1/key/create/bystander").status == 200

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        report = cls.srv.sanitizer_report()
        cls.srv.cleanup()
        if report:
            raise AssertionError("sanitizer findings:\n" + report)
        if code != 0:
            raise AssertionError("server exit code %r" % code)

    # ---- helpers ----
    def served(self):
        """Context manager: a bystander runs for the duration and must see no failure."""
        test = self

        class _Ctx:
            def __enter__(self):
                self.b = Bystander(test.srv, "bystander")
                self.b.start()
                return self.b

            def __exit__(self, *exc):
                deadline = time.monotonic() + 15
                while not self.b.latencies and time.monotonic() < deadline:
                    time.sleep(0.05)
                errors = self.b.finish()
                if exc[0] is None:
                    test.assertEqual(errors, [], "the well-behaved client was hurt")
                    test.assertGreater(len(self.b.latencies), 0)
                    r = test.srv.request("GET", "/v1/key/describe/bystander")
                    test.assertEqual(r.status, 200, r)
                return False

        return _Ctx()

    def exchange(self, data, cert="admin", timeout=10):
        """Sends data on a fresh mTLS connection and reads one response (None if closed)."""
        s = self.srv.tls_socket(cert, timeout)
        try:
            s.sendall(data)
            try:
                return kesctest.ResponseReader(s).read()
            except (ConnectionError, ssl.SSLError):
                return None
        finally:
            s.close()

    def tcp(self, timeout=10):
        return socket.create_connection(("127.0.0.1", self.srv.port), timeout=timeout)

    def ctx_for(self, crt, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.srv.certs.cert("server"))
        ctx.load_cert_chain(crt, key)
        return ctx

    def put(self, conn, path, body):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        conn.request("PUT", path, body=body)
        r = conn.getresponse()
        data = r.read()
        return kesctest.Response(r.status, r.reason, {k.lower(): v for k, v in r.getheaders()},
                                 data)

    def assert_error(self, r, status, message=None):
        self.assertIsNotNone(r, "connection closed without an answer")
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r)
        got = json.loads(r.body)["message"]
        if message is not None:
            self.assertEqual(got, message)

    def new_key(self, name):
        r = self.srv.request("POST", "/v1/key/create/" + name)
        self.assertEqual(r.status, 200, r)

    def encrypt(self, key, plain, context=None):
        body = {"plaintext": b64(plain)}
        if context is not None:
            body["context"] = b64(context)
        r = self.srv.request("PUT", "/v1/key/encrypt/" + key, body=body)
        self.assertEqual(r.status, 200, r)
        return base64.b64decode(r.json()["ciphertext"])

    # ---- before and around the handshake ----
    def test_garbage_before_handshake(self):
        with self.served():
            for data in (os.urandom(4096), b"\x16\x03\x01\xff\xff" + os.urandom(64),
                         b"\x00" * 10, b"\x16\x03\x03\x00\x05hello"):
                s = self.tcp()
                try:
                    s.sendall(data)
                    self.assertTrue(closed_by_peer(s, 10), "garbage did not end the connection")
                finally:
                    s.close()

    def test_plain_http_to_tls_port(self):
        with self.served():
            s = self.tcp()
            try:
                s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
                # KES (Go's TLS server) answers in plain text instead of a bare reset, so a
                # misconfigured client learns what is wrong.
                out = b""
                s.settimeout(10)
                try:
                    while True:
                        data = s.recv(4096)
                        if not data:
                            break
                        out += data
                except (ConnectionError, OSError):
                    pass
                self.assertTrue(out.startswith(b"HTTP/1.0 400 Bad Request\r\n"), out)
                self.assertIn(b"Client sent an HTTP request to an HTTPS server.", out)
            finally:
                s.close()

    def test_client_hello_then_silence(self):
        ctx = self.srv.ssl_context()
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
        with self.assertRaises(ssl.SSLWantReadError):
            obj.do_handshake()
        hello = outgoing.read()
        socks = []
        try:
            with self.served():
                t0 = time.monotonic()
                for _ in range(20):
                    s = self.tcp()
                    s.sendall(hello)
                    socks.append(s)
                for s in socks:
                    self.assertTrue(closed_by_peer(s, HANDSHAKE_TIMEOUT_S + 8),
                                    "silent handshake never timed out")
                elapsed = time.monotonic() - t0
                self.assertGreaterEqual(elapsed, HANDSHAKE_TIMEOUT_S - 0.5)
        finally:
            for s in socks:
                s.close()

    def test_garbage_after_handshake(self):
        with self.served():
            r = self.exchange(os.urandom(2000) + b"\x00\r\n\r\n")
            self.assert_error(r, 400)
            self.assertEqual(r.headers.get("connection"), "close")
            # Garbage TLS records on an established session end that session only.
            s = self.srv.tls_socket()
            raw = socket.socket(fileno=os.dup(s.fileno()))
            try:
                raw.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(64) + os.urandom(300))
                self.assertTrue(closed_by_peer(s, 10))
            finally:
                raw.close()
                s.close()

    def test_ca_certificate_as_client_certificate(self):
        crt, key = self.srv.certs.ca("clientca")
        ctx = self.ctx_for(crt, key)
        # Default server (RequireAnyClientCert): a CA certificate is not a client identity.
        with self.served():
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", self.srv.port, timeout=10,
                                                   context=ctx)
                conn.request("GET", "/v1/key/list/*")
                r = conn.getresponse()
                body = r.read()
                conn.close()
                self.fail("a CA certificate was accepted as a client identity: %d %r" %
                          (r.status, body))
            except (ssl.SSLError, ConnectionError):
                pass  # refused in the handshake, like a missing certificate
        with kesctest.Server(config={"api": {"/v1/status": {"skip_auth": True}}}) as srv:
            srv.certs.ca("clientca")
            ctx = srv.ssl_context("clientca")
            conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=10, context=ctx)
            conn.request("GET", "/v1/key/list/*")
            r = conn.getresponse()
            body = r.read()
            self.assertEqual((r.status, json.loads(body)["message"]), (400, CERT_REQUIRED))
            conn.request("GET", "/v1/status")
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            conn.close()
            self.assertEqual(srv.request("GET", "/v1/key/list/*").status, 200)
            srv.stop()
            self.assertEqual(srv.sanitizer_report(), "")

    def test_ca_certificate_cannot_lend_identity_of_the_next(self):
        # The admin's certificate is public (it crosses the wire in clear in every TLS 1.2
        # handshake). Sent after a CA certificate whose key the attacker holds, it must not
        # make the attacker the admin: only the first certificate's key is proven.
        crt, key = self.srv.certs.ca("borrower")
        chain = os.path.join(self.srv.dir, "borrow-chain.pem")
        with open(chain, "w") as out:
            for path in (crt, self.srv.certs.cert("admin")):
                with open(path) as f:
                    out.write(f.read())
        with self.served():
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                conn = http.client.HTTPSConnection("127.0.0.1", self.srv.port, timeout=10,
                                                   context=self.ctx_for(chain, key))
                try:
                    conn.request("DELETE", "/v1/key/delete/bystander")
                    r = conn.getresponse()
                    raise AssertionError("served: %d %r" % (r.status, r.read()))
                finally:
                    conn.close()

    def test_expired_client_certificate_is_fingerprinted_not_verified(self):
        ctx = self.ctx_for(*self.expired)
        with self.served():
            conn = http.client.HTTPSConnection("127.0.0.1", self.srv.port, timeout=10,
                                               context=ctx)
            try:
                conn.request("POST", "/v1/key/create/exp-one")
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                conn.request("POST", "/v1/key/create/other")
                r = conn.getresponse()
                body = r.read()
                self.assertEqual((r.status, json.loads(body)["message"]),
                                 (403, "not authorized: insufficient permissions"))
            finally:
                conn.close()

    # ---- HTTP framing ----
    def test_malformed_request_heads(self):
        cases = [
            (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", 431),
            (b"GET /version HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
            (b"GET /version HTTP/1.1\r\nX: a\rb\r\n\r\n", 400),
            (b"GET /version HTTP/1.1\nHost: x\n\n\r\n\r\n", 400),
            (b"GET /version\rHTTP/1.1\r\n\r\n", 400),
            (b"GET  /version HTTP/1.1\r\n\r\n", 400),
            (b"GET /version  HTTP/1.1\r\n\r\n", 400),
            (b"GET /version HTTP/1.1 \r\n\r\n", 505),
            (b"GET /version HTTP/2.0\r\n\r\n", 505),
            (b"GET /version http/1.1\r\n\r\n", 400),
            (b"G(T /version HTTP/1.1\r\n\r\n", 400),
            (b"GET version HTTP/1.1\r\n\r\n", 400),
            (b"GET /ver\x7fsion HTTP/1.1\r\n\r\n", 400),
            (b"GET /version HTTP/1.1\r\nNoColon\r\n\r\n", 400),
            (b"GET /version HTTP/1.1\r\nHost : x\r\n\r\n", 400),
            (b"GET /version HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
            (b"GET /version HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
            (b"GET /version HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
            (b"GET /version HTTP/1.1\r\nX: " + b"v" * 17000 + b"\r\n\r\n", 431),
            (b"PUT /v1/key/encrypt/bystander HTTP/1.1\r\nContent-Length: 1\r\n"
             b"Content-Length: 2\r\n\r\n{}", 400),
            (b"PUT /v1/key/encrypt/bystander HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (b"PUT /v1/key/encrypt/bystander HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}", 400),
            (b"PUT /v1/key/encrypt/bystander HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 400),
            (b"PUT /v1/key/encrypt/bystander HTTP/1.1\r\n"
             b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
            (b"PUT /v1/key/encrypt/bystander HTTP/1.1\r\n"
             b"Content-Length: 18446744073709551617\r\n\r\n", 400),
            (b"PUT /v1/key/encrypt/bystander HTTP/1.1\r\nContent-Length: 1,2\r\n\r\n", 400),
            (b"PUT /v1/key/encrypt/bystander HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
             b"Content-Length: 2\r\n\r\n0\r\n\r\n", 400),
            (b"PUT /v1/key/encrypt/bystander HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (b"PUT /v1/key/encrypt/bystander HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
            (b"PUT /v1/key/encrypt/bystander HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 417),
            (b"FOO /version HTTP/1.1\r\nHost: x\r\n\r\n", 405),
            (b"GET /version HTTP/1.1\r\n\r\n", 400),  # no Host: Go's stock 400
        ]
        with self.served():
            for data, status in cases:
                with self.subTest(data=data[:80]):
                    r = self.exchange(data)
                    self.assertIsNotNone(r, "closed without an answer")
                    self.assertEqual(r.status, status, r)
        # Identical duplicate Content-Length values are one length (RFC 9112 §6.3).
        body = json.dumps({"plaintext": b64(b"dup")}).encode()
        r = self.exchange(b"PUT /v1/key/encrypt/bystander HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n"
                          % (len(body), len(body)) + body)
        self.assertEqual(r.status, 200, r)

    def chunked_put(self, path, chunks, trailer=b""):
        head = (b"PUT %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                % path.encode())
        return self.exchange(head + b"".join(chunks) + b"0\r\n" + trailer + b"\r\n")

    def test_chunked_sizes_extensions_and_trailers(self):
        body = json.dumps({"plaintext": b64(b"chunky")}).encode()
        a, b = body[:10], body[10:]
        with self.served():
            good = [b"%x\r\n%s\r\n" % (len(a), a), b"%x\r\n%s\r\n" % (len(b), b)]
            with_ext = [b"%x;name=value;flag\r\n%s\r\n" % (len(a), a),
                        b"%X ; q=\"x\"\r\n%s\r\n" % (len(b), b)]
            for chunks, trailer in ((good, b""), (with_ext, b""),
                                    (good, b"X-Trailer: 1\r\nY: 2\r\n")):
                r = self.chunked_put("/v1/key/encrypt/bystander", chunks, trailer)
                self.assertEqual(r.status, 200, r)
                ct = r.json()["ciphertext"]
                r = self.srv.request("PUT", "/v1/key/decrypt/bystander",
                                     body={"ciphertext": ct})
                self.assertEqual(r.json()["plaintext"], b64(b"chunky"))
            bad = [
                [b"-1\r\nx\r\n"], [b"zz\r\n"], [b"\r\n"], [b"0x5\r\nhello\r\n"],
                [b"fffffffffffffffffffff\r\nx\r\n"], [b"10000000000000001\r\nx\r\n"],
                [b"5\r\nhelloXX\r\n"], [b"5\nhello\r\n"], [b"5\r\nhello\n"],
                [b"5;" + b"e" * 2000 + b"\r\nhello\r\n"],
            ]
            for chunks in bad:
                with self.subTest(chunks=chunks[0][:40]):
                    r = self.chunked_put("/v1/key/encrypt/bystander", chunks)
                    self.assertIsNotNone(r)
                    self.assertEqual(r.status, 400, r)
            r = self.chunked_put("/v1/key/encrypt/bystander", good,
                                 b"X: " + b"t" * 5000 + b"\r\n")
            self.assertIsNotNone(r)
            self.assertIn(r.status, (400, 431), r)

    def test_body_limit_exactly(self):
        self.new_key("limit-key")
        prefix, suffix = b'{"plaintext":"', b'"}'
        n = (1000000 - len(prefix) - len(suffix)) // 4 * 4
        body = prefix + b"A" * n + suffix
        body += b" " * (1000000 - len(body))
        self.assertEqual(len(body), 1000000)
        with self.served():
            r = self.srv.request("PUT", "/v1/key/encrypt/limit-key", body=body, timeout=60)
            self.assertEqual(r.status, 200, r)
            r = self.srv.request("PUT", "/v1/key/encrypt/limit-key", body=body + b" ", timeout=60)
            self.assert_error(r, 400, BAD_BODY)
            # The same limit applies to a chunked body.
            chunks = [b"%x\r\n%s\r\n" % (len(body) // 2, body[:len(body) // 2]),
                      b"%x\r\n%s\r\n" % (len(body) - len(body) // 2 + 1,
                                         body[len(body) // 2:] + b" ")]
            r = self.chunked_put("/v1/key/encrypt/limit-key", chunks)
            self.assert_error(r, 400, BAD_BODY)

    def test_unauthorized_body_refused_before_it_is_read(self):
        # KES authenticates before its handler reads the body: a client whose certificate
        # maps to no policy gets its 403 at once and the server never buffers its megabyte.
        with self.served():
            for cert in ("unknown", "limited"):
                s = self.srv.tls_socket(cert=cert, timeout=5)
                try:
                    t0 = time.monotonic()
                    s.sendall(b"PUT /v1/key/encrypt/not-yours HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: 1000000\r\n\r\n")
                    try:
                        r = kesctest.ResponseReader(s).read()
                    except (ConnectionError, ssl.SSLError, socket.timeout) as e:
                        self.fail("%s: no answer before the body (%s after %.1fs)"
                                  % (cert, e, time.monotonic() - t0))
                    self.assert_error(r, 403, "not authorized: insufficient permissions")
                    self.assertLess(time.monotonic() - t0, 3)
                finally:
                    s.close()

    # ---- names ----
    def test_percent_encoding_abuse_on_every_key_route(self):
        routes = [("POST", "create"), ("POST", "import"), ("GET", "describe"),
                  ("DELETE", "delete"), ("POST", "generate"), ("POST", "encrypt"),
                  ("POST", "decrypt"), ("POST", "hmac")]
        named = {"a%2Fb": "a/b", "%2Fa": None, "a%2e%2e": "a..", "%C0%AFx": None,
                 "%c0%ae%c0%ae": None, "%E2%98%B0": None, "a%20b": "a b", "my.key": "my.key",
                 "a%2A": "a*", "%2D": "-", "%5F": "_", "%41" * 81: "A" * 81}
        broken = ["%00", "a%00b", "%", "a%2", "%zz", "%0a", "%0D%0A"]
        with self.served():
            for method, route in routes:
                for raw_name, decoded in named.items():
                    with self.subTest(route=route, name=raw_name):
                        r = self.srv.request(method, "/v1/key/%s/%s" % (route, raw_name))
                        self.assertEqual(r.status, 400, r)
                        self.assertTrue(r.message, r)
                        if decoded is not None:
                            self.assertEqual(r.message, name_error(decoded))
                for raw_name in broken:
                    with self.subTest(route=route, name=raw_name):
                        r = self.srv.request(method, "/v1/key/%s/%s" % (route, raw_name))
                        self.assertEqual(r.status, 400, r)
                        self.assertTrue(r.message, r)
            # Escapes that decode to a valid name are that name.
            r = self.srv.request("POST", "/v1/key/create/%70%63%74-key")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(self.srv.request("GET", "/v1/key/describe/pct-key").json()["name"],
                             "pct-key")
            names = self.srv.request("GET", "/v1/key/list/*").json()["names"]
            for n in names:
                self.assertRegex(n, r"^[0-9A-Za-z_-]{1,80}$")

    # ---- JSON and base64 ----
    def test_json_bodies(self):
        self.new_key("json-key")
        path = "/v1/key/encrypt/json-key"
        bad = [
            b"", b"{", b"[" * 100000, b'{"plaintext":' + b"[" * 5000 + b"]" * 5000 + b"}",
            b'{"x":' + b'{"y":' * 200 + b"1" + b"}" * 200 + b',"plaintext":"aGk="}',
            b"[]", b'"aGk="', b"x null", b'{"plaintext":5}', b'{"plaintext":true}',
            b'{"plaintext":["aGk="]}', b'{"plaintext":{"a":1}}', b'{"plaintext":1e400}',
            b'{"plaintext":"aGk=","context":7}', b'{"plaintext":"aGk=",}',
            b"{'plaintext':'aGk='}", b'{"plaintext":"aGk\xff\xfe="}',
            b'{"plaintext":"\xc0\xafaGk="}', b'{"plaintext":"aGk=\\ud800"}',
            b'{"plaintext":"' + b"!" * 900000 + b'"}',
            b'{"plaintext":"aGk=" /* c */}', b'{"plaintext":"aGk=\\x"}',
        ]
        with self.served():
            conn = self.srv.connection()
            try:
                for body in bad:
                    with self.subTest(body=body[:60]):
                        r = self.put(conn, path, body)
                        self.assert_error(r, 400, BAD_BODY)
                # Go's json.Decoder reads the first value and ignores the rest: null (no
                # fields, an empty plaintext) followed by anything is a valid body.
                r = self.put(conn, path, b"null x")
                self.assertEqual(r.status, 200, r)
                # Depth that Go decodes happily, in a field it ignores.
                r = self.put(conn, path, b'{"x":' + b"[" * 30 + b"]" * 30 +
                             b',"plaintext":"aGk="}')
                self.assertEqual(r.status, 200, r)
                # A huge but valid string is encrypted, not refused.
                r = self.put(conn, path, b'{"plaintext":"' + b"A" * 600000 + b'"}')
                self.assertEqual(r.status, 200, r)
                self.assertEqual(len(base64.b64decode(r.json()["ciphertext"])), 450000 + 44)
                # Duplicate fields: the last one wins, as in Go's encoding/json.
                r = self.put(conn, path, b'{"plaintext":"Zmlyc3Q=","plaintext":"bGFzdA=="}')
                self.assertEqual(r.status, 200, r)
                r = self.put(conn, "/v1/key/decrypt/json-key",
                             {"ciphertext": r.json()["ciphertext"]})
                self.assertEqual(r.json()["plaintext"], b64(b"last"))
                # Other routes: the same refusal with their own texts.
                r = self.put(conn, "/v1/key/import/json-imp", b'{"key":5,"cipher":"AES256"}')
                self.assert_error(r, 400, "invalid import key request body")
                for route, body in (("generate", b'{"context":5}'), ("hmac", b'{"message":[]}'),
                                    ("decrypt", b'{"ciphertext":{}}'),
                                    ("generate", b'{"context":"a"}')):
                    r = self.put(conn, "/v1/key/%s/json-key" % route, body)
                    self.assert_error(r, 400, BAD_BODY)
            finally:
                conn.close()

    def test_json_token_flood_does_not_stall_others(self):
        # A body just under the limit made of half a million tiny values in a member nobody
        # reads: whatever the server answers, others must not wait for it.
        self.new_key("flood-key")
        body = b'{"x":[' + b"0," * 499970 + b'0],"plaintext":"aGk="}'
        self.assertLessEqual(len(body), 1000000)
        stop = threading.Event()
        statuses = []

        flood_errors = []

        def flood():
            conn = self.srv.connection(timeout=60)
            try:
                while not stop.is_set():
                    statuses.append(self.put(conn, "/v1/key/encrypt/flood-key", body).status)
            except Exception as e:
                flood_errors.append(repr(e))
            finally:
                conn.close()

        # Enough flooders that every event loop gets some, wherever the kernel puts them.
        threads = [threading.Thread(target=flood, daemon=True) for _ in range(6)]
        with self.served() as b:
            for t in threads:
                t.start()
            time.sleep(1)
            b.latencies.clear()
            time.sleep(4)
            lat = sorted(b.latencies)
            stop.set()
        for t in threads:
            t.join(60)
        self.assertEqual(flood_errors, [])
        self.assertGreaterEqual(len(statuses), 4, "the flood did not happen")
        self.assertTrue(set(statuses) <= {200, 400}, statuses)
        # Bounds that tell a stalled loop (a flood parsed on it blocks everyone behind it for
        # the whole parse, seconds under ASan) from a machine busy with other work.
        self.assertGreater(len(lat), 5, "the good client got %d answers in 4 s" % len(lat))
        p99 = lat[max(0, int(len(lat) * 0.99) - 1)]
        self.assertLess(p99, STALL_S, "p99 %.3fs while another client sends token floods" % p99)

    def test_base64_variants(self):
        self.new_key("b64-key")
        path = "/v1/key/encrypt/b64-key"
        with self.served():
            conn = self.srv.connection()
            try:
                for value in ("aGk", "aG=", "a", "aGk==", "aGk=aGk=", "aG!=", "aGk= ", " aGk=",
                              "aG k=", "aGk=\\t", "-_-_", "aGk=\\u0000", "====", "aGl=x"):
                    with self.subTest(value=value):
                        r = self.put(conn, path, ('{"plaintext":"%s"}' % value).encode())
                        self.assert_error(r, 400, BAD_BODY)
                # Go's StdEncoding skips \r and \n inside base64 (KES decodes []byte with it).
                r = self.put(conn, path, b'{"plaintext":"aG\\r\\nk="}')
                self.assertEqual(r.status, 200, r)
                r = self.put(conn, "/v1/key/decrypt/b64-key",
                             {"ciphertext": r.json()["ciphertext"]})
                self.assertEqual(r.json()["plaintext"], b64(b"hi"))
            finally:
                conn.close()

    # ---- ciphertexts ----
    def msgpack_ct(self, raw):
        sealed, iv, nonce = raw[:-28], raw[-28:-12], raw[-12:]
        alg = b"AES256-GCM_SHA256"
        out = b"\x95" + bytes([0xa0 | len(alg)]) + alg + b"\xd9\x20" + b"0" * 32
        out += b"\xc4\x10" + iv + b"\xc4\x0c" + nonce
        if len(sealed) < 256:
            out += b"\xc4" + bytes([len(sealed)]) + sealed
        else:
            out += b"\xc5" + struct.pack(">H", len(sealed)) + sealed
        return out

    def json_ct(self, raw, algorithm):
        sealed, iv, nonce = raw[:-28], raw[-28:-12], raw[-12:]
        aead = "AES-256-GCM-HMAC-SHA-256" if algorithm == "AES256" else "ChaCha20Poly1305"
        return json.dumps({"aead": aead, "iv": b64(iv), "nonce": b64(nonce),
                           "bytes": b64(sealed)}).encode()

    def test_ciphertexts_not_authentic(self):
        self.new_key("ct-key")
        algorithm = self.srv.request("GET", "/v1/key/describe/ct-key").json()["algorithm"]
        plain = b"sixteen byte msg"
        raw = self.encrypt("ct-key", plain, context=b"ctx")
        self.assertEqual(len(raw), len(plain) + 44)
        with self.served():
            conn = self.srv.connection()
            try:
                def decrypt(ct, context=b"ctx"):
                    return self.put(conn, "/v1/key/decrypt/ct-key",
                                    {"ciphertext": b64(ct), "context": b64(context)})

                for fmt in (raw, self.msgpack_ct(raw), self.json_ct(raw, algorithm)):
                    r = decrypt(fmt)
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.json()["plaintext"], b64(plain))
                self.assert_error(decrypt(raw, b"other"), 400, DECRYPT_FAILED)
                candidates = [b"", b"\x00", os.urandom(28), os.urandom(29), os.urandom(44),
                              raw[:28], raw[-29:], raw[:44], b"\x95", b"{", b"{}", b"\x95" * 60,
                              b"{" + os.urandom(60)]
                for fmt in (self.msgpack_ct(raw), self.json_ct(raw, algorithm)):
                    candidates += [fmt[:i] for i in range(1, len(fmt))]
                    candidates.append(fmt + b"\x00")
                for ct in candidates:
                    with self.subTest(ct=ct[:40]):
                        self.assert_error(decrypt(ct), 400, DECRYPT_FAILED)
                for bit in range(len(raw) * 8):
                    flipped = bytearray(raw)
                    flipped[bit // 8] ^= 1 << (bit % 8)
                    r = decrypt(bytes(flipped))
                    if (r.status, r.message) != (400, DECRYPT_FAILED):
                        self.fail("bit %d flipped: %r" % (bit, r))
            finally:
                conn.close()

    # ---- slow, half-closed and vanishing clients ----
    def test_slow_clients_do_not_hurt_others(self):
        socks = []
        try:
            for _ in range(200):
                socks.append(self.srv.tls_socket(timeout=30))
            request = b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
            with self.served() as b:
                b.latencies.clear()
                for i in range(6):
                    for s in socks:
                        try:
                            s.sendall(request[i:i + 1])
                        except (ConnectionError, ssl.SSLError, OSError):
                            pass
                    time.sleep(1)
                lat = sorted(b.latencies)
            self.assertGreater(len(lat), 50)
            p99 = lat[int(len(lat) * 0.99) - 1]
            self.assertLess(p99, STALL_S, "p99 %.3fs with 200 slow clients" % p99)
            # The dribblers never completed a request: the header timeout ends them.
            for s in socks[:20]:
                self.assertTrue(closed_by_peer(s, HEADER_TIMEOUT_S + 8))
        finally:
            for s in socks:
                s.close()

    def test_half_closed_connection_still_answered(self):
        with self.served():
            s = self.srv.tls_socket()
            try:
                s.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
                # TCP FIN without a TLS close_notify (SSLSocket.shutdown would drop TLS).
                raw = socket.socket(fileno=os.dup(s.fileno()))
                raw.shutdown(socket.SHUT_WR)
                raw.close()
                r = kesctest.ResponseReader(s).read()
                self.assertEqual(r.status, 200)
                self.assertTrue(closed_by_peer(s, 10))
            finally:
                s.close()

    def test_reset_mid_response(self):
        self.new_key("reset-key")
        body = json.dumps({"plaintext": b64(os.urandom(600000))}).encode()
        req = (b"PUT /v1/key/encrypt/reset-key HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % len(body)) + body
        with self.served():
            for _ in range(5):
                s = self.srv.tls_socket()
                try:
                    s.sendall(req + req)
                    s.recv(1000)  # the first bytes of a ~800 kB answer
                finally:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()  # RST while the server still writes
            time.sleep(0.5)

    # ---- races ----
    def test_concurrent_creates_of_one_name(self):
        n = 50
        conns = [self.srv.connection(timeout=30) for _ in range(n)]
        for c in conns:
            c.connect()
        barrier = threading.Barrier(n)
        results = [None] * n

        def create(i):
            try:
                barrier.wait(10)
                conns[i].request("POST", "/v1/key/create/race-key")
                r = conns[i].getresponse()
                body = r.read()
                msg = json.loads(body)["message"] if body else None
                generated = None
                if r.status == 200:
                    conns[i].request("POST", "/v1/key/generate/race-key")
                    g = conns[i].getresponse()
                    generated = json.loads(g.read())
                results[i] = (r.status, msg, generated)
            except Exception as e:
                results[i] = ("error", repr(e), None)

        with self.served():
            threads = [threading.Thread(target=create, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        for c in conns:
            c.close()
        ok = [r for r in results if r and r[0] == 200]
        self.assertEqual(len(ok), 1, results)
        for r in results:
            if r[0] != 200:
                self.assertEqual(r[:2], (400, "key already exists"))
        generated = ok[0][2]
        r = self.srv.request("PUT", "/v1/key/decrypt/race-key",
                             body={"ciphertext": generated["ciphertext"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["plaintext"], generated["plaintext"])


def metric(text, name, labels=""):
    """The value of one sample of /v1/metrics' exposition text, or None."""
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


class ConnectionCapTest(unittest.TestCase):
    """server.max_connections under attack, scaled down: sockets that never send a TLS byte
    must not keep legitimate clients out, authenticated keep-alive connections are kept, and
    what is refused is logged (a few lines, not one per connection)."""

    CAP = 12

    def tcp(self, srv):
        return socket.create_connection(("127.0.0.1", srv.port), timeout=10)

    def limit_lines(self, srv):
        return [l for l in srv.stderr_text().splitlines() if "connection limit" in l]

    def assert_clean(self, srv):
        self.assertEqual(srv.stop(), 0)
        self.assertEqual(srv.sanitizer_report(), "")

    def test_silent_sockets_do_not_lock_out_clients(self):
        cfg = {"server": {"max_connections": self.CAP, "handshake_timeout": "60s"}}
        with kesctest.Server(config=cfg) as srv:
            silent = [self.tcp(srv) for _ in range(self.CAP + 4)]
            time.sleep(0.5)
            failures = []
            for i in range(15):
                try:
                    r = srv.request("GET", "/v1/key/list/*", timeout=10)
                    if r.status != 200:
                        failures.append(r.status)
                except (OSError, ssl.SSLError, http.client.HTTPException) as e:
                    failures.append(repr(e))
                silent.append(self.tcp(srv))  # the attacker keeps the limit full
                time.sleep(0.05)
            self.assertEqual(failures, [], "legitimate clients locked out")
            lines = self.limit_lines(srv)
            self.assertTrue(lines, "nothing logged about the connection limit")
            self.assertIn("127.0.0.1", lines[0])
            self.assertLessEqual(len(lines), 6, "\n".join(lines))
            text = srv.request("GET", "/v1/metrics").body.decode()
            self.assertGreaterEqual(
                metric(text, "kesc_connections_refused_total", '{reason="shed"}'), 15)
            for s in silent:
                s.close()
            self.assert_clean(srv)

    def test_authenticated_keep_alive_connections_are_kept(self):
        cap = 6
        cfg = {"server": {"max_connections": cap, "handshake_timeout": "60s"}}
        with kesctest.Server(config=cfg) as srv:
            def ask(conn):
                conn.request("GET", "/v1/key/list/*")
                r = conn.getresponse()
                r.read()
                return r.status

            kept = [srv.connection() for _ in range(3)]
            self.assertEqual([ask(c) for c in kept], [200] * 3)
            silent = [self.tcp(srv) for _ in range(10)]
            time.sleep(0.5)
            # The silent sockets pushed out only each other: the keep-alive ones still work,
            # and a new client takes the place of a silent one.
            self.assertEqual([ask(c) for c in kept], [200] * 3)
            self.assertEqual(srv.request("GET", "/v1/key/list/*").status, 200)
            for s in silent:
                s.close()
            time.sleep(0.5)
            # Every place held by an authenticated connection: a new one is refused, and
            # the refusal is logged with its address.
            kept += [srv.connection() for _ in range(cap - 3)]
            self.assertEqual([ask(c) for c in kept], [200] * cap)
            with self.assertRaises((OSError, ssl.SSLError, http.client.HTTPException)):
                srv.request("GET", "/v1/key/list/*", timeout=10)
            deadline = time.monotonic() + 10
            while not any("refused" in l for l in self.limit_lines(srv)):
                self.assertLess(time.monotonic(), deadline, srv.stderr_text())
                time.sleep(0.1)
            self.assertEqual([ask(c) for c in kept], [200] * cap)
            kept[0].request("GET", "/v1/metrics")
            text = kept[0].getresponse().read().decode()
            self.assertGreaterEqual(
                metric(text, "kesc_connections_refused_total", '{reason="max_connections"}'), 1)
            for c in kept:
                c.close()
            self.assert_clean(srv)

    def test_idle_connection_of_an_unknown_identity_makes_room(self):
        cap = 4
        cfg = {"server": {"max_connections": cap, "handshake_timeout": "60s"}}
        with kesctest.Server(config=cfg) as srv:
            kept = [srv.connection() for _ in range(cap - 1)]
            for c in kept:
                c.request("GET", "/v1/key/list/*")
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
            stranger = srv.tls_socket(cert="unknown")  # no policy: it can only get 403s
            stranger.sendall(b"GET /v1/key/list/* HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(kesctest.ResponseReader(stranger).read().status, 403)
            # At the limit: the idle stranger gives up its place, the admin's are kept.
            self.assertEqual(srv.request("GET", "/v1/key/list/*").status, 200)
            self.assertTrue(closed_by_peer(stranger, timeout=10))
            for c in kept:
                c.request("GET", "/v1/key/list/*")
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                c.close()
            stranger.close()
            self.assertTrue(any("no policy" in l for l in self.limit_lines(srv)),
                            srv.stderr_text()[-2000:])
            self.assert_clean(srv)


if __name__ == "__main__":
    unittest.main(verbosity=2)
