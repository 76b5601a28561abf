"""Scale-out the way KES users run it (issue 11 part 1): N stateless kesc replicas on one Vault
(the test server, tests/vault/vault_server.py, K/V v2 + transit, AppRole), driven by a client
that balances over the endpoints as MinIO's KES client does, and `kesc migrate` from a
single-node fs keystore into that Vault for the switch.

What is checked:
  1. A name is never re-bound while a replica may still cache its old key. Two replicas: a key
     is deleted and created again through A while B has it cached. Without tombstones A creates
     the new key at once and B keeps issuing data keys under the old one, which do not decrypt
     through A. Required: 0 data keys issued after the re-create that fail to decrypt anywhere,
     and B says in its error log that the key it had cached is gone.
  2. Three replicas, one SIGKILLed in the middle of the run: a key created through one replica
     is used through the others, and the client's requests keep succeeding (failures reported;
     at most the requests in flight on the killed replica may fail).
  3. A key deleted through one replica stops being served by the others within the cache expiry
     (cache.expiry.any; the bound is documented in kesc.yml(5)).
  4. `kesc migrate` fs -> Vault: every key and its ciphertexts survive the switch, a deleted
     (tombstoned) key is not copied, --merge makes a second run harmless, a name the target
     reserves for a key deleted there is not taken.

No assertion depends on tight timing: bounds are the cache expiry plus generous slack, and
measured numbers are printed.
"""

import base64
import http.client
import json
import os
import signal
import ssl
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402
from test_vault_e2e import POLICY, Vault  # noqa: E402  (kesc's K/V v2 policy)

EXPIRY_S = 4  # cache.expiry.any of every replica in these tests
CACHE = {"cache": {"expiry": {"any": "%ds" % EXPIRY_S, "unused": "1m"}}}

VAULT = None


