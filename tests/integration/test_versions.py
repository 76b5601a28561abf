"""Key versions, rotation and deletion protection through the real server (issue 14).

What is checked, on the fs keystore and on the Vault test server (K/V v2 + transit):
  1. MinIO's way: data keys made under every version of a key rotated several times decrypt
     with no version in the request (MinIO sends none); kms-go's "version" member is in the
     generate reply of a rotated key.
  2. A key never rotated keeps KES's exact bytes: its stored record is KES's base64 protobuf,
     its ciphertexts KES's raw format, its replies KES's members; after a rotation the stored
     record keeps the old record byte for byte as version 1.
  3. kill -9 in the middle of rotations, on fs and on Vault (with writes slowed so that one is
     in flight): after a restart the key reads, its versions only grew, no rotation answered
     before the kill is lost, and every data key confirmed before the kill decrypts (those
     made under the versions the rotations just added included).
  4. Two servers rotating one key at once (two processes on one fs directory; two replicas on
     Vault): every rotation is kept (version = 1 + all rotations) and every data key either
     made decrypts on both.
  5. Replicas with the key cached: one rotates; the other decrypts the new ciphertexts at once
     and makes its own under the new version within its cache expiry.
  6. Deletion protection: a delete is scheduled, restorable, purged by an admin or by the
     server once the window is over; each step is in the audit log.
  7. Automatic rotation by age on two replicas: never two rotations of one period.
  8. `kesc migrate` fs -> Vault copies every version of a rotated key and a scheduled deletion
     as it is (still restorable at the target).
  9. The kesc CLI verbs (rotate, rewrap, retire, restore, purge) and `key info` of a rotated
     key; `key info` of a key never rotated prints what kes prints.

No assertion depends on tight timing: waits poll with generous bounds.
"""

import base64
import json
import os
import random
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402
from test_vault_e2e import POLICY, Vault  # noqa: E402  (kesc's K/V v2 policy)

VAULT = None
CTX = base64.b64encode(b'{"bucket":"b/o"}').decode()


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


def vault_keystore(prefix):
    rid, sid = VAULT.roles["kesc"]
    return {"vault": {"endpoint": VAULT.url, "engine": "kv", "version": "v2", "prefix": prefix,
                      "approle": {"id": rid, "secret": sid},
                      "transit": {"engine": "transit", "key": "kes-wrap"},
                      "status": {"ping": "1s"}}}


def restart(srv):
    """Starts srv again after it was killed (same directory, config and keystore)."""
    if srv.proc.poll() is None:
        srv.proc.kill()
    srv.proc.wait()
    srv._stdout.close()
    srv._stderr.close()
    srv.start()


def ok(r):
    if r.status != 200:
        raise AssertionError("%d %s" % (r.status, r.body[:300]))
    return r


def dek(srv, name):
    r = ok(srv.request("POST", "/v1/key/generate/" + name, {"context": CTX}))
    j = r.json()
    return j["plaintext"], j["ciphertext"], j.get("version")


def decrypts(srv, name, pt, ct, version=None):
    body = {"ciphertext": ct, "context": CTX}
    if version:
        body["version"] = version
    r = srv.request("POST", "/v1/key/decrypt/" + name, body)
    return r.status == 200 and r.json()["plaintext"] == pt


def describe(srv, name):
    return ok(srv.request("GET", "/v1/key/describe/" + name)).json()


def current_version(srv, name):
    """The version srv serves (from its cache, possibly older than the keystore's)."""
    return int(describe(srv, name).get("version", "v1")[1:])


def stored_version(srv, name):
    """The version the keystore holds: asked of a server that has nothing cached."""
    with kesctest.Server(keystore=srv.keystore) as fresh:
        return current_version(fresh, name)


