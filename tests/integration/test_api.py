"""API tests through the real `kesc server` over mTLS: MinIO's call sequence with MinIO's
recommended policy, the exact error bytes kms-go compares, status/metrics/api/version,
policy and identity views, the api: section, log streams, keys that survive a restart.
"""

import base64
import json
import os
import shutil
import ssl
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402

NOT_AUTHORIZED = "not authorized: insufficient permissions"

# kes.md §11.6, with the identity of the "minio" client certificate.
MINIO_POLICY = {
    "minio": {
        "allow": ["/v1/key/create/*", "/v1/key/generate/*", "/v1/key/decrypt/*",
                  "/v1/key/bulk/decrypt", "/v1/key/list/*", "/v1/status", "/v1/metrics",
                  "/v1/log/audit", "/v1/log/error"],
        "deny": [],
        "identities": ["minio"],
    },
    "limited": {
        "allow": ["/v1/key/create/my*", "/v1/key/create/your*"],
        "deny": ["/v1/key/create/my-key*"],
        "identities": ["limited"],
    },
}

ZERO_KEY = base64.b64encode(bytes(32)).decode()
# KES HEAD's raw ciphertext of 16 zero bytes under the all-zero AES256 key (kes.md §7.4 #5)
KES_VECTOR = "zwdDgHeRlIFRnJ7+DIhs/ka7GFK2CFSfDELqg1VCyTQzZ58o7MAdupMLk3ZjlMo2ZUDwldL2o41nAWDc"


def minio_context(bucket, obj):
    """MinIO's context bytes: canonical JSON {"<bucket>":"<bucket>/<object>"} (kes.md §11.3)."""
    return json.dumps({bucket: bucket + "/" + obj}, separators=(",", ":")).encode()


def b64(data):
    return base64.b64encode(data).decode()


def error_bytes(message):
    """KES's error body: the JSON-encoded message, newline inside the braces."""
    return b'{"message":' + json.dumps(message).encode() + b"\n}"


def metrics_text(srv):
    r = srv.request("GET", "/v1/metrics")
    assert r.status == 200, r
    return r.body.decode()


class ApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The harness makes admin/limited/unknown; MinIO's certificate is made first so the
        # policy can name its identity, then copied next to the others.
        cls.minio_dir = tempfile.mkdtemp(prefix="kesctest-minio-")
        certs = kesctest.Certs(cls.minio_dir)
        certs.client("minio")
        policies = json.loads(json.dumps(MINIO_POLICY))
        policies["minio"]["identities"] = [certs.identity("minio")]
        cls.srv = kesctest.Server(policies=policies, start=False)
        try:
            shutil.copy(certs.cert("minio"), cls.srv.certs.cert("minio"))
            shutil.copy(certs.key("minio"), cls.srv.certs.key("minio"))
            cls.srv.start()
        except Exception:
            cls.srv.cleanup()
            raise
        finally:
            shutil.rmtree(cls.minio_dir, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        report = cls.srv.sanitizer_report()
        cls.srv.cleanup()
        if report:
            raise AssertionError("sanitizer findings:\n" + report)
        if code != 0:
            raise AssertionError("server exit code %r" % code)

    def req(self, method, path, body=b"", cert="admin"):
        return self.srv.request(method, path, body=body, cert=cert)

    def assert_error(self, r, status, message):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.body, error_bytes(message))
        self.assertEqual(r.headers.get("content-type"), "application/json")

    def assert_empty_ok(self, r):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"")
        self.assertNotIn("content-type", r.headers)

    def test_minio_startup_and_sse_flow(self):
        # handleKMSConfig: generate the default key; on 404 create it; then generate again.
        r = self.req("POST", "/v1/key/generate/minio-default", "{}", cert="minio")
        self.assert_error(r, 404, "key does not exist")
        self.assert_empty_ok(self.req("POST", "/v1/key/create/minio-default", cert="minio"))
        self.assert_error(self.req("POST", "/v1/key/create/minio-default", cert="minio"), 400,
                          "key already exists")
        r = self.req("POST", "/v1/key/generate/minio-default", {"context": b64(b"{}")},
                     cert="minio")
        self.assertEqual(r.status, 200)
        self.assertEqual(list(r.json().keys()), ["plaintext", "ciphertext"])

        # SSE-S3 PUT then GET: generate with the object's context, decrypt with it.
        ctx = minio_context("bucket", "dir/object.txt")
        r = self.req("POST", "/v1/key/generate/minio-default", {"context": b64(ctx)},
                     cert="minio")
        self.assertEqual(r.status, 200)
        dek = base64.b64decode(r.json()["plaintext"])
        sealed = r.json()["ciphertext"]
        self.assertEqual(len(dek), 32)
        self.assertEqual(len(base64.b64decode(sealed)), 32 + 44)
        r = self.req("POST", "/v1/key/decrypt/minio-default",
                     {"ciphertext": sealed, "context": b64(ctx)}, cert="minio")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'{"plaintext":"' + b64(dek).encode() + b'"}\n')
        # another object's context, or none: ErrDecrypt exactly
        other = minio_context("bucket", "other")
        r = self.req("POST", "/v1/key/decrypt/minio-default",
                     {"ciphertext": sealed, "context": b64(other)}, cert="minio")
        self.assert_error(r, 400, "decryption failed: ciphertext is not authentic")
        r = self.req("POST", "/v1/key/decrypt/minio-default", {"ciphertext": sealed},
                     cert="minio")
        self.assert_error(r, 400, "decryption failed: ciphertext is not authentic")

        # What MinIO is not granted by this policy: 403 with KES's text.
        for method, path in [("GET", "/v1/key/describe/minio-default"),
                             ("DELETE", "/v1/key/delete/minio-default"),
                             ("PUT", "/v1/key/hmac/minio-default"),
                             ("POST", "/v1/key/import/minio-x"),
                             ("GET", "/v1/api"), ("GET", "/v1/policy/list/*")]:
            self.assert_error(self.req(method, path, "{}", cert="minio"), 403, NOT_AUTHORIZED)

        # mc admin kms key list: kms-go sends "*" escaped, and "" as the bare root path
        for path in ["/v1/key/list/%2A", "/v1/key/list/*", "/v1/key/list/", "/v1/key/list"]:
            r = self.req("GET", path, cert="minio")
            self.assertEqual(r.status, 200, path)
            self.assertIn("minio-default", r.json()["names"])
        # mc admin info: status per endpoint
        self.assertEqual(self.req("GET", "/v1/status", cert="minio").status, 200)

    def test_hmac_root_credentials(self):
        self.assert_empty_ok(self.req("PUT", "/v1/key/create/hmac-key"))
        macs = []
        for _ in range(2):
            r = self.req("PUT", "/v1/key/hmac/hmac-key", {"message": b64(b"root access key")})
            self.assertEqual(r.status, 200)
            self.assertEqual(list(r.json()), ["hmac"])
            macs.append(base64.b64decode(r.json()["hmac"]))
        self.assertEqual(len(macs[0]), 32)
        self.assertEqual(macs[0], macs[1])
        r = self.req("PUT", "/v1/key/hmac/hmac-key", {"message": b64(b"root secret key")})
        self.assertNotEqual(base64.b64decode(r.json()["hmac"]), macs[0])
        self.assert_error(self.req("PUT", "/v1/key/hmac/no-such-key", "{}"), 404,
                          "key does not exist")

    def test_key_lifecycle_and_errors(self):
        self.assert_empty_ok(self.req("PUT", "/v1/key/create/life-1"))
        r = self.req("GET", "/v1/key/describe/life-1")
        self.assertEqual(r.status, 200)
        d = json.loads(r.body, object_pairs_hook=lambda p: p)
        self.assertEqual([k for k, _ in d], ["name", "algorithm", "created_at", "created_by"])
        d = dict(d)
        self.assertEqual(d["name"], "life-1")
        self.assertIn(d["algorithm"], ("AES256", "ChaCha20"))
        self.assertEqual(d["created_by"], self.srv.identity("admin"))
        self.assertRegex(d["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")

        self.assert_empty_ok(self.req("DELETE", "/v1/key/delete/life-1"))
        self.assert_error(self.req("DELETE", "/v1/key/delete/life-1"), 404, "key does not exist")
        self.assert_error(self.req("GET", "/v1/key/describe/life-1"), 404, "key does not exist")
        self.assert_error(self.req("PUT", "/v1/key/create/my.key"), 400,
                          "key name 'my.key' is empty, too long or contains invalid characters")
        r = self.req("PUT", "/v1/key/create/hel%3Clo")  # Go's encoder escapes <
        self.assertEqual((r.status, r.body), (400, b'{"message":"key name \'hel\\u003clo\' is '
                                              b'empty, too long or contains invalid '
                                              b'characters"\n}'))
        self.assert_error(self.req("GET", "/v1/key/list/*-*"), 400,
                          "listing pattern '*-*' is empty, too long or is invalid")
        self.assert_error(self.req("POST", "/v1/key/encrypt/x", "not json"), 400,
                          "invalid request body")
        r = self.req("GET", "/v1/key/create/x")
        self.assert_error(r, 405, "received method 'GET' expected 'PUT'")
        self.assertEqual(r.headers.get("accept"), "PUT")
        r = self.req("GET", "/v1/nothing")
        self.assertEqual((r.status, r.body), (404, b"404 page not found\n"))
        self.assertEqual(r.headers.get("content-type"), "text/plain; charset=utf-8")

    def test_import_and_kes_ciphertext(self):
        body = {"key": ZERO_KEY, "cipher": "AES256"}
        self.assert_empty_ok(self.req("POST", "/v1/key/import/imported", body))
        self.assert_error(self.req("POST", "/v1/key/import/imported", body), 400,
                          "key already exists")
        self.assert_error(self.req("POST", "/v1/key/import/x", {"key": ZERO_KEY,
                                                                "cipher": "DES"}),
                          406, "algorithm 'DES' is not supported")
        self.assert_error(self.req("POST", "/v1/key/import/x", {"key": b64(b"short"),
                                                                "cipher": "AES256"}),
                          406, "invalid key size for 'AES256'")
        self.assert_error(self.req("POST", "/v1/key/import/x", "{"), 400,
                          "invalid import key request body")
        r = self.req("POST", "/v1/key/decrypt/imported", {"ciphertext": KES_VECTOR})
        self.assertEqual(r.status, 200)
        self.assertEqual(base64.b64decode(r.json()["plaintext"]), bytes(16))
        # encrypt → decrypt with a context
        r = self.req("POST", "/v1/key/encrypt/imported",
                     {"plaintext": b64(b"secret"), "context": b64(b"ctx")})
        self.assertEqual(r.status, 200)
        r = self.req("POST", "/v1/key/decrypt/imported",
                     {"ciphertext": r.json()["ciphertext"], "context": b64(b"ctx")})
        self.assertEqual(r.json(), {"plaintext": b64(b"secret")})

    def test_list_returns_everything_in_one_reply(self):
        # KES caps a reply at 1024 names and its continue_at is then misused as a prefix;
        # we return all matches, sorted, once, without continue_at.
        conn = self.srv.connection()
        names = ["bulk-%04d" % i for i in range(1030)]
        try:
            for n in names:
                conn.request("PUT", "/v1/key/create/" + n)
                resp = conn.getresponse()
                resp.read()
                self.assertEqual(resp.status, 200)
        finally:
            conn.close()
        r = self.req("GET", "/v1/key/list/bulk-*")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"names": names})
        r = self.req("GET", "/v1/key/list/bulk-1")
        self.assertEqual(r.json()["names"], names[1000:])
        self.assertEqual(self.req("GET", "/v1/key/list/zzz").body, b'{"names":[]}\n')

    def test_policy_enforcement(self):
        # KES's own policy vectors: deny wins over allow
        self.assert_error(self.req("PUT", "/v1/key/create/my-key", cert="limited"), 403,
                          NOT_AUTHORIZED)
        self.assert_error(self.req("PUT", "/v1/key/create/my-key1", cert="limited"), 403,
                          NOT_AUTHORIZED)
        self.assert_empty_ok(self.req("PUT", "/v1/key/create/my-minio-key", cert="limited"))
        self.assert_empty_ok(self.req("PUT", "/v1/key/create/your-minio-key", cert="limited"))
        self.assert_error(self.req("GET", "/v1/status", cert="limited"), 403, NOT_AUTHORIZED)
        self.assert_error(self.req("GET", "/v1/status", cert="unknown"), 403, NOT_AUTHORIZED)
        # /version needs no policy
        self.assertEqual(self.req("GET", "/version", cert="unknown").status, 200)

    def test_status_version_api_metrics(self):
        r = self.req("GET", "/version")
        self.assertEqual(r.status, 200)
        self.assertEqual(list(r.json()), ["version", "commit"])

        r = self.req("GET", "/v1/status")
        self.assertEqual(r.status, 200)
        keys = [k for k, _ in json.loads(r.body, object_pairs_hook=lambda p: p)]
        self.assertEqual(keys, ["version", "os", "arch", "uptime", "num_cpu", "num_cpu_used",
                                "mem_heap_used", "mem_stack_used", "keystore_latency"])
        st = r.json()
        self.assertEqual(st["os"], "linux")
        self.assertGreaterEqual(st["keystore_latency"], 1)
        self.assertGreaterEqual(st["num_cpu"], 1)

        self.assert_empty_ok(self.req("GET", "/v1/ready"))

        r = self.req("GET", "/v1/api")
        self.assertEqual(r.status, 200)
        routes = r.json()
        # KES HEAD's 22 routes and bulk decrypt first, then kesc's 5 for key versions and
        # deletion protection
        self.assertEqual(len(routes), 28)
        self.assertEqual([x["path"] for x in routes[23:]],
                         ["/v1/key/rotate/", "/v1/key/rewrap/", "/v1/key/retire/",
                          "/v1/key/restore/", "/v1/key/purge/"])
        self.assertEqual(routes[0], {"method": "GET", "path": "/version", "max_body": 0,
                                     "timeout": 10})
        by_path = {x["path"]: x for x in routes}
        self.assertEqual(by_path["/v1/key/decrypt/"],
                         {"method": "PUT", "path": "/v1/key/decrypt/", "max_body": 1000000,
                          "timeout": 15})
        self.assertEqual(by_path["/v1/log/audit"]["timeout"], 0)
        self.assertEqual(by_path["/v1/key/bulk/decrypt/"],
                         {"method": "POST", "path": "/v1/key/bulk/decrypt/",
                          "max_body": 1048576, "timeout": 15})

        self.req("POST", "/v1/key/generate/does-not-exist", "{}")
        r = self.req("GET", "/v1/metrics", cert="minio")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        text = r.body.decode()
        for name in ["kes_http_request_success", "kes_http_request_error",
                     "kes_http_request_active",
                     "kes_http_response_time", "kes_log_error_events", "kes_log_audit_events",
                     "kes_system_up_time", "kes_system_num_cpu", "kes_system_num_cpu_used",
                     "kes_system_num_threads", "kes_system_mem_heap_used",
                     "kes_system_mem_heap_objects", "kes_system_mem_stack_used",
                     "kesc_keystore_latency_seconds", "kesc_keystore_reachable",
                     "kesc_secret_memory_locked",
                     "kesc_cache_hits_total",
                     "kesc_cache_misses_total", "kesc_keystore_reads_total",
                     "kesc_connections_open"]:
            self.assertIn("\n# TYPE %s " % name, "\n" + text, name)
        self.assertIn('kes_http_request_error{code="404"} ', text)
        self.assertIn('kes_http_response_time_bucket{le="+Inf"} ', text)

    def test_policy_and_identity_views(self):
        admin, minio = self.srv.identity("admin"), self.srv.identity("minio")
        limited = self.srv.identity("limited")
        r = self.req("GET", "/v1/policy/list/*")
        self.assertEqual(r.json(), {"names": ["limited", "minio"], "continue_at": ""})
        r = self.req("GET", "/v1/policy/read/limited")
        p = r.json()
        self.assertEqual(p["allow"], {"/v1/key/create/my*": {}, "/v1/key/create/your*": {}})
        self.assertEqual(p["deny"], {"/v1/key/create/my-key*": {}})
        self.assertEqual(p["created_by"], admin)
        r = self.req("GET", "/v1/policy/describe/minio")
        self.assertEqual(list(r.json()), ["name", "created_at", "created_by"])
        self.assert_error(self.req("GET", "/v1/policy/describe/nope"), 404,
                          "policy does not exist")
        r = self.req("GET", "/v1/identity/list/")
        self.assertEqual(r.json()["identities"], sorted([admin, minio, limited]))
        r = self.req("GET", "/v1/identity/describe/" + minio)
        self.assertEqual(r.json()["policy"], "minio")
        r = self.req("GET", "/v1/identity/describe/" + admin)
        self.assertEqual(r.json()["admin"], True)
        self.assert_error(self.req("GET", "/v1/identity/describe/" + "0" * 64), 404,
                          "identity does not exist")
        # self/describe works for every caller with a policy (KES HEAD: 404 for non-admins)
        r = self.req("GET", "/v1/identity/self/describe", cert="minio")
        self.assertEqual(r.status, 200)
        d = r.json()
        self.assertEqual((d["identity"], d["policy"]), (minio, "minio"))
        self.assertIn("/v1/key/generate/*", d["allow"])
        r = self.req("GET", "/v1/identity/self/describe")
        self.assertEqual(r.json()["admin"], True)
        self.assert_error(self.req("GET", "/v1/identity/self/describe", cert="unknown"), 404,
                          "identity does not exist")

    def test_audit_log_stream(self):
        sock = self.srv.tls_socket(cert="minio", timeout=10)
        try:
            sock.sendall(b"GET /v1/log/audit HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                self.assertTrue(chunk)
                data += chunk
            head = data.split(b"\r\n\r\n", 1)[0].decode().lower()
            self.assertTrue(head.startswith("http/1.1 200"), head)
            self.assertIn("content-type: application/x-ndjson", head)
            deadline = time.monotonic() + 10
            while b"/v1/key/describe/stream-probe" not in data:
                self.req("GET", "/v1/key/describe/stream-probe")
                self.assertLess(time.monotonic(), deadline, data)
                try:
                    data += sock.recv(65536)
                except TimeoutError:
                    pass
        finally:
            sock.close()


def metric_value(text, series):
    """The value of one series line (name plus labels exactly as printed), or None."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


class MetricSemanticsTest(unittest.TestCase):
    """/v1/metrics counts what KES counts under KES's names (dashboards and alerts built for
    KES read them): only key, policy and identity requests that passed the method check and
    authentication; kes_log_*_events are events delivered to /v1/log/* subscribers; a labelled
    family appears once it has a sample. kesc's own figures have kesc_ names."""

    def test_what_kes_counts(self):
        with kesctest.Server() as srv:
            text = metrics_text(srv)
            # Nothing was answered yet: no request family at all, as Go's client prints none.
            for family in ("kes_http_request_success", "kes_http_request_error",
                           "kes_http_request_failure"):
                self.assertNotIn("# TYPE %s " % family, text)
            self.assertEqual(metric_value(text, "kes_log_audit_events"), 0)
            self.assertIn("# HELP kes_system_mem_stack_used The bytes of stack memory "
                          "obtained from the OS.\n", text)

            # Refused before KES's counters: a wrong method, no permission, no certificate.
            self.assertEqual(srv.request("GET", "/v1/key/create/m").status, 405)
            self.assertEqual(srv.request("POST", "/v1/key/create/m", cert="limited").status,
                             403)
            self.assertEqual(srv.request("POST", "/v1/key/create/m", cert="unknown").status,
                             403)
            # Counted: handlers' answers, 2xx and 4xx alike.
            self.assertEqual(srv.request("POST", "/v1/key/create/limited-m",
                                         cert="limited").status, 200)
            self.assertEqual(srv.request("GET", "/v1/key/describe/none").status, 404)
            text = metrics_text(srv)
            self.assertEqual(metric_value(text, 'kes_http_request_success{code="200"}'), 1)
            self.assertEqual(metric_value(text, 'kes_http_request_error{code="404"}'), 1)
            self.assertIsNone(metric_value(text, 'kes_http_request_error{code="403"}'))
            self.assertIsNone(metric_value(text, 'kes_http_request_error{code="405"}'))
            self.assertNotIn("# TYPE kes_http_request_failure ", text)
            self.assertIn("# HELP kes_http_request_error Number of request that failed due to "
                          "some error. (HTTP 4xx status code)\n", text)
            self.assertEqual(metric_value(text, "kes_http_response_time_count"), 2)
            # Audit records were written, but none was streamed to a subscriber.
            self.assertEqual(metric_value(text, "kes_log_audit_events"), 0)
            written = metric_value(text, "kesc_log_audit_records_total")
            self.assertGreaterEqual(written, 5)

            # A subscriber: each event it is sent counts once.
            sock = srv.tls_socket(timeout=10)
            try:
                sock.sendall(b"GET /v1/log/audit HTTP/1.1\r\nHost: x\r\n\r\n")
                data = b""
                deadline = time.monotonic() + 10
                while data.count(b"/v1/key/describe/streamed-") < 3:
                    if b"/v1/key/describe/streamed-2" not in data:
                        for i in range(3):
                            srv.request("GET", "/v1/key/describe/streamed-%d" % i)
                    self.assertLess(time.monotonic(), deadline, data)
                    try:
                        data += sock.recv(65536)
                    except TimeoutError:
                        pass
            finally:
                sock.close()
            deadline = time.monotonic() + 10
            while metric_value(metrics_text(srv), "kes_log_audit_events") < 3:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.1)
            self.assertEqual(srv.stop(), 0)
            self.assertEqual(srv.sanitizer_report(), "")


class ConfigTest(unittest.TestCase):
    def assert_clean(self, srv):
        self.assertEqual(srv.stop(), 0)
        self.assertEqual(srv.sanitizer_report(), "")

    def test_api_section_and_predefined_keys(self):
        cfg = {"api": {"/v1/status": {"skip_auth": True},
                       "/v1/key/create/": {"timeout": "30s"}},
               "keys": [{"name": "preset-1"}, {"name": "preset-2"}]}
        with kesctest.Server(config=cfg) as srv:
            # skip_auth: no certificate needed for that route, still needed for the others
            r = srv.request("GET", "/v1/status", cert=None)
            self.assertEqual(r.status, 200)
            r = srv.request("GET", "/v1/key/list/*", cert=None)
            self.assertEqual(r.status, 400)
            self.assertEqual(r.body, error_bytes("tls: client certificate is required"))
            routes = {x["path"]: x for x in srv.request("GET", "/v1/api").json()}
            self.assertEqual(routes["/v1/key/create/"]["timeout"], 30)
            r = srv.request("GET", "/v1/key/list/preset*")
            self.assertEqual(r.json(), {"names": ["preset-1", "preset-2"]})
            self.assert_clean(srv)

    def test_unknown_api_route_is_ignored_with_a_warning(self):
        # KES ignores an api: key that names none of its routes; kesc does too, says so, and
        # its skip_auth does not relax the TLS layer (a client still needs a certificate).
        with kesctest.Server(config={"api": {"/v1/key/create": {"skip_auth": True}}}) as srv:
            self.assertIn("api./v1/key/create: kesc serves no such route, the entry is "
                          "ignored (as KES does); did you mean '/v1/key/create/'?",
                          srv.stderr_text())
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                srv.request("GET", "/v1/status", cert=None)
            self.assertEqual(srv.request("GET", "/v1/status").status, 200)
            self.assert_clean(srv)

    def test_keys_survive_restart(self):
        keys = tempfile.mkdtemp(prefix="kesctest-keys-")
        try:
            store = {"fs": {"path": keys}}
            with kesctest.Server(keystore=store) as srv:
                self.assertEqual(srv.request("PUT", "/v1/key/create/durable").status, 200)
                r = srv.request("POST", "/v1/key/generate/durable",
                                {"context": b64(b"ctx")})
                dek, sealed = r.json()["plaintext"], r.json()["ciphertext"]
                self.assert_clean(srv)
            with kesctest.Server(keystore=store) as srv:
                r = srv.request("POST", "/v1/key/decrypt/durable",
                                {"ciphertext": sealed, "context": b64(b"ctx")})
                self.assertEqual(r.json(), {"plaintext": dek})
                self.assertEqual(srv.request("PUT", "/v1/key/create/durable").body,
                                 error_bytes("key already exists"))
                self.assert_clean(srv)
        finally:
            shutil.rmtree(keys, ignore_errors=True)

    def test_store_down_status_and_ready(self):
        keys = tempfile.mkdtemp(prefix="kesctest-keys-")
        moved = keys + ".moved"
        try:
            with kesctest.Server(keystore={"fs": {"path": keys}}) as srv:
                self.assertEqual(srv.request("GET", "/v1/ready").status, 200)
                os.rename(keys, moved)
                # Always 200, and decodable by kms-go: both flags, no latency.
                r = srv.request("GET", "/v1/status")
                self.assertEqual(r.status, 200)
                st = r.json()
                self.assertIs(st.get("keystore_unavailable"), True)
                self.assertIs(st.get("keystore_unreachable"), True)
                self.assertNotIn("keystore_latency", st)
                r = srv.request("GET", "/v1/ready")
                self.assertEqual(r.body, error_bytes("key store is not reachable"))
                self.assertEqual(r.status, 504)
                deadline = time.monotonic() + 30  # the first probe within the 10 s interval
                while "kesc_keystore_reachable 0\n" not in metrics_text(srv):
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.2)
                os.rename(moved, keys)
                back = time.monotonic()
                # Offline, the store is probed about once a second (not every 10 s).
                while srv.request("GET", "/v1/ready").status != 200:
                    self.assertLess(time.monotonic() - back, 8)
                    time.sleep(0.2)
                self.assertIn("kesc_keystore_reachable 1\n", metrics_text(srv))
                self.assertIn("keystore_latency", srv.request("GET", "/v1/status").json())
                self.assert_clean(srv)
        finally:
            if os.path.isdir(moved):
                os.rename(moved, keys)
            shutil.rmtree(keys, ignore_errors=True)

    def test_concurrent_generate_decrypt(self):
        # MinIO's steady state: many connections generating and decrypting at once, a cache
        # miss on the worker pool while hits answer on the loop threads.
        with kesctest.Server(config={"server": {"threads": 2}}) as srv:
            self.assertEqual(srv.request("PUT", "/v1/key/create/hot").status, 200)
            errors = []

            def client(n):
                try:
                    conn = srv.connection()
                    for i in range(40):
                        ctx = b64(minio_context("b%d" % n, "o%d" % i))
                        conn.request("POST", "/v1/key/generate/hot",
                                     body=json.dumps({"context": ctx}))
                        r = conn.getresponse()
                        gen = json.loads(r.read())
                        conn.request("POST", "/v1/key/decrypt/hot",
                                     body=json.dumps({"ciphertext": gen["ciphertext"],
                                                      "context": ctx}))
                        r = conn.getresponse()
                        if json.loads(r.read()) != {"plaintext": gen["plaintext"]}:
                            errors.append("mismatch in client %d" % n)
                    conn.close()
                except Exception as e:  # reported below
                    errors.append(repr(e))

            threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            self.assertEqual(errors, [])
            self.assert_clean(srv)


if __name__ == "__main__":
    unittest.main(verbosity=2)