def setUpModule():
    global VAULT
    VAULT = Vault()
    try:
        VAULT.ok("POST", "/v1/sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
        VAULT.ok("POST", "/v1/sys/mounts/transit", {"type": "transit"})
        VAULT.ok("POST", "/v1/transit/keys/kes-wrap", {})
        VAULT.ok("POST", "/v1/sys/auth/approle", {"type": "approle"})
        VAULT.ok("PUT", "/v1/sys/policies/acl/kesc", {"policy": POLICY})
        VAULT.ok("POST", "/v1/auth/approle/role/kesc",
                 {"token_policies": ["kesc"], "token_ttl": "1h", "token_max_ttl": "24h"})
        rid = VAULT.ok("GET", "/v1/auth/approle/role/kesc/role-id")["data"]["role_id"]
        sid = VAULT.ok("POST", "/v1/auth/approle/role/kesc/secret-id", {})["data"]["secret_id"]
        VAULT.roles = {"kesc": (rid, sid)}
    except Exception:
        VAULT.stop()
        raise


def tearDownModule():
    if VAULT:
        VAULT.stop()


def vault_keystore():
    rid, sid = VAULT.roles["kesc"]
    return {"vault": {"endpoint": VAULT.url, "engine": "kv", "version": "v2",
                      "approle": {"id": rid, "secret": sid},
                      "transit": {"engine": "transit", "key": "kes-wrap"},
                      "status": {"ping": "1s"}}}


def replica(**kw):
    return kesctest.Server(keystore=vault_keystore(), config=dict(CACHE), **kw)


def b64(b):
    return base64.b64encode(b).decode()


CTX = b64(b'{"bucket":"b1/o1"}')


class Endpoints:
    """A client that behaves like MinIO's (kms-go, kes.md 11.5): requests go round-robin to the
    endpoints that are not timed out; an endpoint that fails with a transport error or a 5xx
    other than 501 is skipped for `skip` seconds; such a failure is retried, at most twice, on
    the next endpoint. Keep-alive connections, one per endpoint and thread."""

    def __init__(self, servers, skip=5.0, retries=2, cert="admin"):
        self.servers = servers
        self.skip = skip
        self.retries = retries
        self.ctx = [s.ssl_context(cert) for s in servers]
        self.down_until = [0.0] * len(servers)
        self.turn = 0
        self.lock = threading.Lock()
        self.local = threading.local()
        self.opened = []

    def close(self):
        with self.lock:
            for c in self.opened:
                c.close()
            self.opened = []

    def _pick(self):
        with self.lock:
            now = time.monotonic()
            n = len(self.servers)
            for _ in range(n):
                i = self.turn % n
                self.turn += 1
                if self.down_until[i] <= now:
                    return i
            i = self.turn % n  # all timed out: try one anyway, as kms-go probes
            self.turn += 1
            return i

    def _conn(self, i):
        conns = getattr(self.local, "conns", None)
        if conns is None:
            conns = self.local.conns = {}
        if i not in conns:
            conns[i] = http.client.HTTPSConnection("127.0.0.1", self.servers[i].port,
                                                   timeout=10, context=self.ctx[i])
            with self.lock:
                self.opened.append(conns[i])
        return conns[i]

    def _drop(self, i):
        c = self.local.conns.pop(i, None)
        if c:
            c.close()

    def once(self, i, method, path, body=None):
        """One request to endpoint i: (status, json-or-None), or (None, error text)."""
        data = None if body is None else json.dumps(body).encode()
        try:
            c = self._conn(i)
            c.request(method, path, body=data)
            r = c.getresponse()
            raw = r.read()
        except (OSError, http.client.HTTPException, ssl.SSLError) as e:
            self._drop(i)
            return None, repr(e)
        try:
            js = json.loads(raw) if raw.strip() else None
        except ValueError:
            js = None
        return r.status, js

    def request(self, method, path, body=None):
        """(status, json, endpoint) after kms-go's retries; status None = transport error."""
        for attempt in range(self.retries + 1):
            i = self._pick()
            status, js = self.once(i, method, path, body)
            failed = status is None or (status >= 500 and status != 501)
            if failed:
                with self.lock:
                    self.down_until[i] = time.monotonic() + self.skip
            if not failed or attempt == self.retries or (status not in (None, 503)):
                return status, js, i
        return status, js, i


def generate(client, i, name):
    return client.once(i, "POST", "/v1/key/generate/" + name, {"context": CTX})


def decrypt(client, i, name, dek):
    status, js = client.once(i, "POST", "/v1/key/decrypt/" + name,
                             {"ciphertext": dek["ciphertext"], "context": CTX})
    return status == 200 and js.get("plaintext") == dek["plaintext"]


class ScaleOut(unittest.TestCase):
    def assertClean(self, *servers):
        for s in servers:
            self.assertEqual(s.sanitizer_report(), "", s.stderr_text()[-4000:])

    # 1. Delete + re-create through A while B has the key cached (the hole issue 11 measured).
    def test_1_name_not_rebound_while_cached(self):
        name = "rebind-key"
        with replica() as a, replica() as b:
            cl = Endpoints([a, b])
            self.assertEqual(cl.once(0, "POST", "/v1/key/create/" + name)[0], 200)
            self.assertEqual(generate(cl, 1, name)[0], 200)  # B caches the key
            issued = []  # (t_start, endpoint, dek)
            stop = threading.Event()

            def issue():
                gen = Endpoints([a, b])
                k = 0
                while not stop.is_set():
                    i = k % 2
                    k += 1
                    t = time.monotonic()
                    status, js = generate(gen, i, name)
                    if status == 200:
                        issued.append((t, i, js))
                    time.sleep(0.02)
                gen.close()

            th = threading.Thread(target=issue)
            th.start()
            try:
                time.sleep(0.3)
                t_del = time.monotonic()
                self.assertEqual(cl.once(0, "DELETE", "/v1/key/delete/" + name)[0], 200)
                t_deleted = time.monotonic()
                refusals = set()
                deadline = time.monotonic() + 60
                while True:
                    # a generate sent after this create left may already meet the new key
                    t_create_sent = time.monotonic()
                    status, js = cl.once(0, "POST", "/v1/key/create/" + name)
                    if status == 200:
                        break
                    refusals.add((status, (js or {}).get("message")))
                    self.assertLess(time.monotonic(), deadline, refusals)
                    time.sleep(0.25)
                t_new = time.monotonic()
                time.sleep(2 * EXPIRY_S)
            finally:
                stop.set()
                th.join(30)

            after = [(t, i, d) for t, i, d in issued if t > t_new]
            bad = [(round(t - t_new, 2), i) for t, i, d in after
                   if not (decrypt(cl, 0, name, d) and decrypt(cl, 1, name, d))]
            old_by_b = [t for t, i, d in issued if t_del < t < t_new and i == 1]
            from_a_between = [t for t, i, d in issued
                              if t_deleted < t < t_create_sent and i == 0]
            # while the re-create was under way A may answer with the new key, never the old
            racing_create = [(t, d) for t, i, d in issued
                             if t_create_sent <= t <= t_new and i == 0]
            old_from_a = [round(t - t_create_sent, 3) for t, d in racing_create
                          if not decrypt(cl, 0, name, d)]
            print("  re-create possible %.1f s after the delete (refused with %r); B served "
                  "the deleted key for %.1f s after the delete; %d data keys issued after the "
                  "re-create, %d of them undecryptable" %
                  (t_new - t_del, sorted(refusals), (max(old_by_b) - t_del) if old_by_b else 0,
                   len(after), len(bad)), file=sys.stderr)
            self.assertGreater(len(after), 10)
            self.assertEqual(bad, [], "data keys issued after the re-create that do not "
                             "decrypt through both replicas (seconds after it, replica)")
            self.assertEqual(from_a_between, [], "A served the key it had deleted")
            self.assertEqual(old_from_a, [], "A served the deleted key while the name was "
                             "created again (seconds after the create was sent)")
            self.assertLessEqual(t_new - t_del, 60)
            # B said loudly that the key it had cached is gone, and said it once.
            gone = [l for l in b.stderr_text().splitlines()
                    if "'%s'" % name in l and "gone from the keystore" in l]
            self.assertEqual(len(gone), 1, b.stderr_text()[-3000:])
            self.assertIn("deleted at", gone[0])
            cl.close()
            self.assertClean(a, b)

    # 2. Three replicas, one killed with SIGKILL in the middle of the run.
    def test_2_replica_killed(self):
        name = "shared-key"
        with replica() as a, replica() as b, replica() as c:
            servers = [a, b, c]
            cl = Endpoints(servers)
            self.assertEqual(cl.once(0, "POST", "/v1/key/create/" + name)[0], 200)
            # Created through A, used through B and C (cold caches: they read Vault).
            for i in (1, 2):
                status, dek = generate(cl, i, name)
                self.assertEqual(status, 200, dek)
                for j in range(3):
                    self.assertTrue(decrypt(cl, j, name, dek), (i, j))

            results = []  # (t, op, ok, endpoint)
            stop = threading.Event()

            def work():
                w = Endpoints(servers)
                while not stop.is_set():
                    t = time.monotonic()
                    status, dek, i = w.request("POST", "/v1/key/generate/" + name,
                                               {"context": CTX})
                    results.append((t, "generate", status == 200, i))
                    if status != 200:
                        continue
                    status, js, j = w.request("POST", "/v1/key/decrypt/" + name,
                                              {"ciphertext": dek["ciphertext"],
                                               "context": CTX})
                    ok = status == 200 and js["plaintext"] == dek["plaintext"]
                    results.append((t, "decrypt", ok, j))
                    time.sleep(0.005)
                w.close()

            workers = [threading.Thread(target=work) for _ in range(2)]
            for w in workers:
                w.start()
            try:
                time.sleep(3)
                t_kill = time.monotonic()
                b.proc.send_signal(signal.SIGKILL)
                b.proc.wait(10)
                time.sleep(5)
            finally:
                stop.set()
                for w in workers:
                    w.join(60)
            failed = [(round(t - t_kill, 2), op, i) for t, op, ok, i in results if not ok]
            after = [r for r in results if r[0] > t_kill + 0.5 and r[2]]
            served = sorted({i for t, op, ok, i in results if ok})
            print("  %d requests, %d failed %r; %d succeeded after the kill; served by %r" %
                  (len(results), len(failed), failed, len(after), served), file=sys.stderr)
            self.assertLessEqual(len(failed), len(workers), failed)
            self.assertGreater(len(after), 20)
            self.assertEqual(served, [0, 1, 2])
            cl.close()
            self.assertClean(a, c)

    # 3. A delete through one replica reaches the others within the cache expiry.
    def test_3_delete_reaches_other_replicas(self):
        name = "doomed-key"
        with replica() as a, replica() as b, replica() as c:
            cl = Endpoints([a, b, c])
            self.assertEqual(cl.once(0, "POST", "/v1/key/create/" + name)[0], 200)
            for i in (1, 2):
                self.assertEqual(generate(cl, i, name)[0], 200)
            t0 = time.monotonic()
            self.assertEqual(cl.once(0, "DELETE", "/v1/key/delete/" + name)[0], 200)
            self.assertEqual(generate(cl, 0, name)[0], 404)
            stopped = {}
            while len(stopped) < 2 and time.monotonic() - t0 < EXPIRY_S + 20:
                for i in (1, 2):
                    if i not in stopped:
                        status, js = generate(cl, i, name)
                        if status == 404:
                            self.assertEqual(js["message"], "key does not exist")
                            stopped[i] = time.monotonic() - t0
                        else:
                            self.assertEqual(status, 200, js)
                time.sleep(0.1)
            print("  cache.expiry.any %d s: the others stopped serving after %r s" %
                  (EXPIRY_S, {i: round(s, 2) for i, s in stopped.items()}), file=sys.stderr)
            self.assertEqual(sorted(stopped), [1, 2])
            for s in stopped.values():
                self.assertLessEqual(s, EXPIRY_S + 5)
            # Listing never shows the deleted name, on any replica.
            for i in range(3):
                status, js = cl.once(i, "GET", "/v1/key/list/doomed")
                self.assertEqual((status, js["names"]), (200, []), i)
            cl.close()
            self.assertClean(a, b, c)

    # 4. The switch: a single-node fs keystore moved into Vault with kesc migrate.
    def test_4_migrate_fs_to_vault(self):
        names = ["mig-a", "mig-b", "mig-c"]
        with kesctest.Server() as fs:
            deks = {}
            for n in names + ["mig-gone", "clash"]:
                self.assertEqual(fs.request("POST", "/v1/key/create/" + n).status, 200)
                r = fs.request("POST", "/v1/key/generate/" + n, {"context": CTX})
                self.assertEqual(r.status, 200, r)
                deks[n] = r.json()
            self.assertEqual(fs.request("DELETE", "/v1/key/delete/mig-gone").status, 200)
            fs.stop()  # the switch: the single node stops serving
            target = replica(start=False)
            try:
                p = kesctest.run_kesc("migrate", "--from", fs.config_path, "--to",
                                      target.config_path, "mig-*")
                out = p.stdout.decode() + p.stderr.decode()
                self.assertEqual(p.returncode, 0, out)
                self.assertIn("copied 3, skipped 1, failed 0", out)
                self.assertIn("key 'mig-gone' is not copied: it was deleted at ", out)
                again = kesctest.run_kesc("migrate", "--from", fs.config_path, "--to",
                                          target.config_path, "--merge", "mig-*")
                out = again.stdout.decode() + again.stderr.decode()
                self.assertEqual(again.returncode, 0, out)
                self.assertIn("copied 0, skipped 4, failed 0", out)
                # A name the target still reserves for a key deleted there is not taken.
                with replica() as v:
                    self.assertEqual(v.request("POST", "/v1/key/create/clash").status, 200)
                    self.assertEqual(v.request("DELETE", "/v1/key/delete/clash").status, 200)
                clash = kesctest.run_kesc("migrate", "--from", fs.config_path, "--to",
                                          target.config_path, "clash")
                out = clash.stdout.decode() + clash.stderr.decode()
                self.assertEqual(clash.returncode, 1, out)
                self.assertIn("copied 0, skipped 0, failed 1", out)
                self.assertIn("key 'clash' cannot be created at the target: key 'clash' was "
                              "deleted at ", out)
            finally:
                target.cleanup()
        with replica() as a, replica() as b:
            cl = Endpoints([a, b])
            for n in names:
                for i in (0, 1):
                    self.assertTrue(decrypt(cl, i, n, deks[n]), (n, i))
            for i in (0, 1):
                self.assertEqual(generate(cl, i, "mig-gone")[0], 404)
                status, js = cl.once(i, "GET", "/v1/key/list/mig-*")
                self.assertEqual((status, js["names"]), (200, names))
            cl.close()
            self.assertClean(a, b)


if __name__ == "__main__":
    unittest.main(verbosity=2)