class MinIOStyle(unittest.TestCase):
    """1 and 2: version-less decrypt after several rotations; KES's bytes until a rotation."""

    def check(self, srv, keys_dir=None):
        ok(srv.request("POST", "/v1/key/create/minio-default"))
        r = ok(srv.request("POST", "/v1/key/generate/minio-default", {"context": CTX}))
        self.assertEqual(list(r.json().keys()), ["plaintext", "ciphertext"])
        self.assertEqual(len(base64.b64decode(r.json()["ciphertext"])), 32 + 44)
        d = json.loads(srv.request("GET", "/v1/key/describe/minio-default").body,
                       object_pairs_hook=lambda p: p)
        self.assertEqual([k for k, _ in d], ["name", "algorithm", "created_at", "created_by"])
        record_v1 = None
        if keys_dir:
            with open(os.path.join(keys_dir, "minio-default"), "rb") as f:
                record_v1 = f.read()
            pb = base64.b64decode(record_v1, validate=True)
            self.assertEqual(pb[:4], b"\x0a\x24\x0a\x20")  # KeyVersion{Key{32 bytes
        made = [dek(srv, "minio-default") + (1,)]
        for v in range(2, 6):
            r = ok(srv.request("POST", "/v1/key/rotate/minio-default"))
            self.assertEqual(r.json(), {"version": "v%d" % v})
            pt, ct, version = dek(srv, "minio-default")
            self.assertEqual(version, "v%d" % v)
            self.assertEqual(len(base64.b64decode(ct)), 32 + 44 + 7)
            made.append((pt, ct, version, v))
        for pt, ct, _, v in made:
            self.assertTrue(decrypts(srv, "minio-default", pt, ct), "version %d" % v)
        d = describe(srv, "minio-default")
        self.assertEqual(d["version"], "v5")
        self.assertEqual([x["version"] for x in d["versions"]], ["v1", "v2", "v3", "v4", "v5"])
        if keys_dir:
            with open(os.path.join(keys_dir, "minio-default"), "rb") as f:
                rec = json.loads(f.read())
            self.assertEqual(rec["algorithm"], "kesc-versioned-key")
            self.assertEqual(rec["versions"][0].encode(), record_v1)
        # the HMAC key is kept: MinIO's derived credentials stay the same
        m = srv.request("PUT", "/v1/key/hmac/minio-default", {"message": "cm9vdA=="}).json()
        ok(srv.request("POST", "/v1/key/rotate/minio-default"))
        self.assertEqual(srv.request("PUT", "/v1/key/hmac/minio-default",
                                     {"message": "cm9vdA=="}).json(), m)

    def test_fs(self):
        with kesctest.Server() as srv:
            self.check(srv, os.path.join(srv.dir, "keys"))
            self.assertEqual(srv.sanitizer_report(), "")

    def test_vault(self):
        with kesctest.Server(keystore=vault_keystore("minio-style")) as srv:
            self.check(srv)
            self.assertEqual(srv.sanitizer_report(), "")


class KillDuringRotate(unittest.TestCase):
    """3: kill -9 at any moment of a rotation leaves the old record or the new one."""

    ROUNDS = 12

    def run_kills(self, srv, name, slow=None, window=0.3):
        ok(srv.request("POST", "/v1/key/create/" + name))
        confirmed = []  # (plaintext, ciphertext) answered 200 before a kill
        last = 1
        rng = random.Random(14)
        for _ in range(self.ROUNDS):
            confirmed.append(dek(srv, name)[:2])
            stop = threading.Event()
            answered = []  # versions whose rotation was answered 200 before the kill

            def hammer():
                # rotations, each followed by a data key under the new version: whatever was
                # answered 200 is confirmed and must survive the kill
                while not stop.is_set():
                    try:
                        r = srv.request("POST", "/v1/key/rotate/" + name)
                        if r.status != 200:
                            continue
                        answered.append(int(r.json()["version"][1:]))
                        r = srv.request("POST", "/v1/key/generate/" + name, {"context": CTX})
                        if r.status == 200:
                            confirmed.append((r.json()["plaintext"], r.json()["ciphertext"]))
                    except Exception:
                        return  # the server is gone

            t = threading.Thread(target=hammer)
            t.start()
            time.sleep(rng.uniform(0.0, window))
            srv.proc.send_signal(signal.SIGKILL)
            stop.set()
            t.join()
            if slow:
                slow(0)
            restart(srv)
            if slow:
                slow(300)
            now = current_version(srv, name)
            self.assertGreaterEqual(now, last)
            # no confirmed rotation is lost
            self.assertGreaterEqual(now, max(answered, default=1))
            last = now
            for pt, ct in confirmed:
                self.assertTrue(decrypts(srv, name, pt, ct))
        self.assertGreater(last, 1)
        print("kill -9 during rotations: %d kills, key at v%d, %d data keys checked" %
              (self.ROUNDS, last, len(confirmed)))

    def test_fs(self):
        with kesctest.Server() as srv:
            self.run_kills(srv, "killed")
            leftovers = [n for n in os.listdir(os.path.join(srv.dir, "keys")) if n != "killed"]
            self.assertTrue(all(n.startswith(".kesc-tmp-") for n in leftovers), leftovers)

    def test_vault(self):
        def slow(ms):
            VAULT.ok("POST", "/_test/latency", {"ms": ms, "path_prefix": "/v1/kv/data/",
                                                "method": "PUT"})

        try:
            with kesctest.Server(keystore=vault_keystore("killed")) as srv:
                slow(300)
                # writes take 300 ms: kills land in a write, and some rotations are answered
                self.run_kills(srv, "killed", slow, window=1.2)
        finally:
            VAULT.ok("POST", "/_test/reset-faults")


