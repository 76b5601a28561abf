"""Tenants in one process (issue 15), on the fs keystore, through the real server over mTLS.

Two tenants, "acme" and "beta", whose clients use the same policy and key names, and the
top-level policy "ops" (the operator's monitoring identity). Every way a client could reach
another tenant is tried: key names and patterns, the query string and headers, identity and
policy views, the cache (through the counters that tell whose cache a lookup touched), the
metrics, the audit records and both log streams; then a tenant's keystore fails, and SIGHUP
adds, changes and removes tenants while connections stay open.
"""

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402

DENIED = "not authorized: insufficient permissions"
APP_ALLOW = ["/v1/key/*", "/v1/identity/*", "/v1/policy/*", "/v1/metrics", "/v1/status",
             "/v1/ready", "/v1/log/audit", "/v1/log/error"]


def wait_for(fn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def b64(data):
    return base64.b64encode(data).decode()


def metric(text, name, **labels):
    """The value of a sample in Prometheus text, or None."""
    want = name + ("{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


class Stream:
    """A /v1/log/{audit,error} subscription read on a thread."""

    def __init__(self, srv, path, cert):
        self.sock = srv.tls_socket(cert, timeout=30)
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        self.data = b""
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                with self.lock:
                    self.data += chunk
        except OSError:
            return

    def text(self):
        with self.lock:
            return self.data.decode(errors="replace")

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class FsTenantsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        srv = kesctest.Server(start=False, policies={})
        for n in ("acme-app", "acme-ro", "beta-app", "ops"):
            srv.certs.client(n)
        cls.ids = {n: srv.identity(n) for n in ("acme-app", "acme-ro", "beta-app", "ops",
                                                "admin")}
        srv.policies = {"ops": {"allow": ["/v1/metrics", "/v1/log/audit", "/v1/log/error",
                                          "/v1/key/*", "/v1/identity/list/*"],
                                "identities": ["ops"]}}
        srv.extra = {"tenants": {
            "acme": {"policy": {"app": {"allow": APP_ALLOW, "identities": [cls.ids["acme-app"]]},
                                "ro": {"allow": ["/v1/key/list/*"],
                                       "identities": [cls.ids["acme-ro"]]}},
                     "keys": [{"name": "acme-default"}]},
            "beta": {"keystore": {"fs": {"path": "tenants/beta"}},
                     "policy": {"app": {"allow": APP_ALLOW + ["/v1/key/bulk/decrypt/*"],
                                        "deny": ["/v1/key/delete/*"],
                                        "identities": [cls.ids["beta-app"]]}}},
        }}
        srv.write_config()
        cls.srv = srv.start()
        cls.keys = os.path.join(srv.dir, "keys")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        report = cls.srv.sanitizer_report()
        cls.srv.cleanup()
        if report:
            raise AssertionError(report)

    def req(self, method, path, body=b"", cert="acme-app", headers=None):
        return self.srv.request(method, path, body, cert=cert, headers=headers)

    def names(self, cert, pattern="*", query=""):
        r = self.req("GET", "/v1/key/list/" + pattern + query, cert=cert)
        self.assertEqual(r.status, 200, r.body)
        return r.json()["names"]

    # ---- keys ----

    def test_same_names_different_keys(self):
        for cert in ("acme-app", "beta-app"):
            self.assertEqual(self.req("POST", "/v1/key/create/shared", cert=cert).status, 200)
        self.assertTrue(os.path.isfile(os.path.join(self.keys, "acme", "shared")))
        self.assertTrue(os.path.isfile(os.path.join(self.keys, "tenants", "beta", "shared")))
        self.assertFalse(os.path.exists(os.path.join(self.keys, "shared")))
        r = self.req("POST", "/v1/key/encrypt/shared", {"plaintext": b64(b"acme secret")})
        ct = r.json()["ciphertext"]
        r = self.req("POST", "/v1/key/decrypt/shared", {"ciphertext": ct}, cert="beta-app")
        self.assertEqual((r.status, r.message),
                         (400, "decryption failed: ciphertext is not authentic"))
        r = self.req("POST", "/v1/key/decrypt/shared", {"ciphertext": ct})
        self.assertEqual(base64.b64decode(r.json()["plaintext"]), b"acme secret")
        # the tenant's keys: come with it, in its own directory
        self.assertTrue(wait_for(lambda: os.path.isfile(
            os.path.join(self.keys, "acme", "acme-default"))))
        self.assertNotIn("acme-default", self.names("beta-app"))

    def test_versions_stay_inside(self):
        # rotating, retiring and deleting a name in one tenant leaves the other's key alone
        for cert in ("acme-app", "beta-app"):
            self.assertEqual(self.req("POST", "/v1/key/create/turning", cert=cert).status, 200)
        old = self.req("POST", "/v1/key/encrypt/turning", {"plaintext": b64(b"beta v1")},
                       cert="beta-app").json()["ciphertext"]
        r = self.req("POST", "/v1/key/rotate/turning")
        self.assertEqual((r.status, r.json()), (200, {"version": "v2"}))
        self.assertEqual(self.req("POST", "/v1/key/retire/turning",
                                  {"min_decryption_version": "v2"}).status, 200)
        d = self.req("GET", "/v1/key/describe/turning", cert="beta-app").json()
        self.assertNotIn("versions", d)  # never rotated: KES's describe
        r = self.req("POST", "/v1/key/rotate/missing-in-beta", cert="beta-app")
        self.assertEqual(r.status, 404)
        r = self.req("POST", "/v1/key/decrypt/turning", {"ciphertext": old}, cert="beta-app")
        self.assertEqual(base64.b64decode(r.json()["plaintext"]), b"beta v1")

    def test_names_and_patterns_stay_inside(self):
        self.req("POST", "/v1/key/create/acme-only")
        for pattern in ("*", "acme*", "", "acme-only"):
            self.assertNotIn("acme-only", self.names("beta-app", pattern))
        for name in ("../acme/acme-only", "..%2Facme%2Facme-only", "acme%2Facme-only",
                     "%2E%2E%2Facme%2Facme-only", "acme/acme-only"):
            r = self.req("GET", "/v1/key/describe/" + name, cert="beta-app")
            self.assertIn(r.status, (400, 404), name)
            self.assertNotIn(b"created_at", r.body)
        r = self.req("GET", "/v1/key/describe/acme-only", cert="beta-app")
        self.assertEqual((r.status, r.message), (404, "key does not exist"))
        r = self.req("DELETE", "/v1/key/delete/acme-only", cert="beta-app")
        self.assertEqual(r.status, 403)  # beta's policy denies deletes at all
        self.assertIn("acme-only", self.names("acme-app"))

    def test_query_and_headers_do_not_select_a_tenant(self):
        # MinIO's MINIO_KMS_KES_ENCLAVE sends ?enclave=; for anyone but the admin it is ignored
        self.req("POST", "/v1/key/create/beta-created?enclave=acme", cert="beta-app")
        self.assertIn("beta-created", self.names("beta-app"))
        self.assertNotIn("beta-created", self.names("acme-app"))
        self.assertEqual(self.names("beta-app", query="?enclave=acme"),
                         self.names("beta-app"))
        hdrs = {"X-Tenant": "acme", "X-Vault-Namespace": "acme", "Host": "acme"}
        self.assertNotIn("acme-default", self.names("beta-app") + self.req(
            "GET", "/v1/key/list/*", cert="beta-app", headers=hdrs).json()["names"])
        # an identity no tenant knows gets no view at all
        r = self.req("GET", "/v1/key/list/*?enclave=acme", cert="unknown")
        self.assertEqual((r.status, r.message), (403, DENIED))

    def test_admin_enclave(self):
        self.req("POST", "/v1/key/create/seen-by-admin", cert="beta-app")
        self.assertIn("seen-by-admin", self.names("admin", query="?enclave=beta"))
        self.assertNotIn("seen-by-admin", self.names("admin"))
        # Go's url.Query(): percent-decoded, the first of several
        self.assertIn("seen-by-admin", self.names("admin", query="?x=1&enclave=be%74a"))
        self.assertIn("seen-by-admin", self.names("admin", query="?enclave=beta&enclave=acme"))
        r = self.req("GET", "/v1/key/list/*?enclave=nope", cert="admin")
        self.assertEqual((r.status, r.message), (404, "enclave does not exist"))
        r = self.req("POST", "/v1/key/create/made-for-beta?enclave=beta", cert="admin")
        self.assertEqual(r.status, 200)
        self.assertIn("made-for-beta", self.names("beta-app"))
        r = self.req("GET", "/v1/identity/self/describe?enclave=beta", cert="admin")
        self.assertEqual((r.status, r.json()["admin"]), (200, True))
        r = self.req("GET", "/v1/identity/list/*?enclave=acme", cert="admin")
        self.assertEqual(sorted(r.json()["identities"]),
                         sorted([self.ids["acme-app"], self.ids["acme-ro"]]))

    def test_admin_enclave_from_the_cli(self):
        # kesc's -e/--enclave sends ?enclave= as MinIO's MINIO_KMS_KES_ENCLAVE does: the
        # admin's CLI looks at a tenant; a tenant's own identity is not moved by it
        self.req("POST", "/v1/key/create/cli-seen", cert="beta-app")
        r = self.srv.cli("key", "ls", "-e", "beta", "cli-*")
        self.assertEqual((r.returncode, r.stdout.decode()), (0, "Key\ncli-seen\n"), r.stderr)
        r = self.srv.cli("key", "ls", "cli-*")
        self.assertEqual((r.returncode, r.stdout.decode()), (0, ""), r.stderr)  # as kes: no header
        r = self.srv.cli("key", "create", "--enclave=beta", "cli-made")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cli-made", self.names("beta-app"))
        r = self.srv.cli("key", "ls", "-e", "nope")
        self.assertEqual((r.returncode, r.stderr.decode()),
                         (1, "Error: failed to list keys: enclave does not exist\n"))
        r = self.srv.cli("key", "ls", "-e", "beta", "cli-*", cert="acme-app")
        self.assertEqual((r.returncode, r.stdout.decode()), (0, ""), r.stderr)  # as kes: no header

    # ---- identities and policies ----

    def test_identity_and_policy_views(self):
        r = self.req("GET", "/v1/identity/list/*")
        self.assertEqual(sorted(r.json()["identities"]),
                         sorted([self.ids["acme-app"], self.ids["acme-ro"]]))
        r = self.req("GET", "/v1/identity/list/*", cert="beta-app")
        self.assertEqual(r.json()["identities"], [self.ids["beta-app"]])
        for other in ("beta-app", "ops", "admin"):
            r = self.req("GET", "/v1/identity/describe/" + self.ids[other])
            self.assertEqual((r.status, r.message), (404, "identity does not exist"), other)
        r = self.req("GET", "/v1/identity/describe/" + self.ids["acme-ro"])
        self.assertEqual(r.json()["policy"], "ro")
        self.assertNotIn("created_by", r.json())  # the admin is not a tenant's to see
        r = self.req("GET", "/v1/policy/list/*")
        self.assertEqual(r.json()["names"], ["app", "ro"])
        r = self.req("GET", "/v1/policy/read/app", cert="beta-app")
        self.assertEqual(sorted(r.json()["deny"]), ["/v1/key/delete/*"])
        r = self.req("GET", "/v1/policy/read/app")
        self.assertNotIn("deny", r.json())
        r = self.req("GET", "/v1/policy/describe/ro", cert="beta-app")
        self.assertEqual((r.status, r.message), (404, "policy does not exist"))
        r = self.req("GET", "/v1/identity/self/describe", cert="beta-app")
        self.assertEqual((r.json()["identity"], r.json()["policy"]),
                         (self.ids["beta-app"], "app"))
        # the operator's view: the top-level identities only
        r = self.req("GET", "/v1/identity/list/*", cert="ops")
        self.assertEqual(sorted(r.json()["identities"]),
                         sorted([self.ids["ops"], self.ids["admin"]]))

    # ---- cache, metrics, audit, logs ----

    def test_cache_is_per_tenant(self):
        self.req("POST", "/v1/key/create/hot")
        self.req("POST", "/v1/key/create/hot", cert="beta-app")
        for _ in range(3):
            self.req("POST", "/v1/key/encrypt/hot", {"plaintext": "AA=="})
        before = self.req("GET", "/v1/metrics", cert="admin").body.decode()
        for _ in range(20):  # beta's lookups of the same name touch beta's cache alone
            self.req("POST", "/v1/key/encrypt/hot", {"plaintext": "AA=="}, cert="beta-app")
            self.req("GET", "/v1/key/describe/cold-in-acme", cert="beta-app")
        after = self.req("GET", "/v1/metrics", cert="admin").body.decode()
        for name in ("kesc_tenant_cache_hits_total", "kesc_tenant_cache_misses_total",
                     "kesc_tenant_cache_keys"):
            self.assertEqual(metric(before, name, tenant="acme"),
                             metric(after, name, tenant="acme"), name)
        self.assertGreaterEqual(metric(after, "kesc_tenant_cache_hits_total", tenant="beta") -
                                metric(before, "kesc_tenant_cache_hits_total", tenant="beta"),
                                19)
        self.assertGreaterEqual(metric(after, "kesc_tenant_cache_misses_total", tenant="beta") -
                                metric(before, "kesc_tenant_cache_misses_total", tenant="beta"),
                                20)

    def test_metrics_are_per_tenant(self):
        mine = self.req("GET", "/v1/metrics").body.decode()
        self.assertNotIn("beta", mine)
        self.assertNotIn("kesc_tenant_", mine)
        self.assertNotIn("kesc_connections", mine)
        ok0 = metric(mine, "kes_http_request_success", code="200") or 0
        for _ in range(5):
            self.req("GET", "/v1/key/list/*", cert="beta-app")
        again = self.req("GET", "/v1/metrics").body.decode()
        # acme's count grew by its own /v1/metrics request only, never by beta's
        self.assertLessEqual((metric(again, "kes_http_request_success", code="200") or 0) - ok0,
                             1)
        allm = self.req("GET", "/v1/metrics", cert="ops").body.decode()
        self.assertIsNotNone(metric(allm, "kesc_tenant_requests_total", tenant="beta",
                                    **{"class": "2xx"}))
        self.assertIsNotNone(metric(allm, "kesc_tenant_keystore_up", tenant="acme"))
        # a fixed handful of series per tenant, never per code or bucket
        per_tenant = [l for l in allm.splitlines() if 'tenant="acme"' in l]
        self.assertLessEqual(len(per_tenant), 9)

    def test_audit_records_name_the_tenant(self):
        self.req("GET", "/v1/key/list/aud*")
        self.req("GET", "/v1/key/list/aud*", cert="beta-app")
        self.req("GET", "/v1/key/list/aud*", cert="ops")
        recs = wait_for(lambda: [a["request"] for a in self.srv.audit_lines()
                                 if a["request"]["path"] == "/v1/key/list/aud*"]
                        if len([a for a in self.srv.audit_lines()
                                if a["request"]["path"] == "/v1/key/list/aud*"]) >= 3 else None)
        by_id = {r["identity"]: r.get("tenant") for r in recs}
        self.assertEqual(by_id[self.ids["acme-app"]], "acme")
        self.assertEqual(by_id[self.ids["beta-app"]], "beta")
        self.assertIsNone(by_id[self.ids["ops"]])

    def test_log_streams_are_per_tenant(self):
        acme_audit = Stream(self.srv, "/v1/log/audit", "acme-app")
        acme_error = Stream(self.srv, "/v1/log/error", "acme-app")
        beta_audit = Stream(self.srv, "/v1/log/audit", "beta-app")
        ops_error = Stream(self.srv, "/v1/log/error", "ops")
        admin_audit = Stream(self.srv, "/v1/log/audit", "admin")
        admin_error = Stream(self.srv, "/v1/log/error", "admin")
        try:
            time.sleep(0.5)
            # an error in beta's keystore: a key file that is no key
            with open(os.path.join(self.keys, "tenants", "beta", "broken"), "w") as f:
                f.write("not a key record")
            r = self.req("GET", "/v1/key/describe/broken", cert="beta-app")
            self.assertEqual(r.status, 502)
            self.req("GET", "/v1/key/list/stream-beta*", cert="beta-app")
            self.req("GET", "/v1/key/list/stream-acme*")
            self.assertTrue(wait_for(lambda: "stream-acme" in acme_audit.text()))
            self.assertTrue(wait_for(lambda: "tenant 'beta'" in ops_error.text()))
            time.sleep(0.5)
            self.assertNotIn("stream-beta", acme_audit.text())
            self.assertNotIn(self.ids["beta-app"], acme_audit.text())
            self.assertNotIn("broken", acme_error.text())
            self.assertNotIn("beta", acme_error.text())
            line = [l for l in ops_error.text().splitlines() if "broken" in l][0]
            self.assertIn("tenant 'beta': read key 'broken'", line)
            # beta's stream the other way round: its own records, none of acme's
            self.assertTrue(wait_for(lambda: "stream-beta" in beta_audit.text()))
            self.assertNotIn("stream-acme", beta_audit.text())
            self.assertNotIn(self.ids["acme-app"], beta_audit.text())
            # the admin's streams show every tenant's records
            self.assertTrue(wait_for(lambda: "stream-acme" in admin_audit.text()
                                     and "stream-beta" in admin_audit.text()))
            self.assertTrue(wait_for(lambda: "tenant 'beta': read key 'broken'"
                                     in admin_error.text()))
        finally:
            for s in (acme_audit, acme_error, beta_audit, ops_error, admin_audit, admin_error):
                s.close()
            os.unlink(os.path.join(self.keys, "tenants", "beta", "broken"))

    def test_one_tenant_down(self):
        beta = os.path.join(self.keys, "tenants", "beta")
        aside = beta + ".aside"
        self.req("POST", "/v1/key/create/before-down")
        os.rename(beta, aside)
        try:
            with open(beta, "w") as f:  # no directory there any more
                f.write("x")
            r = wait_for(lambda: (lambda r: r if r.status != 200 else None)(
                self.req("GET", "/v1/ready", cert="beta-app")), timeout=15)
            self.assertIsNotNone(r)
            self.assertEqual(self.req("GET", "/v1/ready").status, 200)
            r = self.req("POST", "/v1/key/create/while-beta-down")
            self.assertEqual(r.status, 200)
            self.assertIn("before-down", self.names("acme-app"))
            st = self.req("GET", "/v1/status").json()
            self.assertNotIn("keystore_unreachable", st)
        finally:
            os.unlink(beta)
            os.rename(aside, beta)
        self.assertTrue(wait_for(lambda: self.req("GET", "/v1/ready",
                                                  cert="beta-app").status == 200, timeout=15))


class TenantReloadTest(unittest.TestCase):
    """SIGHUP adds, changes and removes tenants; the others keep their connections, cache and
    counters."""

    def test_reload(self):
        srv = kesctest.Server(start=False, policies={})
        try:
            for n in ("a-app", "b-app", "c-app"):
                srv.certs.client(n)
            ids = {n: srv.identity(n) for n in ("a-app", "b-app", "c-app")}

            def tenant(ident, **extra):
                t = {"policy": {"app": {"allow": APP_ALLOW, "identities": [ident]}}}
                t.update(extra)
                return t

            srv.extra = {"tenants": {"a": tenant(ids["a-app"]), "b": tenant(ids["b-app"])}}
            srv.write_config()
            srv.start()
            conn = srv.connection("a-app")  # keep-alive, across the reloads

            def on_conn(method, path, body=""):
                conn.request(method, path, body=body)
                r = conn.getresponse()
                return r.status, r.read()

            self.assertEqual(on_conn("POST", "/v1/key/create/ka")[0], 200)
            self.assertEqual(on_conn("POST", "/v1/key/encrypt/ka", '{"plaintext":"AA=="}')[0],
                             200)
            m0 = srv.request("GET", "/v1/metrics").body.decode()
            hits0 = metric(m0, "kesc_tenant_cache_hits_total", tenant="a")
            keys0 = metric(m0, "kesc_tenant_cache_keys", tenant="a")
            self.assertEqual(keys0, 1)
            # add c, remove b, change nothing of a
            srv.extra = {"tenants": {"a": tenant(ids["a-app"]), "c": tenant(ids["c-app"])}}
            self.assertTrue(srv.reload())
            self.assertEqual(on_conn("POST", "/v1/key/encrypt/ka", '{"plaintext":"AA=="}')[0],
                             200)
            m1 = srv.request("GET", "/v1/metrics").body.decode()
            # a's cache came through: the key was still cached (a hit, no new miss)
            self.assertEqual(metric(m1, "kesc_tenant_cache_keys", tenant="a"), 1)
            self.assertEqual(metric(m1, "kesc_tenant_cache_hits_total", tenant="a"), hits0 + 1)
            self.assertIsNone(metric(m1, "kesc_tenant_cache_keys", tenant="b"))
            r = srv.request("GET", "/v1/key/list/*", cert="b-app")
            self.assertEqual((r.status, r.message), (403, DENIED))
            self.assertEqual(srv.request("POST", "/v1/key/create/kc", cert="c-app").status, 200)
            # change a (its cache settings): a new cache, the same keys on disk
            srv.extra["tenants"]["a"]["cache"] = {"expiry": {"any": "1m"}}
            self.assertTrue(srv.reload())
            self.assertEqual(on_conn("GET", "/v1/key/list/*")[1], b'{"names":["ka"]}\n')
            m2 = srv.request("GET", "/v1/metrics").body.decode()
            self.assertEqual(metric(m2, "kesc_tenant_cache_hits_total", tenant="a"), 0)
            # a broken tenant changes nothing at all
            srv.extra["tenants"]["d"] = tenant(ids["c-app"])
            self.assertFalse(srv.reload())
            self.assertEqual(on_conn("GET", "/v1/key/list/*")[0], 200)
            self.assertEqual(srv.request("GET", "/v1/key/list/*", cert="c-app").status, 200)
            conn.close()
            self.assertEqual(srv.stop(), 0)
            self.assertEqual(srv.sanitizer_report(), "")
        finally:
            srv.cleanup()


class TenantReloadStreamTest(unittest.TestCase):
    def test_reload_ends_streams_of_a_view_the_identity_lost(self):
        """A log stream shows its tenant's lines. When SIGHUP removes that tenant, or makes a
        new tenant of the same name with other identities, the stream of the identity that no
        longer belongs there ends before it shows a line of the new tenant; streams of
        unchanged tenants go on."""
        srv = kesctest.Server(start=False, policies={})
        try:
            for n in ("a-app", "b-app", "c-app"):
                srv.certs.client(n)
            ids = {n: srv.identity(n) for n in ("a-app", "b-app", "c-app")}

            def tenant(ident):
                return {"policy": {"app": {"allow": APP_ALLOW, "identities": [ident]}}}

            srv.extra = {"tenants": {"a": tenant(ids["a-app"]), "b": tenant(ids["b-app"])}}
            srv.write_config()
            srv.start()
            a_audit = Stream(srv, "/v1/log/audit", "a-app")
            b_audit = Stream(srv, "/v1/log/audit", "b-app")
            try:
                srv.request("GET", "/v1/key/list/before-b*", cert="b-app")
                self.assertTrue(wait_for(lambda: "before-b" in b_audit.text()))
                # "b" is now c-app's tenant; b-app belongs to no tenant
                srv.extra = {"tenants": {"a": tenant(ids["a-app"]), "b": tenant(ids["c-app"])}}
                self.assertTrue(srv.reload())
                srv.request("GET", "/v1/key/list/new-b-secret*", cert="c-app")
                srv.request("GET", "/v1/key/list/after-a*", cert="a-app")
                self.assertTrue(wait_for(lambda: "after-a" in a_audit.text()))
                self.assertTrue(wait_for(lambda: any("new-b-secret" in a["request"]["path"]
                                                 for a in srv.audit_lines())))
                time.sleep(0.5)
                self.assertNotIn("new-b-secret", b_audit.text())
                self.assertNotIn(ids["c-app"], b_audit.text())
                b_audit.thread.join(10)
                self.assertFalse(b_audit.thread.is_alive(), "b-app's stream still open")
                self.assertTrue(a_audit.thread.is_alive())
            finally:
                a_audit.close()
                b_audit.close()
            self.assertEqual(srv.stop(), 0)
            self.assertEqual(srv.sanitizer_report(), "")
        finally:
            srv.cleanup()


class TenantConnectionShareTest(unittest.TestCase):
    def test_one_tenant_cannot_hold_every_connection(self):
        """server.max_connections is shared; a tenant holds at most its share
        (server.tenant_max_connections), so the others and the admin still get in."""
        srv = kesctest.Server(start=False, policies={})
        try:
            for n in ("a-app", "b-app"):
                srv.certs.client(n)
            srv.extra = {"server": {"max_connections": 8, "tenant_max_connections": 3},
                         "tenants": {
                             "a": {"policy": {"app": {"allow": APP_ALLOW,
                                                      "identities": [srv.identity("a-app")]}}},
                             "b": {"policy": {"app": {"allow": APP_ALLOW,
                                                      "identities": [srv.identity("b-app")]}}}}}
            srv.write_config()
            srv.start()
            held = []
            for _ in range(3):
                c = srv.connection("a-app")
                c.request("GET", "/v1/key/list/*")
                self.assertEqual(c.getresponse().read(), b'{"names":[]}\n')
                held.append(c)
            # a fourth of a's is closed after its handshake; b's and the admin's are served
            with self.assertRaises((ConnectionError, OSError, http.client.HTTPException)):
                r = srv.request("GET", "/v1/key/list/*", cert="a-app")
                raise AssertionError("served: %d" % r.status)
            self.assertEqual(srv.request("GET", "/v1/key/list/*", cert="b-app").status, 200)
            self.assertEqual(srv.request("GET", "/v1/status", cert="admin").status, 200)
            held.pop().close()
            self.assertTrue(wait_for(lambda: srv.request("GET", "/v1/key/list/*",
                                                         cert="a-app").status == 200))
            m = srv.request("GET", "/v1/metrics", cert="admin").body.decode()
            self.assertGreaterEqual(
                metric(m, "kesc_connections_refused_total", reason="tenant") or 0, 1)
            self.assertIn("its tenant holds server.tenant_max_connections already",
                          srv.stderr_text())
            for c in held:
                c.close()
        finally:
            srv.cleanup()


class TenantCheckConfigTest(unittest.TestCase):
    def test_check_config_checks_tenant_directories(self):
        srv = kesctest.Server(start=False, policies={})
        try:
            srv.extra = {"tenants": {"a": {}, "b": {"keystore": {"fs": {"path": "x/b"}}}}}
            srv.write_config()

            def check():
                r = subprocess.run([kesctest.KESC_BIN, "server", "--check-config", "--config",
                                    srv.config_path], capture_output=True, timeout=120)
                return r.returncode, r.stderr.decode()

            rc, err = check()
            self.assertEqual(rc, 0, err)
            self.assertNotIn("tenants.", err)  # missing directories are made at start
            keys = os.path.join(srv.dir, "keys")
            os.makedirs(os.path.join(keys, "x"))
            with open(os.path.join(keys, "x", "b"), "w") as f:
                f.write("not a directory")
            rc, err = check()
            self.assertEqual(rc, 1)
            self.assertIn("Error: tenants.b: '%s' exists but is not a directory"
                          % os.path.join(keys, "x", "b"), err)
        finally:
            srv.cleanup()


class TenantLifecycleTest(unittest.TestCase):
    """key_lifecycle: applies to every tenant's keys, each step audited under its tenant."""

    def test_rotation_and_purge_reach_tenants(self):
        srv = kesctest.Server(start=False, policies={})
        srv.certs.client("acme-app")
        acme = srv.identity("acme-app")
        srv.extra = {
            "key_lifecycle": {"rotate_after": "2s", "delete_window": "1s",
                              "check_interval": "1s"},
            "cache": {"expiry": {"any": "1s", "unused": "1s"}},
            "tenants": {"acme": {"policy": {"app": {"allow": APP_ALLOW + ["/v1/key/restore/*"],
                                                    "identities": [acme]}}}}}
        srv.write_config()
        with srv.start():
            def describe(name):
                return srv.request("GET", "/v1/key/describe/" + name, cert="acme-app")

            self.assertEqual(srv.request("POST", "/v1/key/create/aging",
                                         cert="acme-app").status, 200)
            self.assertEqual(srv.request("POST", "/v1/key/create/doomed",
                                         cert="acme-app").status, 200)
            self.assertEqual(srv.request("DELETE", "/v1/key/delete/doomed",
                                         cert="acme-app").status, 200)
            # rotated by the server's own pass, within a generous bound
            rotated = wait_for(lambda: describe("aging").json().get("version", "v1") != "v1",
                               timeout=60)
            self.assertTrue(rotated, describe("aging").body)
            # the scheduled deletion is purged after its window: restore finds nothing
            purged = wait_for(lambda: any(
                x["request"]["path"] == "/v1/key/purge/doomed" for x in srv.audit_lines()),
                timeout=60)
            self.assertTrue(purged)
            self.assertEqual(srv.request("PUT", "/v1/key/restore/doomed",
                                         cert="acme-app").status, 404)
            steps = [x for x in srv.audit_lines()
                     if x["request"]["identity"] == "kesc:key_lifecycle"]
            self.assertTrue(steps)
            self.assertTrue(all(x["request"].get("tenant") == "acme" for x in steps), steps)
            # the top-level keystore has none of the tenant's keys
            top = srv.request("GET", "/v1/key/list/*", cert="admin")
            self.assertEqual(top.status, 200, top.body)
            self.assertNotIn("aging", top.json()["names"])
        report = srv.sanitizer_report()
        srv.cleanup()
        if report:
            raise AssertionError(report)


if __name__ == "__main__":
    unittest.main(verbosity=2)
