"""Bulk decrypt through the real `kesc server` over mTLS (issue 15 §5): the request older MinIO
releases send when their identity's policy allows /v1/key/bulk/decrypt/… (kes-go's DecryptAll:
POST /v1/key/bulk/decrypt/<name>, a JSON array of {"ciphertext","context"} with context left
out when empty), KES's answers until its 2023-10-24 release, and one audit record per request
that says how many items it held.
"""

import base64
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402

POLICY = {
    "minio": {
        "allow": ["/v1/key/create/*", "/v1/key/generate/*", "/v1/key/decrypt/*",
                  "/v1/key/bulk/decrypt/*", "/v1/key/rotate/*", "/v1/key/retire/*",
                  "/v1/identity/self/describe"],
        "identities": ["minio"],
    },
    "old-pattern": {
        # A policy written as in KES's docs of the time, without the subtree star: it names
        # only the bare path, which no request uses (KES HEAD's matching, as for any route).
        "allow": ["/v1/key/bulk/decrypt"],
        "identities": ["limited"],
    },
}


def wait_for(fn, timeout=10.0):
    """fn() until it returns something true (the audit log is written by its own thread)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def b64(data):
    return base64.b64encode(data).decode()


def error_bytes(message):
    return b'{"message":' + json.dumps(message).encode() + b"\n}"


class BulkDecryptTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # MinIO's certificate is made first so the policy can name its identity.
        cls.minio_dir = tempfile.mkdtemp(prefix="kesctest-minio-")
        certs = kesctest.Certs(cls.minio_dir)
        certs.client("minio")
        policies = json.loads(json.dumps(POLICY))
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
        cls.srv.stop()

    def deks(self, key, n):
        out = []
        for i in range(n):
            ctx = json.dumps({"bucket": "bucket/object-%d" % i}, separators=(",", ":"))
            ctx = ctx.encode() if i % 2 == 0 else b""
            r = self.srv.request("POST", "/v1/key/generate/" + key,
                                 {"context": b64(ctx)}, cert="minio")
            self.assertEqual(r.status, 200, r.body)
            js = r.json()
            out.append((base64.b64decode(js["plaintext"]), js["ciphertext"], ctx))
        return out

    @staticmethod
    def body(items):
        # kes-go: json.Marshal of []struct{Ciphertext []byte; Context []byte `omitempty`}
        return json.dumps([dict({"ciphertext": ct}, **({"context": b64(ctx)} if ctx else {}))
                           for _, ct, ctx in items], separators=(",", ":"))

    def test_minio_decrypt_all(self):
        r = self.srv.request("POST", "/v1/key/create/bulk-a", cert="minio")
        self.assertEqual(r.status, 200)
        items = self.deks("bulk-a", 7)
        r = self.srv.request("POST", "/v1/key/bulk/decrypt/bulk-a", self.body(items),
                             cert="minio", headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertTrue(r.body.endswith(b"]\n"))
        self.assertEqual([base64.b64decode(x["plaintext"]) for x in r.json()],
                         [pt for pt, _, _ in items])
        # MinIO chooses bulk decrypt when DescribeSelf shows a policy allowing the subtree.
        r = self.srv.request("GET", "/v1/identity/self/describe", cert="minio")
        self.assertTrue(any(a.startswith("/v1/key/bulk/decrypt/") for a in r.json()["allow"]))

    def test_rotated_key(self):
        # after rotations, a bulk decrypts data keys of every version, as single decrypts do
        # (MinIO sends no version), and a retired version fails the whole request
        self.assertEqual(self.srv.request("POST", "/v1/key/create/bulk-r", cert="minio").status,
                         200)
        items = self.deks("bulk-r", 2)
        for _ in range(2):
            r = self.srv.request("POST", "/v1/key/rotate/bulk-r", cert="minio")
            self.assertEqual(r.status, 200, r.body)
            items += self.deks("bulk-r", 2)
        r = self.srv.request("POST", "/v1/key/bulk/decrypt/bulk-r", self.body(items),
                             cert="minio")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([base64.b64decode(x["plaintext"]) for x in r.json()],
                         [pt for pt, _, _ in items])
        r = self.srv.request("POST", "/v1/key/retire/bulk-r",
                             {"min_decryption_version": "v2"}, cert="minio")
        self.assertEqual(r.status, 200, r.body)
        single = self.srv.request("POST", "/v1/key/decrypt/bulk-r",
                                  {"ciphertext": items[0][1],
                                   "context": b64(items[0][2])}, cert="minio")
        self.assertEqual(single.status, 400, single.body)
        r = self.srv.request("POST", "/v1/key/bulk/decrypt/bulk-r", self.body(items),
                             cert="minio")
        self.assertEqual((r.status, r.body), (single.status, single.body))
        r = self.srv.request("POST", "/v1/key/bulk/decrypt/bulk-r", self.body(items[2:]),
                             cert="minio")
        self.assertEqual(r.status, 200, r.body)

    def test_one_failure_fails_all(self):
        self.srv.request("POST", "/v1/key/create/bulk-b", cert="minio")
        items = self.deks("bulk-b", 3)
        pt, ct, _ = items[1]
        items[1] = (pt, ct, b"another context")
        r = self.srv.request("POST", "/v1/key/bulk/decrypt/bulk-b", self.body(items),
                             cert="minio")
        self.assertEqual((r.status, r.body),
                         (400, error_bytes("decryption failed: ciphertext is not authentic")))
        self.assertNotIn(b"plaintext", r.body)
        # whatever the single decrypt answers for the failing item, the bulk answers: a
        # ciphertext that is no ciphertext at all, last of three
        items = self.deks("bulk-b", 2) + [(b"", b64(b"not a ciphertext"), b"")]
        single = self.srv.request("POST", "/v1/key/decrypt/bulk-b",
                                  {"ciphertext": items[2][1]}, cert="minio")
        self.assertEqual(single.status, 400)
        r = self.srv.request("POST", "/v1/key/bulk/decrypt/bulk-b", self.body(items),
                             cert="minio")
        self.assertEqual((r.status, r.body), (single.status, single.body))
        # the failed request's one audit record still says how many items it held
        recs = wait_for(
            lambda: [a for a in self.srv.audit_lines()
                     if a["request"]["path"] == "/v1/key/bulk/decrypt/bulk-b"
                     and a["response"]["code"] == 400] or None)
        self.assertEqual([a["request"]["items"] for a in recs], [3, 3])

    def test_limits_and_errors(self):
        self.srv.request("POST", "/v1/key/create/bulk-c", cert="minio")
        items = self.deks("bulk-c", 1)
        r = self.srv.request("POST", "/v1/key/bulk/decrypt/bulk-c", self.body(items * 1000),
                             cert="minio")
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.json()), 1000)
        r = self.srv.request("POST", "/v1/key/bulk/decrypt/bulk-c", self.body(items * 1001),
                             cert="minio")
        self.assertEqual((r.status, r.body), (400, error_bytes("too many ciphertexts")))
        # KES's limit for this route was a MiB, not the 1,000,000 bytes of the others
        pad = " " * ((1 << 20) - 2)
        r = self.srv.request("POST", "/v1/key/bulk/decrypt/bulk-c", "[" + pad + "]",
                             cert="minio")
        self.assertEqual((r.status, r.body), (200, b"[]\n"))
        r = self.srv.request("POST", "/v1/key/bulk/decrypt/bulk-c", "[" + pad + " ]",
                             cert="minio")
        self.assertEqual((r.status, r.body), (400, error_bytes("invalid request body")))
        r = self.srv.request("POST", "/v1/key/bulk/decrypt/no-such-key", "[]", cert="minio")
        self.assertEqual((r.status, r.body), (404, error_bytes("key does not exist")))
        r = self.srv.request("PUT", "/v1/key/bulk/decrypt/bulk-c", "[]", cert="minio")
        self.assertEqual(r.status, 405)
        r = self.srv.request("POST", "/v1/key/bulk/decrypt/bulk-c", "[]", cert="limited")
        self.assertEqual((r.status, r.body),
                         (403, error_bytes("not authorized: insufficient permissions")))

    def test_one_audit_record_with_items(self):
        self.srv.request("POST", "/v1/key/create/bulk-d", cert="minio")
        items = self.deks("bulk-d", 5)
        r = self.srv.request("POST", "/v1/key/bulk/decrypt/bulk-d", self.body(items),
                             cert="minio")
        self.assertEqual(r.status, 200)
        recs = wait_for(
            lambda: [a for a in self.srv.audit_lines()
                     if a["request"]["path"] == "/v1/key/bulk/decrypt/bulk-d"] or None)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["request"]["items"], 5)
        self.assertEqual(recs[0]["request"]["method"], "POST")
        self.assertEqual(recs[0]["response"]["code"], 200)
        # single requests keep KES's record exactly
        single = [a for a in self.srv.audit_lines()
                  if a["request"]["path"] == "/v1/key/generate/bulk-d"]
        self.assertTrue(single)
        self.assertEqual(sorted(single[0]["request"]), ["identity", "ip", "method", "path"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
