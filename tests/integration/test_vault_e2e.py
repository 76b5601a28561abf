"""End-to-end: the real `kesc server` with the Vault keystore (K/V v2 + transit, AppRole) against
the Vault-compatible test server (tests/vault/vault_server.py), driven over mTLS as MinIO would.

One Vault serves every scenario (each uses its own key names); the "Vault process killed" case
starts a second Vault of its own. Vault is set up through its own HTTP API with the root token,
with the minimal policy kesc documents for K/V v2 plus transit encrypt/decrypt.

The key cache probes the store every 10 s, so the offline/recovery checks poll for up to ~12 s.
"""

import base64
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VAULT_SERVER = os.path.join(HERE, "..", "vault", "vault_server.py")
PROBE_WAIT = 13.0  # one cache status probe (10 s) plus slack for a sanitizer build

# kesc's K/V v2 policy (man 5 kesc.yml): KES's, plus "update" on data/ (writes over a key are
# tombstones, always with check-and-set) and on destroy/ (the deleted key's versions).
POLICY = """
path "kv/data/*" {
  capabilities = ["create", "read", "update"]
}
path "kv/destroy/*" {
  capabilities = ["update"]
}
path "kv/metadata/*" {
  capabilities = ["list"]
}
path "transit/encrypt/kes-wrap" {
  capabilities = ["update"]
}
path "transit/decrypt/kes-wrap" {
  capabilities = ["update"]
}
"""