class TwoServersRotate(unittest.TestCase):
    """4: two servers rotating one key at once lose no version."""

    PER_SERVER = 10

    def race(self, a, b, name):
        ok(a.request("POST", "/v1/key/create/" + name))
        made = {0: [], 1: []}
        errors = []

        def work(i, srv):
            try:
                for _ in range(self.PER_SERVER):
                    ok(srv.request("POST", "/v1/key/rotate/" + name))
                    made[i].append(dek(srv, name)[:2])
            except Exception as e:  # reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate((a, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(stored_version(a, name), 1 + 2 * self.PER_SERVER)
        for srv in (a, b):
            for pt, ct in made[0] + made[1]:
                self.assertTrue(decrypts(srv, name, pt, ct))

    def test_fs_two_processes(self):
        keys = {"fs": {"path": None}}
        with kesctest.Server(start=False) as a:
            keys["fs"]["path"] = os.path.join(a.dir, "keys")
            a.keystore = keys
            a.write_config()
            a.start()
            with kesctest.Server(keystore=keys) as b:
                self.race(a, b, "raced")

    def test_vault_two_replicas(self):
        with kesctest.Server(keystore=vault_keystore("raced")) as a, \
                kesctest.Server(keystore=vault_keystore("raced")) as b:
            self.race(a, b, "raced")


class CachedReplicas(unittest.TestCase):
    """5: a replica that cached the key keeps decrypting and picks up the new version."""

    EXPIRY_S = 4

    def test_rotation_reaches_every_replica(self):
        cache = {"cache": {"expiry": {"any": "%ds" % self.EXPIRY_S, "unused": "1m"}}}
        with kesctest.Server(keystore=vault_keystore("cached"), config=cache) as a, \
                kesctest.Server(keystore=vault_keystore("cached"), config=cache) as b:
            ok(a.request("POST", "/v1/key/create/shared"))
            old_pt, old_ct, _ = dek(b, "shared")  # b caches v1
            ok(a.request("POST", "/v1/key/rotate/shared"))
            rotated_at = time.monotonic()
            pt, ct, version = dek(a, "shared")
            self.assertEqual(version, "v2")
            # b has v1 cached and still opens v2's ciphertext (it reads the key again)
            self.assertTrue(decrypts(b, "shared", pt, ct))
            self.assertTrue(decrypts(b, "shared", old_pt, old_ct))
            # and makes its own under v2 within its cache expiry
            deadline = rotated_at + self.EXPIRY_S + 30
            seen = None
            while time.monotonic() < deadline:
                seen = dek(b, "shared")
                if seen[2] == "v2":
                    break
                time.sleep(0.2)
            print("replica sealed under v2 after %.1fs (cache expiry %ds)" %
                  (time.monotonic() - rotated_at, self.EXPIRY_S))
            self.assertEqual(seen[2], "v2")
            self.assertTrue(decrypts(a, "shared", seen[0], seen[1]))


