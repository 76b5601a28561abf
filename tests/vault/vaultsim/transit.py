"""Transit engine with a real, versioned, authenticated stdlib cipher (vault-api.md §4).

Cipher (not AES-GCM, but same framing): per key version a random 32-byte secret K.
enc = SHA256(K||"enc"), mac = SHA256(K||"mac"); 12-byte random nonce; keystream block i =
SHA256(enc||nonce||i as 8-byte BE); tag = HMAC-SHA256(mac, nonce||len(aad)||aad||ct)[:16].
Ciphertext: "vault:v<N>:" + base64(nonce||ct||tag).
"""
import base64
import binascii
import hashlib
import hmac
import os
import struct
import time

from .backend import Backend
from .util import Resp, VaultError, bad_request, parse_bool, parse_int, unsupported_operation, unsupported_path

NONCE, TAG = 12, 16


def _keystream_xor(key, nonce, data):
    out = bytearray(len(data))
    for block in range(0, len(data), 32):
        ks = hashlib.sha256(key + nonce + struct.pack(">Q", block // 32)).digest()
        chunk = data[block:block + 32]
        for i, b in enumerate(chunk):
            out[block + i] = b ^ ks[i]
    return bytes(out)


def _subkeys(secret, context):
    if context:
        secret = hmac.new(secret, b"derive" + context, hashlib.sha256).digest()
    return hashlib.sha256(secret + b"enc").digest(), hashlib.sha256(secret + b"mac").digest()


def seal(secret, plaintext, aad=b"", context=b""):
    enc, mac = _subkeys(secret, context)
    nonce = os.urandom(NONCE)
    ct = _keystream_xor(enc, nonce, plaintext)
    tag = hmac.new(mac, nonce + struct.pack(">Q", len(aad)) + aad + ct, hashlib.sha256).digest()[:TAG]
    return nonce + ct + tag


def open_(secret, blob, aad=b"", context=b""):
    if len(blob) < NONCE:
        raise bad_request("invalid ciphertext length")
    if len(blob) < NONCE + TAG:
        raise bad_request("cipher: message authentication failed")
    enc, mac = _subkeys(secret, context)
    nonce, ct, tag = blob[:NONCE], blob[NONCE:-TAG], blob[-TAG:]
    want = hmac.new(mac, nonce + struct.pack(">Q", len(aad)) + aad + ct, hashlib.sha256).digest()[:TAG]
    if not hmac.compare_digest(tag, want):
        raise bad_request("cipher: message authentication failed")
    return _keystream_xor(enc, nonce, ct)


def _b64(data, field):
    if data is None or data == "":
        return b""
    if not isinstance(data, str):
        raise bad_request("failed to base64-decode %s" % field)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("failed to base64-decode %s" % field)


SYMMETRIC = ("aes256-gcm96", "aes128-gcm96", "chacha20-poly1305", "xchacha20-poly1305")


class Transit(Backend):
    def __init__(self, core, ns):
        super().__init__(core, ns)
        self.keys = {}

    def existence(self, req):
        parts = req.sub.split("/")
        if len(parts) == 2 and parts[0] in ("keys", "encrypt"):
            return parts[1] in self.keys
        return None

    def _new_key(self, name, ktype="aes256-gcm96", derived=False):
        return {"name": name, "type": ktype, "derived": derived, "deletion_allowed": False, "exportable": False,
                "allow_plaintext_backup": False, "min_decryption_version": 1, "min_encryption_version": 0,
                "versions": {1: (os.urandom(32), int(time.time()))}, "latest": 1}

    @staticmethod
    def describe(k):
        return {"allow_plaintext_backup": k["allow_plaintext_backup"], "auto_rotate_period": 0,
                "deletion_allowed": k["deletion_allowed"], "derived": k["derived"],
                "exportable": k["exportable"], "imported_key": False,
                "keys": {str(n): ts for n, (_, ts) in sorted(k["versions"].items())},
                "latest_version": k["latest"], "min_available_version": 0,
                "min_decryption_version": k["min_decryption_version"],
                "min_encryption_version": k["min_encryption_version"], "name": k["name"],
                "supports_decryption": True, "supports_derivation": True, "supports_encryption": True,
                "supports_signing": False, "type": k["type"]}

    def handle(self, req):
        parts = req.sub.split("/")
        if parts[0] == "keys" and (len(parts) == 1 or parts[1] == ""):
            self.ops(req, ("list",))
            return Resp(data={"keys": sorted(self.keys)})
        if parts[0] == "keys" and len(parts) == 2:
            return self.key(req, parts[1])
        if parts[0] == "keys" and len(parts) == 3 and parts[2] == "config":
            self.ops(req, ("update",))
            return self.config(req, parts[1])
        if parts[0] == "keys" and len(parts) == 3 and parts[2] == "rotate":
            self.ops(req, ("update",))
            k = self.keys.get(parts[1])
            if k is None:
                raise bad_request("key not found")
            k["latest"] += 1
            k["versions"][k["latest"]] = (os.urandom(32), int(time.time()))
            return Resp(data=self.describe(k))
        if len(parts) == 2 and parts[0] in ("encrypt", "decrypt", "rewrap"):
            self.ops(req, ("update", "create"))
            if "batch_input" in req.data:
                return self.batch(req, parts[0], parts[1])
            return getattr(self, parts[0])(req, parts[1])
        if len(parts) == 3 and parts[0] == "datakey":
            self.ops(req, ("update",))
            return self.datakey(req, parts[1], parts[2])
        raise unsupported_path()

    def key(self, req, name):
        k = self.keys.get(name)
        if req.op == "read":
            return Resp(data=self.describe(k)) if k else None
        if req.op == "delete":
            if k is None:
                return None
            if not k["deletion_allowed"]:
                raise bad_request("error deleting policy %s: deletion is not allowed for this policy" % name)
            del self.keys[name]
            return None
        if req.op not in ("update", "create"):
            raise unsupported_operation()
        if k is not None:
            return Resp(data=self.describe(k), warnings=["key %s already existed" % name])
        ktype = req.data.get("type", "aes256-gcm96") or "aes256-gcm96"
        if ktype not in SYMMETRIC:
            raise bad_request("unknown key type %s" % ktype)
        k = self.keys[name] = self._new_key(name, ktype, parse_bool(req.data.get("derived", False), "derived"))
        k["exportable"] = parse_bool(req.data.get("exportable", False), "exportable")
        return Resp(data=self.describe(k))

    def config(self, req, name):
        k = self.keys.get(name)
        if k is None:
            raise bad_request("no existing key named %s could be found" % name)
        d, warnings = req.data, None
        mdv, mev = k["min_decryption_version"], k["min_encryption_version"]
        if "min_decryption_version" in d:
            mdv = parse_int(d["min_decryption_version"], "min_decryption_version")
            if mdv < 0:
                raise bad_request("min decryption version cannot be negative")
            if mdv == 0:
                mdv = 1
                warnings = ["since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1"]
            if mdv > k["latest"]:
                raise bad_request("cannot set min decryption version of %d, latest key version is %d"
                                  % (mdv, k["latest"]))
        if "min_encryption_version" in d:
            mev = parse_int(d["min_encryption_version"], "min_encryption_version")
            if mev > k["latest"]:
                raise bad_request("cannot set min encryption version of %d, latest key version is %d"
                                  % (mev, k["latest"]))
        if mev > 0 and mev < mdv:
            raise bad_request("cannot set min encryption/decryption values; min encryption version of %d must be "
                              "greater than or equal to min decryption version of %d" % (mev, mdv))
        k["min_decryption_version"], k["min_encryption_version"] = mdv, mev
        for flag in ("deletion_allowed", "exportable", "allow_plaintext_backup"):
            if flag in d:
                k[flag] = parse_bool(d[flag], flag)
        return Resp(data=self.describe(k), warnings=warnings)

    def _context(self, k, req):
        ctx = _b64(req.data.get("context"), "context")
        if k["derived"] and not ctx:
            raise bad_request("missing 'context' for key derivation; the key was created using a derived key, "
                              "which means additional, per-request information must be included in order to "
                              "perform operations with the key")
        return ctx

    def _encrypt(self, k, req, plaintext):
        ver = parse_int(req.data.get("key_version", 0) or 0, "key_version")
        if ver < 0:
            raise bad_request("requested version for encryption is negative")
        if ver > k["latest"]:
            raise bad_request("requested version for encryption is higher than the latest key version")
        if ver == 0:
            ver = k["latest"]
        if ver < k["min_encryption_version"]:
            raise bad_request("requested version for encryption is less than the minimum encryption key version")
        blob = seal(k["versions"][ver][0], plaintext, _b64(req.data.get("associated_data"), "associated_data"),
                    self._context(k, req))
        return {"ciphertext": "vault:v%d:%s" % (ver, base64.b64encode(blob).decode()), "key_version": ver}

    def encrypt(self, req, name):
        k = self.keys.get(name)
        warnings = None
        if k is None:
            if req.cap != "create":
                raise bad_request("encryption key not found")
            k = self.keys[name] = self._new_key(name, derived=bool(req.data.get("context")))
        if "plaintext" not in req.data:
            raise bad_request("missing plaintext to encrypt")
        pt = _b64(req.data.get("plaintext"), "plaintext")
        return Resp(data=self._encrypt(k, req, pt), warnings=warnings)

    def _decrypt(self, k, req, ct):
        if not isinstance(ct, str) or not ct:
            raise bad_request("missing ciphertext to decrypt")
        if not ct.startswith("vault:v"):
            raise bad_request("invalid ciphertext: no prefix")
        rest = ct[len("vault:v"):]
        if ":" not in rest:
            raise bad_request("invalid ciphertext: wrong number of fields")
        vstr, body = rest.split(":", 1)
        try:
            ver = int(vstr)
        except ValueError:
            raise bad_request("invalid ciphertext: version number could not be decoded")
        ver = ver or 1
        if ver > k["latest"]:
            raise bad_request("invalid ciphertext: version is too new")
        if ver < k["min_decryption_version"]:
            raise bad_request("ciphertext or signature version is disallowed by policy (too old)")
        try:
            blob = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("invalid ciphertext: could not decode base64")
        return open_(k["versions"][ver][0], blob, _b64(req.data.get("associated_data"), "associated_data"),
                     self._context(k, req))

    def decrypt(self, req, name):
        k = self.keys.get(name)
        if k is None:
            raise bad_request("encryption key not found")
        pt = self._decrypt(k, req, req.data.get("ciphertext"))
        return Resp(data={"plaintext": base64.b64encode(pt).decode()})

    def rewrap(self, req, name):
        k = self.keys.get(name)
        if k is None:
            raise bad_request("encryption key not found")
        pt = self._decrypt(k, req, req.data.get("ciphertext"))
        return Resp(data=self._encrypt(k, req, pt))


    def batch(self, req, op, name):
        """batch_input: per-item results; item errors give 400 with a normal envelope (§4.7)."""
        items = req.data.get("batch_input")
        if not isinstance(items, list) or not items:
            raise bad_request("missing batch input to process")
        if not all(isinstance(i, dict) for i in items):
            raise bad_request("failed to parse batch input")
        with_ctx = [bool(i.get("context")) for i in items]
        if any(with_ctx) and not all(with_ctx):
            raise bad_request("context should be set either in all the request blocks or in none")
        if op == "encrypt" and name not in self.keys and req.cap == "create":
            self.keys[name] = self._new_key(name, derived=any(with_ctx))
        results, failed = [], 0
        for item in items:
            sub = _SubRequest(req, item)
            ref = item.get("reference", "")
            try:
                data = getattr(self, op)(sub, name).data
                data["reference"] = ref
            except VaultError as e:
                if e.status >= 500 or not e.errors:
                    raise
                data = {"error": e.errors[0], "reference": ref}
                failed += 1
            results.append(data)
        status = 200
        if failed:
            status = 400
            code = req.data.get("partial_failure_response_code")
            if code and failed < len(items):
                status = parse_int(code, "partial_failure_response_code")
        return Resp(data={"batch_results": results}, status=status)

    def datakey(self, req, kind, name):
        if kind not in ("plaintext", "wrapped"):
            raise bad_request("Invalid path, must be 'plaintext' or 'wrapped'")
        k = self.keys.get(name)
        if k is None:
            raise bad_request("encryption key not found")
        bits = parse_int(req.data.get("bits", 256) or 256, "bits")
        if bits not in (128, 256, 512):
            raise bad_request("invalid bit length")
        key = os.urandom(bits // 8)
        out = self._encrypt(k, req, key)  # decrypting gives base64(key), as in Vault
        if kind == "plaintext":
            out["plaintext"] = base64.b64encode(key).decode()
        return Resp(data=out)


class _SubRequest:
    """One batch item seen as a request: the item's fields over the outer request's."""

    def __init__(self, req, item):
        self.data = dict(item)
        self.cap = "update"
        self.op = req.op

