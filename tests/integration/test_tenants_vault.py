"""Tenants on one Vault connection (issue 15), against the Vault test server (tests/vault).

Three tenants beside the top-level keystore (kv v2 in the root namespace, AppRole "kes"):
  t1  namespace t1, on the top-level token (a root-namespace token whose policy names t1's
      paths: a parent's token reaches a child namespace when its policy allows);
  t2  namespace t2, with its own AppRole login in t2;
  p1  prefix p1 in the root namespace.
What is proven: keys land where each tenant's layout says; a namespace an administrator locks
makes that tenant alone fail fast and it serves again once unlocked; a tenant whose token
expires and cannot log in again fails fast and alone; a tenant whose Vault calls hang holds
only its share of the workers, so another tenant's cache misses are answered before any of
the hung ones.
"""

import base64
import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402
from test_vault_e2e import Vault  # noqa: E402

APP_ALLOW = ["/v1/key/*", "/v1/status", "/v1/ready", "/v1/metrics", "/v1/log/error"]

ROOT_POLICY = """
path "kv/data/*" { capabilities = ["create", "read", "update"] }
path "kv/destroy/*" { capabilities = ["update"] }
path "kv/metadata/*" { capabilities = ["list"] }
path "t1/kv/data/*" { capabilities = ["create", "read", "update"] }
path "t1/kv/destroy/*" { capabilities = ["update"] }
path "t1/kv/metadata/*" { capabilities = ["list"] }
"""
T2_POLICY = """
path "kv/data/*" { capabilities = ["create", "read", "update"] }
path "kv/destroy/*" { capabilities = ["update"] }
path "kv/metadata/*" { capabilities = ["list"] }
"""


def wait_for(fn, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.1)


def ns_call(vault, method, path, ns, body=None):
    return vault.call(method, "/v1/%s/%s" % (ns, path) if ns else "/v1/" + path, body)