class DeletionProtection(unittest.TestCase):
    """6: scheduled deletion, restore, purge by an admin and by the server; audited."""

    def test_fs(self):
        life = {"key_lifecycle": {"delete_window": "3s", "check_interval": "1s"}}
        with kesctest.Server(config=life) as srv:
            ok(srv.request("POST", "/v1/key/create/kept"))
            pt, ct, _ = dek(srv, "kept")
            ok(srv.request("DELETE", "/v1/key/delete/kept"))
            self.assertEqual(srv.request("GET", "/v1/key/describe/kept").status, 404)
            r = srv.request("POST", "/v1/key/create/kept")
            self.assertEqual((r.status, r.message),
                             (409, "key was deleted recently: its name cannot be used again "
                                   "yet"))
            ok(srv.request("POST", "/v1/key/restore/kept"))
            self.assertTrue(decrypts(srv, "kept", pt, ct))
            ok(srv.request("DELETE", "/v1/key/delete/kept"))
            ok(srv.request("DELETE", "/v1/key/purge/kept"))
            r = srv.request("POST", "/v1/key/restore/kept")
            self.assertEqual((r.status, r.message),
                             (404, "key was deleted and cannot be restored"))
            # the server purges once the window is over
            ok(srv.request("POST", "/v1/key/create/expiring"))
            ok(srv.request("DELETE", "/v1/key/delete/expiring"))
            path = os.path.join(srv.dir, "keys", "expiring")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with open(path, "rb") as f:
                    if b'"key"' not in f.read():
                        break
                time.sleep(0.2)
            with open(path, "rb") as f:
                tomb = json.loads(f.read())
            self.assertEqual(tomb["algorithm"], "kesc-tombstone")
            self.assertNotIn("key", tomb)
            r = srv.request("POST", "/v1/key/restore/expiring")
            self.assertEqual(r.status, 404)
            steps = [(a["request"]["method"], a["request"]["path"], a["request"]["identity"],
                      a["response"]["code"]) for a in srv.audit_lines()]
            admin = srv.identity("admin")
            for step in [("DELETE", "/v1/key/delete/kept", admin, 200),
                         ("PUT", "/v1/key/restore/kept", admin, 200),
                         ("DELETE", "/v1/key/purge/kept", admin, 200),
                         ("DELETE", "/v1/key/purge/expiring", "kesc:key_lifecycle", 200)]:
                method, path, who, code = step
                self.assertTrue(any(s[1:] == (path, who, code) and
                                    (s[0] == method or s[0] == "POST") for s in steps),
                                (step, steps))
            self.assertIn("key_lifecycle: key 'expiring' purged", srv.stderr_text())


class AutomaticRotation(unittest.TestCase):
    """7: rotate_after on two replicas rotates once per period, never twice."""

    def test_two_replicas(self):
        # caches of a second, so that polling a replica sees the keystore's state soon
        life = {"key_lifecycle": {"rotate_after": "2s", "check_interval": "1s"},
                "cache": {"expiry": {"any": "1s", "unused": "1s"}}}
        with kesctest.Server(keystore=vault_keystore("auto"), config=life) as a, \
                kesctest.Server(keystore=vault_keystore("auto"), config=life) as b:
            ok(a.request("POST", "/v1/key/create/aging"))
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and current_version(b, "aging") < 4:
                time.sleep(0.5)
            # both stopped (their passes with them); then what the keystore holds, read by a
            # server with nothing cached
            a.stop()
            b.stop()
            with kesctest.Server(keystore=a.keystore) as fresh:
                d = describe(fresh, "aging")
            self.assertGreaterEqual(int(d["version"][1:]), 4)
            times = [x["created_at"] for x in d["versions"]]

            def seconds(t):  # RFC 3339 with up to 9 fraction digits, UTC
                base, _, frac = t.rstrip("Z").partition(".")
                return time.mktime(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + \
                    float("0." + (frac or "0"))

            gaps = [seconds(y) - seconds(x) for x, y in zip(times, times[1:])]
            print("automatic rotations %d apart: %s" %
                  (len(gaps), ", ".join("%.2fs" % g for g in gaps)))
            # never two rotations within rotate_after (2 s), by either replica
            self.assertTrue(all(g >= 1.99 for g in gaps), gaps)
            audited = [x for s in (a, b) for x in s.audit_lines()
                       if x["request"]["path"] == "/v1/key/rotate/aging"]
            self.assertEqual(len(audited), len(gaps))
            self.assertTrue(all(x["request"]["identity"] == "kesc:key_lifecycle"
                                for x in audited))


class Migrate(unittest.TestCase):
    """8: migrate keeps versions and restorable deletions."""

    def test_fs_to_vault(self):
        life = {"key_lifecycle": {"delete_window": "1h"}}
        with kesctest.Server(config=life) as src, \
                kesctest.Server(keystore=vault_keystore("migrated"), config=life,
                                start=False) as dst:
            ok(src.request("POST", "/v1/key/create/rotated"))
            made = [dek(src, "rotated")]
            for _ in range(2):
                ok(src.request("POST", "/v1/key/rotate/rotated"))
                made.append(dek(src, "rotated"))
            ok(src.request("POST", "/v1/key/create/doomed"))
            doomed = dek(src, "doomed")
            ok(src.request("DELETE", "/v1/key/delete/doomed"))
            ok(src.request("POST", "/v1/key/create/gone"))
            ok(src.request("DELETE", "/v1/key/delete/gone"))
            ok(src.request("DELETE", "/v1/key/purge/gone"))
            src.stop()
            r = kesctest.run_kesc("migrate", "--from", src.config_path, "--to",
                                  dst.config_path, "--quiet")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.decode().strip(), "copied 2, skipped 1, failed 0")
            dst.start()
            self.assertEqual(current_version(dst, "rotated"), 3)
            for pt, ct, _ in made:
                self.assertTrue(decrypts(dst, "rotated", pt, ct))
            self.assertEqual(dst.request("GET", "/v1/key/describe/doomed").status, 404)
            ok(dst.request("POST", "/v1/key/restore/doomed"))
            self.assertTrue(decrypts(dst, "doomed", doomed[0], doomed[1]))
            self.assertEqual(dst.request("GET", "/v1/key/describe/gone").status, 404)


