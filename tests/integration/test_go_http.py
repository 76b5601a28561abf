#!/usr/bin/env python3
"""The HTTP details Go's net/http adds to every KES reply, pinned against the real kesc server:
a Date header on every reply, http.Error's plain-text 404 with X-Content-Type-Options, Go's
reason phrase for each status (http.StatusText), request bodies decoded as json.Decoder.Decode
does (the first JSON value counts, whatever follows is ignored), and Go's stock 400 for an
HTTP/1.1 request without a (valid, single) Host header. The expected bytes are those Go 1.24's
net/http writes (server.go: readRequest, conn.serve; http.Error; http.TimeFormat).

Environment: KESC_BIN (the kesc binary).
"""
import base64
import datetime
import email.utils
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402

DATE_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct"
                     r"|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$")


def b64(data):
    return base64.b64encode(data).decode()


def go_stock_400(text):
    """What Go's conn.serve writes for a statusError before closing the connection."""
    line = "400 Bad Request: " + text
    return ("HTTP/1.1 " + line + "\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Connection: close\r\n\r\n" + line).encode()


class GoHTTPTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = kesctest.Server()
        cls.srv.request("POST", "/v1/key/create/go-key")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        report = cls.srv.sanitizer_report()
        cls.srv.cleanup()
        assert report == "", report

    def assert_date(self, r, what):
        date = r.headers.get("date")
        self.assertIsNotNone(date, "%s: no Date header: %r" % (what, r.headers))
        self.assertRegex(date, DATE_RE, what)
        when = email.utils.parsedate_to_datetime(date)
        now = datetime.datetime.now(datetime.timezone.utc)
        # A generous bound: the header is the server's clock, not a latency measurement.
        self.assertLess(abs((when - now).total_seconds()), 3600, what)

    def test_date_on_every_reply(self):
        replies = {
            "200 JSON": self.srv.request("GET", "/version"),
            "200 empty": self.srv.request("POST", "/v1/key/create/go-date-key"),
            "400 JSON": self.srv.request("POST", "/v1/key/create/go-date-key"),
            "403": self.srv.request("GET", "/v1/key/list/*", cert="unknown"),
            "404 text": self.srv.request("GET", "/no/such/path"),
            "405": self.srv.request("GET", "/v1/key/create/x"),
            "metrics": self.srv.request("GET", "/v1/metrics"),
        }
        for what, r in replies.items():
            with self.subTest(what=what):
                self.assert_date(r, what)
        # A log stream: only the head is read.
        s = self.srv.tls_socket()
        try:
            s.sendall(b"GET /v1/log/error HTTP/1.1\r\nHost: x\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                self.assertTrue(chunk, "stream closed")
                head += chunk
        finally:
            s.close()
        lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
        dates = [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("date:")]
        self.assertEqual(len(dates), 1, lines)
        self.assertRegex(dates[0], DATE_RE)

    def test_not_found_is_go_http_error(self):
        r = self.srv.request("GET", "/v2/nothing")
        self.assertEqual((r.status, r.reason, r.body), (404, "Not Found", b"404 page not found\n"))
        self.assertEqual(r.headers.get("content-type"), "text/plain; charset=utf-8")
        self.assertEqual(r.headers.get("x-content-type-options"), "nosniff")
        # KES's JSON errors come from its own Fail, not http.Error: no nosniff there.
        r = self.srv.request("GET", "/v1/key/describe/no-such-key")
        self.assertEqual((r.status, r.message), (404, "key does not exist"))
        self.assertNotIn("x-content-type-options", r.headers)

    def test_reason_phrases(self):
        cases = [
            (self.srv.request("GET", "/version"), 200, "OK"),
            (self.srv.request("POST", "/v1/key/import/go-short",
                              body={"key": b64(b"short"), "cipher": "AES256"}), 406,
             "Not Acceptable"),
            (self.srv.request("POST", "/v1/key/import/go-alg",
                              body={"key": b64(b"k" * 32), "cipher": "DES"}), 406,
             "Not Acceptable"),
            (self.srv.request("GET", "/v1/key/create/x"), 405, "Method Not Allowed"),
            (self.srv.request("GET", "/v1/key/list/*", cert="unknown"), 403, "Forbidden"),
            (self.srv.request("GET", "/v1/key/describe/nope"), 404, "Not Found"),
            (self.srv.request("POST", "/v1/key/create/go-key"), 400, "Bad Request"),
        ]
        for r, status, reason in cases:
            with self.subTest(status=status):
                self.assertEqual((r.status, r.reason), (status, reason), r)

    def encrypt(self, body):
        return self.srv.request("PUT", "/v1/key/encrypt/go-key", body=body)

    def decrypt(self, ciphertext):
        r = self.srv.request("PUT", "/v1/key/decrypt/go-key", body={"ciphertext": ciphertext})
        self.assertEqual(r.status, 200, r)
        return base64.b64decode(r.json()["plaintext"])

    def test_body_first_json_value_counts(self):
        first = '{"plaintext":"%s"}' % b64(b"hello")
        for rest in ('{"x":1}', '{"plaintext":"%s"}' % b64(b"world"), "garbage", "}", "[",
                     "   \n", "\x00\xff", ""):
            with self.subTest(rest=rest):
                r = self.encrypt(first + rest)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(self.decrypt(r.json()["ciphertext"]), b"hello")
        # The first value decides: not an object, or not complete, is still refused.
        for body in ('[{"plaintext":"aGk="}]', '{"plaintext":', '{"plaintext":"aGk="',
                     '"x"{"plaintext":"aGk="}', "  "):
            with self.subTest(body=body):
                r = self.encrypt(body)
                self.assertEqual((r.status, r.message), (400, "invalid request body"), r)
        # null is Go's "no fields": a data key without context.
        r = self.srv.request("PUT", "/v1/key/generate/go-key", body='null{"context":"!"}')
        self.assertEqual(r.status, 200, r)

    def test_missing_host_is_go_stock_400(self):
        self.assertEqual(self.srv.raw(b"GET /version HTTP/1.1\r\n\r\n"),
                         go_stock_400("missing required Host header"))
        self.assertEqual(self.srv.raw(b"PUT /v1/key/encrypt/go-key HTTP/1.1\r\n"
                                      b"Content-Length: 2\r\n\r\n{}"),
                         go_stock_400("missing required Host header"))
        self.assertEqual(self.srv.raw(b"GET /version HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
                         go_stock_400("too many Host headers"))
        self.assertEqual(self.srv.raw(b"GET /version HTTP/1.1\r\nHost: a/b\r\n\r\n"),
                         go_stock_400("malformed Host header"))
        # HTTP/1.0 needs no Host; an empty Host is a Host; IPv6 literals and ports are fine.
        for req in (b"GET /version HTTP/1.0\r\n\r\n", b"GET /version HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n",
                    b"GET /version HTTP/1.1\r\nHost: [::1]:7373\r\nConnection: close\r\n\r\n"):
            with self.subTest(req=req):
                out = self.srv.raw(req)
                self.assertTrue(out.startswith(b"HTTP/1.1 200 OK\r\n"), out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