class VaultTenants:
    """The Vault test server set up for the three tenants, and the kesc config around it."""

    def __init__(self, t2_ttl="1h", t2_uses=0):
        self.v = Vault()
        v = self.v
        try:
            v.ok("POST", "/v1/sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
            v.ok("POST", "/v1/sys/auth/approle", {"type": "approle"})
            v.ok("PUT", "/v1/sys/policies/acl/kes", {"policy": ROOT_POLICY})
            v.ok("POST", "/v1/auth/approle/role/kes", {"token_policies": ["kes"],
                                                        "token_ttl": "1h"})
            self.root_role = self.role("", "kes")
            for ns in ("t1", "t2"):
                v.ok("POST", "/v1/sys/namespaces/" + ns)
                v.ok("POST", "/v1/%s/sys/mounts/kv" % ns,
                     {"type": "kv", "options": {"version": "2"}})
            v.ok("POST", "/v1/t2/sys/auth/approle", {"type": "approle"})
            v.ok("PUT", "/v1/t2/sys/policies/acl/kes-t2", {"policy": T2_POLICY})
            v.ok("POST", "/v1/t2/auth/approle/role/kes-t2",
                 {"token_policies": ["kes-t2"], "token_ttl": t2_ttl, "token_max_ttl": t2_ttl,
                  "secret_id_num_uses": t2_uses})
            self.t2_role = self.role("t2", "kes-t2")
        except Exception:
            v.stop()
            raise

    def role(self, ns, name):
        pre = "/v1/%s/" % ns if ns else "/v1/"
        rid = self.v.ok("GET", pre + "auth/approle/role/%s/role-id" % name)["data"]["role_id"]
        sid = self.v.ok("POST", pre + "auth/approle/role/%s/secret-id" % name, {})
        return rid, sid["data"]["secret_id"]

    def server(self, extra_vault=None):
        srv = kesctest.Server(start=False, policies={}, keystore={"vault": dict({
            "endpoint": self.v.url, "engine": "kv", "version": "v2",
            "approle": {"id": self.root_role[0], "secret": self.root_role[1]},
            "status": {"ping": "1s"}}, **(extra_vault or {}))})
        for n in ("t1-app", "t2-app", "p1-app"):
            srv.certs.client(n)

        def pol(n):
            return {"app": {"allow": APP_ALLOW, "identities": [srv.identity(n)]}}

        srv.extra = {
            "cache": {"expiry": {"any": "5m", "unused": "5m"}},
            "tenants": {
                "t1": {"keystore": {"vault": {"namespace": "t1"}}, "policy": pol("t1-app")},
                "t2": {"keystore": {"vault": {"namespace": "t2", "approle": {
                    "id": self.t2_role[0], "secret": self.t2_role[1]}}},
                       "policy": pol("t2-app")},
                "p1": {"keystore": {"vault": {"prefix": "p1"}}, "policy": pol("p1-app")},
            }}
        srv.write_config()
        return srv

    def stop(self):
        self.v.stop()


class VaultTenantsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.vt = VaultTenants()
        cls.srv = cls.vt.server({"request_timeout": "6s"})
        try:
            cls.srv.start()
        except Exception:
            cls.vt.stop()
            cls.srv.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        report = cls.srv.sanitizer_report()
        cls.srv.cleanup()
        cls.vt.stop()
        if report:
            raise AssertionError(report)

    def setUp(self):
        self.vt.v.ok("POST", "/_test/reset-faults")

    def req(self, method, path, body=b"", cert="t1-app"):
        return self.srv.request(method, path, body, cert=cert, timeout=60)

    def test_keys_land_in_each_layout(self):
        for cert in ("t1-app", "t2-app", "p1-app", "admin"):
            self.assertEqual(self.req("POST", "/v1/key/create/placed", cert=cert).status, 200,
                             cert)
        v = self.vt.v
        self.assertEqual(ns_call(v, "GET", "kv/data/placed", "t1")[0], 200)
        self.assertEqual(ns_call(v, "GET", "kv/data/placed", "t2")[0], 200)
        self.assertEqual(ns_call(v, "GET", "kv/data/p1/placed", "")[0], 200)
        self.assertEqual(ns_call(v, "GET", "kv/data/placed", "")[0], 200)
        # four different keys under one name
        values = {json.dumps(ns_call(v, "GET", p, ns)[1]["data"]["data"])
                  for p, ns in (("kv/data/placed", "t1"), ("kv/data/placed", "t2"),
                                ("kv/data/p1/placed", ""), ("kv/data/placed", ""))}
        self.assertEqual(len(values), 4)
        self.assertEqual(self.req("GET", "/v1/key/list/*", cert="p1-app").json()["names"],
                         ["placed"])
        self.assertNotIn("p1", self.req("GET", "/v1/key/list/*", cert="admin").json()["names"])

    def test_locked_namespace_fails_alone(self):
        for cert in ("t1-app", "t2-app", "p1-app"):
            self.req("POST", "/v1/key/create/before-lock", cert=cert)
        self.vt.v.ok("POST", "/_test/lock-namespace", {"namespace": "t1"})
        try:
            r = self.req("POST", "/v1/key/create/during-lock")
            self.assertIn(r.status, (502, 504))
            # fails fast now: no retries, no waiting for Vault
            r = self.req("GET", "/v1/key/describe/not-cached")
            self.assertIn(r.status, (502, 504))
            self.assertTrue(wait_for(lambda: self.req("GET", "/v1/ready").status != 200))
            for cert in ("t2-app", "p1-app", "admin"):
                self.assertEqual(self.req("POST", "/v1/key/create/during-lock",
                                          cert=cert).status, 200, cert)
                self.assertEqual(self.req("GET", "/v1/ready", cert=cert).status, 200, cert)
            st = self.req("GET", "/v1/status", cert="admin").json()
            self.assertNotIn("keystore_unreachable", st)
            # the cached key still serves
            r = self.req("POST", "/v1/key/generate/before-lock", {})
            self.assertEqual(r.status, 200)
        finally:
            self.vt.v.ok("POST", "/_test/lock-namespace", {"namespace": "t1", "locked": False})
        self.assertTrue(wait_for(lambda: self.req("POST", "/v1/key/create/after-lock").status
                                 == 200))
        self.assertTrue(wait_for(lambda: self.req("GET", "/v1/ready").status == 200))
        log = self.srv.stderr_text()
        self.assertIn("tenant 't1': keystore: vault: namespace unavailable", log)
        self.assertIn("tenant 't1': keystore: vault: namespace 't1' answers again", log)

    def test_hung_tenant_keeps_to_its_share(self):
        """p1's Vault calls hang for longer than any of t1's requests take: with a quarter of
        the workers each, t1's cache misses are answered while every one of p1's still waits
        (without shares, the hung requests took every worker and t1 waited behind them)."""
        self.vt.v.ok("POST", "/_test/latency", {"ms": 8000, "path_prefix": "/v1/kv/data/p1/"})
        done = []
        lock = threading.Lock()

        def hung(i):
            self.req("GET", "/v1/key/describe/hung-%d" % i, cert="p1-app")
            with lock:
                done.append("p1")

        threads = [threading.Thread(target=hung, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        for i in range(3):
            r = self.req("GET", "/v1/key/describe/miss-%d" % i)  # t1: cache misses
            self.assertEqual(r.status, 404)
        with lock:
            finished_first = list(done)
        for t in threads:
            t.join()
        self.assertEqual(finished_first, [])


class VaultTenantLoginTest(unittest.TestCase):
    def test_expired_token_fails_alone(self):
        """t2 logs in itself; its token lives 3 s and its secret works once: after expiry it
        cannot log in again and fails fast, alone; a new secret by SIGHUP brings it back and
        leaves the other tenants' caches as they were."""
        vt = VaultTenants(t2_ttl="3s", t2_uses=1)
        srv = vt.server()
        try:
            srv.start()
            for cert in ("t1-app", "t2-app", "p1-app"):
                self.assertEqual(srv.request("POST", "/v1/key/create/k", cert=cert).status, 200)
            srv.request("POST", "/v1/key/encrypt/k", {"plaintext": "AA=="}, cert="t1-app")
            self.assertTrue(wait_for(
                lambda: "tenant 't2': keystore: vault: approle login failed" in srv.stderr_text(),
                timeout=20))
            r = srv.request("GET", "/v1/key/describe/other", cert="t2-app")
            self.assertIn(r.status, (502, 504))
            self.assertTrue(wait_for(
                lambda: srv.request("GET", "/v1/ready", cert="t2-app").status != 200))
            for cert in ("t1-app", "p1-app", "admin"):
                self.assertEqual(srv.request("POST", "/v1/key/create/k2", cert=cert).status, 200)
            m = srv.request("GET", "/v1/metrics", cert="admin").body.decode()
            hits = [l for l in m.splitlines()
                    if l.startswith('kesc_tenant_cache_hits_total{tenant="t1"}')]
            # a new secret for t2 only
            vt.v.ok("POST", "/v1/t2/auth/approle/role/kes-t2",
                    {"token_policies": ["kes-t2"], "token_ttl": "1h", "token_max_ttl": "1h",
                     "secret_id_num_uses": 0})
            rid, sid = vt.role("t2", "kes-t2")
            srv.extra["tenants"]["t2"]["keystore"]["vault"]["approle"] = {"id": rid,
                                                                          "secret": sid}
            self.assertTrue(srv.reload())
            self.assertTrue(wait_for(lambda: srv.request(
                "GET", "/v1/key/describe/k", cert="t2-app").status == 200))
            m = srv.request("GET", "/v1/metrics", cert="admin").body.decode()
            self.assertEqual(hits, [l for l in m.splitlines()
                                    if l.startswith('kesc_tenant_cache_hits_total{tenant="t1"}')])
            self.assertEqual(srv.stop(), 0)
            self.assertEqual(srv.sanitizer_report(), "")
        finally:
            srv.cleanup()
            vt.stop()


class VaultTenantCheckConfigTest(unittest.TestCase):
    def test_check_config_logs_in_as_each_tenant(self):
        """--check-config does what a start would do later in the background: each tenant's
        own login, and the shared token's reach into each tenant's namespace."""
        vt = VaultTenants()
        srv = vt.server()
        try:
            def check():
                r = subprocess.run([kesctest.KESC_BIN, "server", "--check-config", "--config",
                                    srv.config_path], capture_output=True, timeout=120)
                return r.returncode, r.stdout.decode(), r.stderr.decode()

            rc, out, err = check()
            self.assertEqual((rc, out), (0, "OK\n"), err)
            srv.extra["tenants"]["t2"]["keystore"]["vault"]["approle"]["secret"] = "wrong"
            srv.write_config()
            rc, out, err = check()
            self.assertEqual(rc, 1)
            self.assertIn("Error: tenants.t2: keystore: vault: approle login failed", err)
            self.assertNotIn("tenants.t1", err)
        finally:
            srv.cleanup()
            vt.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