class Vault:
    """A vault_server.py process on an ephemeral port; always killed by stop()."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vaulte2e-")
        ready = os.path.join(self.dir, "ready")
        self.proc = subprocess.Popen([sys.executable, VAULT_SERVER, "--listen", "127.0.0.1:0",
                                      "--ready-file", ready], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("vault_server.py did not start")
            time.sleep(0.02)
        with open(ready) as f:
            self.url, self.root = f.read().split("\n")[:2]
        u = urllib.parse.urlparse(self.url)
        self.host, self.port = u.hostname, u.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def call(self, method, path, body=None, token=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            hdr = {"X-Vault-Token": token or self.root}
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers=hdr)
            r = conn.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw.strip() else None)
        finally:
            conn.close()

    def ok(self, method, path, body=None):
        status, js = self.call(method, path, body)
        if status not in (200, 204):
            raise RuntimeError("%s %s -> %d %r" % (method, path, status, js))
        return js

    def configure(self):
        """KV v2 at kv/, transit key kes-wrap, AppRole roles with the minimal KES policy."""
        self.ok("POST", "/v1/sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
        self.ok("POST", "/v1/sys/mounts/transit", {"type": "transit"})
        self.ok("POST", "/v1/transit/keys/kes-wrap", {})
        self.ok("POST", "/v1/sys/auth/approle", {"type": "approle"})
        self.ok("PUT", "/v1/sys/policies/acl/kes", {"policy": POLICY})
        self.roles = {}
        for role, ttl in (("kes", "1h"), ("kes-short", "4s")):
            self.ok("POST", "/v1/auth/approle/role/" + role,
                    {"token_policies": ["kes"], "token_ttl": ttl, "token_max_ttl": "24h"})
            rid = self.ok("GET", "/v1/auth/approle/role/%s/role-id" % role)["data"]["role_id"]
            sid = self.ok("POST", "/v1/auth/approle/role/%s/secret-id" % role,
                          {})["data"]["secret_id"]
            self.roles[role] = (rid, sid)

    def keystore(self, role="kes", secret=None):
        rid, sid = self.roles[role]
        return {"vault": {"endpoint": self.url, "engine": "kv", "version": "v2",
                          "approle": {"id": rid, "secret": secret or sid},
                          "transit": {"engine": "transit", "key": "kes-wrap"},
                          "status": {"ping": "1s"}}}

    def stats(self):
        return self.ok("GET", "/_test/stats")


VAULT = None


def setUpModule():
    global VAULT
    VAULT = Vault()
    try:
        VAULT.configure()
    except Exception:
        VAULT.stop()
        raise


def tearDownModule():
    if VAULT:
        VAULT.stop()


CACHE_LONG = {"cache": {"expiry": {"any": "5m", "unused": "5m", "offline": "1m"}}}
CACHE_SHORT = {"cache": {"expiry": {"any": "2s", "unused": "2s"}}}


def kesc(vault=None, cache=None, role="kes"):
    v = vault or VAULT
    return kesctest.Server(keystore=v.keystore(role), config=dict(cache or CACHE_SHORT))


def b64(b):
    return base64.b64encode(b).decode()


def parallel(n, fn):
    """Runs fn(i) in n threads at once (a barrier releases them together); returns results."""
    out = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait(30)
            out[i] = fn(i)
        except Exception as e:  # reported by the caller's assertions
            out[i] = e

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return out


class VaultE2E(unittest.TestCase):
    def assertClean(self, srv):
        self.assertEqual(srv.sanitizer_report(), "", srv.stderr_text()[-4000:])

    def assertSingleVersion(self, name):
        """On Vault's side the key was written once: never overwritten by a second create."""
        status, js = VAULT.call("GET", "/v1/kv/metadata/" + name)
        self.assertEqual(status, 200, (name, js))
        self.assertEqual(js["data"]["current_version"], 1, (name, js["data"]))

    def generate(self, srv, name, ctx=b"minio"):
        return srv.request("POST", "/v1/key/generate/" + name, {"context": b64(ctx)})

    def wait_for(self, pred, timeout=PROBE_WAIT, step=0.25):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(step)
        return pred()

    # 1. The MinIO flow through Vault and the layout on Vault's side.
    def test_1_minio_flow(self):
        with kesc() as srv:
            r = self.generate(srv, "minio-key")
            self.assertEqual((r.status, r.message), (404, "key does not exist"))
            r = srv.request("POST", "/v1/key/create/minio-key")
            self.assertEqual(r.status, 200, r)
            r = self.generate(srv, "minio-key", b'{"bucket":"b1","object":"o1"}')
            self.assertEqual(r.status, 200, r)
            dek = r.json()
            self.assertEqual(len(base64.b64decode(dek["plaintext"])), 32)
            r = srv.request("POST", "/v1/key/decrypt/minio-key",
                            {"ciphertext": dek["ciphertext"],
                             "context": b64(b'{"bucket":"b1","object":"o1"}')})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["plaintext"], dek["plaintext"])
            r = srv.request("POST", "/v1/key/decrypt/minio-key",
                            {"ciphertext": dek["ciphertext"], "context": b64(b"other")})
            self.assertEqual((r.status, r.message),
                             (400, "decryption failed: ciphertext is not authentic"))
            r = srv.request("GET", "/v1/key/list/minio")
            self.assertEqual(r.status, 200, r)
            self.assertIn("minio-key", r.json()["names"])
            r = srv.request("GET", "/v1/key/describe/minio-key")
            self.assertEqual(r.status, 200, r)
            d = r.json()
            self.assertEqual(d["name"], "minio-key")
            self.assertEqual(d.get("created_by"), srv.identity("admin"))

            # KES's layout: one field named after the key, a transit ciphertext as value.
            status, js = VAULT.call("GET", "/v1/kv/data/minio-key")
            self.assertEqual(status, 200, js)
            data = js["data"]["data"]
            self.assertEqual(list(data), ["minio-key"])
            self.assertTrue(data["minio-key"].startswith("vault:v1:"), data)

            r = srv.request("DELETE", "/v1/key/delete/minio-key")
            self.assertEqual(r.status, 200, r)
            r = self.generate(srv, "minio-key")
            self.assertEqual((r.status, r.message), (404, "key does not exist"))
            r = srv.request("GET", "/v1/key/describe/minio-key")
            self.assertEqual(r.status, 404, r)
            # The delete left a tombstone as the latest version and destroyed the key's:
            # KES, which reads version 1, finds nothing.
            status, js = VAULT.call("GET", "/v1/kv/data/minio-key?version=1")
            self.assertEqual(status, 404)
            self.assertIs(js["data"]["metadata"]["destroyed"], True, js)
            status, js = VAULT.call("GET", "/v1/kv/data/minio-key")
            self.assertEqual(status, 200)
            self.assertIn('"algorithm":"kesc-tombstone"', js["data"]["data"]["minio-key"])
            self.assertClean(srv)

    # 2. Concurrent creates and creates under injected faults: no key lost or duplicated.
    def test_2_no_key_lost_or_duplicated(self):
        with kesc() as srv:
            def create(_):
                r = srv.request("POST", "/v1/key/create/race-key")
                return (r.status, r.message)

            res = parallel(20, create)
            oks = [x for x in res if x == (200, None)]
            self.assertEqual(len(oks), 1, res)
            for x in res:
                if x != (200, None):
                    self.assertEqual(x, (400, "key already exists"), res)
            self.assertEqual(self.generate(srv, "race-key").status, 200)
            self.assertSingleVersion("race-key")

            # 503 "Vault is sealed" fails at once (no retry while sealed); other 5xx are
            # retried, so short bursts are absorbed and long ones surface as 502.
            faults = [("/_test/fail", {"count": 1, "status": 503, "path_prefix": "/v1/kv/"}),
                      ("/_test/fail", {"count": 2, "status": 500, "path_prefix": "/v1/kv/"}),
                      ("/_test/fail", {"count": 2, "status": 503, "path_prefix": "/v1/kv/",
                                       "message": "upstream connect error"}),
                      ("/_test/fail", {"count": 9, "status": 502, "path_prefix": "/v1/kv/"}),
                      ("/_test/fail", {"count": 2, "status": 500, "path_prefix": "/v1/transit/"}),
                      ("/_test/fail", {"count": 9, "status": 503,
                                       "path_prefix": "/v1/transit/"}),
                      ("/_test/drop", {"count": 1}),
                      ("/_test/drop", {"count": 2}),
                      ("/_test/drop", {"count": 5})]
            created, failed, dek = [], [], {}
            for i in range(18):
                name = "fault-key-%02d" % i
                path, body = faults[i % len(faults)]
                VAULT.ok("POST", "/_test/reset-faults")
                VAULT.ok("POST", path, body)
                r = srv.request("POST", "/v1/key/create/" + name)
                VAULT.ok("POST", "/_test/reset-faults")
                print("  %s %s -> %d %s" % (path, json.dumps(body), r.status, r.message or ""),
                      file=sys.stderr)
                if r.status == 200:
                    created.append(name)
                    g = self.generate(srv, name)
                    self.assertEqual(g.status, 200, (name, g))
                    dek[name] = g.json()
                else:
                    self.assertIn((r.status, r.message),
                                  [(502, "failed to create key"), (400, "key already exists")],
                                  (name, path, body))
                    failed.append(name)
            self.assertTrue(created, "every create under faults failed")
            self.assertTrue(failed, "no create under faults failed: the faults did not bite")

            # A failed create leaves nothing that blocks the name: create again, then it works.
            for name in failed:
                r = srv.request("POST", "/v1/key/create/" + name)
                self.assertIn((r.status, r.message), [(200, None), (400, "key already exists")],
                              name)
                g = self.generate(srv, name)
                self.assertEqual(g.status, 200, (name, g))
                dek[name] = g.json()
            self.assertClean(srv)

        # Cold cache: every key is still the same key (its earlier ciphertext decrypts).
        with kesc() as srv:
            for name, d in sorted(dek.items()):
                r = srv.request("POST", "/v1/key/decrypt/" + name,
                                {"ciphertext": d["ciphertext"], "context": b64(b"minio")})
                self.assertEqual(r.status, 200, (name, r))
                self.assertEqual(r.json()["plaintext"], d["plaintext"], name)
            for name in dek:
                self.assertSingleVersion(name)
            r = srv.request("GET", "/v1/key/list/fault")
            self.assertEqual(sorted(r.json()["names"]),
                             sorted(n for n in dek if n.startswith("fault-key-")))
            self.assertClean(srv)

    # 3a. Vault sealed: cached keys keep serving; recovery after unseal without a restart.
    def test_3a_sealed_vault(self):
        self.create_keys(VAULT, "sealed-warm", "sealed-cold")
        with kesc(cache=CACHE_LONG) as srv:
            try:
                self.offline_behaviour(srv, VAULT, "sealed-warm", "sealed-cold",
                                       lambda: VAULT.ok("POST", "/_test/seal"))
                VAULT.ok("POST", "/_test/unseal")
                ok = self.wait_for(lambda: srv.request("GET", "/v1/ready").status == 200)
                self.assertTrue(ok, "kesc did not become ready after unseal")
                r = srv.request("GET", "/v1/status")
                self.assertNotIn("keystore_unreachable", r.json())
                g = self.generate(srv, "sealed-cold")
                self.assertEqual(g.status, 200, g)
                r = srv.request("POST", "/v1/key/create/sealed-new")
                self.assertEqual(r.status, 200, r)
            finally:
                VAULT.call("POST", "/_test/unseal")
            self.assertClean(srv)

    # 3b. Vault process gone: cached keys keep serving, the rest fails fast with KES's texts.
    def test_3b_vault_killed(self):
        v = Vault()
        try:
            v.configure()
            self.create_keys(v, "gone-warm", "gone-cold")
            ks = v.keystore()
            del ks["vault"]["status"]  # default ping: the cache's 10 s probe must notice
            with kesctest.Server(keystore=ks, config=dict(CACHE_LONG)) as srv:
                self.offline_behaviour(srv, v, "gone-warm", "gone-cold", v.stop)
                self.assertClean(srv)
        finally:
            v.stop()

    def create_keys(self, vault, *names):
        """Creates keys through a kesc that is then stopped: a new kesc starts with them cold
        (kesc, unlike KES, caches a key it has just created)."""
        with kesctest.Server(keystore=vault.keystore(), config=dict(CACHE_LONG)) as srv:
            for name in names:
                self.assertEqual(srv.request("POST", "/v1/key/create/" + name).status, 200)

    def offline_behaviour(self, srv, vault, warm, cold, take_down):
        g = self.generate(srv, warm)
        self.assertEqual(g.status, 200, g)
        dek = g.json()
        self.assertEqual(srv.request("GET", "/v1/ready").status, 200)
        take_down()
        t_down = time.monotonic()
        ready = self.wait_for(lambda: srv.request("GET", "/v1/ready").status == 504)
        r = srv.request("GET", "/v1/ready")
        self.assertEqual((r.status, r.message), (504, "key store is not reachable"), ready)
        # Let the cache's own 10 s status probe run at least once with Vault down, so what
        # follows is the cache's offline mode, not just a failed health check.
        time.sleep(max(0.0, 11.0 - (time.monotonic() - t_down)))
        r = srv.request("GET", "/v1/ready")
        self.assertEqual((r.status, r.message), (504, "key store is not reachable"))
        r = srv.request("GET", "/v1/status")
        self.assertEqual(r.status, 200, r)
        st = r.json()
        self.assertIs(st.get("keystore_unreachable"), True, st)
        self.assertIs(st.get("keystore_unavailable"), True, st)
        self.assertNotIn("keystore_latency", st)

        g = self.generate(srv, warm)
        self.assertEqual(g.status, 200, g)
        r = srv.request("POST", "/v1/key/decrypt/" + warm,
                        {"ciphertext": dek["ciphertext"], "context": b64(b"minio")})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["plaintext"], dek["plaintext"])

        t0 = time.monotonic()
        r = self.generate(srv, cold)
        took = time.monotonic() - t0
        self.assertEqual((r.status, r.message), (502, "failed to read key"))
        self.assertLess(took, 5.0, "an uncached key hung while Vault was down")
        t0 = time.monotonic()
        r = srv.request("POST", "/v1/key/create/%s-new" % cold)
        took = time.monotonic() - t0
        self.assertEqual((r.status, r.message), (502, "failed to create key"))
        self.assertLess(took, 5.0, "create hung while Vault was down")

    # 4. Cold key, many clients: exactly one Vault read.
    def test_4_cold_key_single_flight(self):
        with kesc(cache=CACHE_LONG) as srv:
            self.assertEqual(srv.request("POST", "/v1/key/create/flight-key").status, 200)
        with kesc(cache=CACHE_LONG) as srv:
            VAULT.ok("POST", "/_test/stats/reset")
            res = parallel(100, lambda i: self.generate(srv, "flight-key").status)
            self.assertEqual(res, [200] * 100)
            by_path = VAULT.stats()["by_path"]
            self.assertEqual(by_path.get("GET /v1/kv/data/flight-key"), 1, by_path)
            unwraps = sum(n for k, n in by_path.items() if "/v1/transit/decrypt/" in k)
            self.assertEqual(unwraps, 1, by_path)
            self.assertClean(srv)

    # 5. Auth lifecycle: short token TTL, tokens revoked under it, a bad secret at start-up.
    def test_5_auth_lifecycle(self):
        with kesc(role="kes-short") as srv:
            VAULT.ok("POST", "/_test/stats/reset")
            end = time.monotonic() + 15
            i = 0
            while time.monotonic() < end:
                name = "ttl-key-%03d" % i
                r = srv.request("POST", "/v1/key/create/" + name)
                self.assertEqual(r.status, 200, (i, r, srv.stderr_text()[-2000:]))
                r = self.generate(srv, name)
                self.assertEqual(r.status, 200, (i, r))
                r = srv.request("GET", "/v1/key/list/ttl")
                self.assertEqual(r.status, 200, (i, r))
                i += 1
                time.sleep(0.5)

            auth = {k: n for k, n in VAULT.stats()["by_path"].items() if "/v1/auth/" in k}
            print("  auth requests in 15 s with a 4 s token: %r" % auth, file=sys.stderr)
            VAULT.ok("POST", "/_test/expire-tokens")
            t0 = time.monotonic()
            seen = []

            def recovered():
                name = "expired-key-%d" % len(seen)
                r = srv.request("POST", "/v1/key/create/" + name)
                seen.append(r.status)
                return r.status == 200 and self.generate(srv, name).status == 200

            ok = self.wait_for(recovered, timeout=10, step=0.5)
            self.assertTrue(ok, "no recovery after the tokens expired: %r" % seen)
            self.assertLess(time.monotonic() - t0, 10)
            print("  recovered %.1f s after the tokens expired (%r)" %
                  (time.monotonic() - t0, seen), file=sys.stderr)
            self.assertEqual(srv.request("GET", "/v1/key/list/ttl").status, 200)
            self.assertClean(srv)

        secret = "0b5e7c11-bad0-4bad-8bad-5ec2e7000000"
        srv = kesctest.Server(keystore=VAULT.keystore(secret=secret), start=False)
        try:
            p = kesctest.run_kesc("server", "--config", srv.config_path, "--addr",
                                  "127.0.0.1:0", timeout=60)
            err = p.stderr.decode(errors="replace")
            self.assertNotEqual(p.returncode, 0, err)
            self.assertIn("approle", err.lower())
            self.assertNotIn(secret, err + p.stdout.decode(errors="replace"))
            self.assertNotIn("listening on", err)
            print("  bad secret: exit %d: %s" % (p.returncode, err.strip()[-300:]), file=sys.stderr)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