def on_terminal(srv, *args):
    """Runs the kesc CLI with standard output on a pseudo-terminal (it prints for people)."""
    import pty
    import select
    import subprocess
    master, slave = pty.openpty()
    env = dict(os.environ)
    env.update(srv.cli_env("admin"))
    proc = subprocess.Popen([kesctest.KESC_BIN] + list(args), env=env, stdout=slave,
                            stderr=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        proc.wait(timeout=30)
        os.close(master)
    return out.replace(b"\r\n", b"\n").decode()


class Cli(unittest.TestCase):
    """9: kesc key rotate|rewrap|retire|restore|purge, and info with versions."""

    def run_ok(self, srv, *args):
        r = srv.cli(*args)
        self.assertEqual(r.returncode, 0, (args, r.stdout, r.stderr))
        return r.stdout.decode()

    def test_verbs(self):
        life = {"key_lifecycle": {"delete_window": "1h"}}
        with kesctest.Server(config=life) as srv:
            self.run_ok(srv, "key", "create", "cli-key")
            plain = self.run_ok(srv, "key", "info", "cli-key")
            self.assertRegex(plain, r"^Name +cli-key\nAlgorithm +\S+\nDate +.*\nOwner +\S+$")
            info = json.loads(self.run_ok(srv, "key", "info", "--json", "cli-key"))
            self.assertNotIn("versions", info)
            old = json.loads(self.run_ok(srv, "key", "dek", "cli-key"))
            self.assertEqual(json.loads(self.run_ok(srv, "key", "rotate", "cli-key")),
                             {"name": "cli-key", "version": "v2"})
            rewrapped = json.loads(self.run_ok(srv, "key", "rewrap", "cli-key",
                                               old["ciphertext"]))
            self.assertEqual(rewrapped["version"], "v2")
            out = json.loads(self.run_ok(srv, "key", "decrypt", "cli-key",
                                         rewrapped["ciphertext"]))
            self.assertEqual(out["plaintext"], old["plaintext"])
            self.assertEqual(json.loads(self.run_ok(srv, "key", "retire", "cli-key", "v2")),
                             {"min_decryption_version": "v2", "version": "v2"})
            r = srv.cli("key", "decrypt", "cli-key", old["ciphertext"])
            self.assertEqual(r.returncode, 1)
            self.assertIn("key version 'v1' is retired", r.stderr.decode())
            info = json.loads(self.run_ok(srv, "key", "info", "--json", "cli-key"))
            self.assertEqual((info["version"], info["min_decryption_version"]), ("v2", "v2"))
            self.assertEqual([v["version"] for v in info["versions"]], ["v1", "v2"])
            text = on_terminal(srv, "key", "info", "cli-key")
            self.assertRegex(text, r"\nVersion +v2 \(older than v2 retired\)\n"
                                   r"Versions +v1 +\S+ +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  \S+\n"
                                   r" +v2 +\S+ +\d{4}-")
            self.assertEqual(on_terminal(srv, "key", "rotate", "cli-key"), "cli-key: v3\n")
            r = srv.cli("key", "retire", "cli-key", "v7")
            self.assertEqual(r.returncode, 1)
            self.assertIn("key version 'v7' does not exist", r.stderr.decode())
            self.run_ok(srv, "key", "rm", "cli-key")
            self.run_ok(srv, "key", "restore", "cli-key")
            self.run_ok(srv, "key", "info", "cli-key")
            self.run_ok(srv, "key", "rm", "cli-key")
            self.run_ok(srv, "key", "purge", "cli-key")
            r = srv.cli("key", "restore", "cli-key")
            self.assertEqual(r.returncode, 1)
            self.assertIn('failed to restore key "cli-key": key was deleted and cannot be '
                          'restored', r.stderr.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
