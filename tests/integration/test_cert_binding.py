"""Client-certificate binding: the identity is the SPKI hash of the FIRST certificate the client
sends — the only one whose private key the TLS handshake proves (CertificateVerify is checked
against it). Certificates after it are chain material for `tls.auth: on` and nothing else.

KES (auth.go, identifyRequest) skips CA:TRUE certificates and takes the identity from the
remaining one, so anyone can present [own CA:TRUE cert, victim's public cert] with their own
key and be the victim (the admin included). These tests are that attack and its variants, with
tls.auth off and on, and the legitimate chains that must keep working. They also cover how a
session ticket may outlive the client certificate it was issued for.
"""

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kesctest  # noqa: E402

CERT_REQUIRED = "tls: client certificate is required"
HANDSHAKE_REFUSED = (ssl.SSLError, ConnectionError, OSError)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


class Pki:
    """Certificates for the binding tests, made with the openssl CLI in one directory."""

    def __init__(self, certs):
        self.certs = certs
        self.dir = certs.dir

    def path(self, name, ext):
        return os.path.join(self.dir, name + "." + ext)

    def ext_file(self, name, lines):
        p = self.path(name, "ext")
        with open(p, "w") as f:
            f.write("\n".join(lines) + "\n")
        return p

    def key(self, name, kind="ec"):
        if kind == "ec":
            openssl("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out",
                    self.path(name, "key"))
        else:
            bits = kind.split(":")[1]
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:" + bits,
                    "-out", self.path(name, "key"))
        return self.path(name, "key")

    def self_signed_ca(self, name):
        """A CA:TRUE certificate whose key the attacker (or the operator) holds."""
        self.key(name)
        openssl("req", "-x509", "-new", "-key", self.path(name, "key"), "-subj", "/CN=" + name,
                "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,digitalSignature",
                "-out", self.path(name, "crt"))
        return self.path(name, "crt"), self.path(name, "key")

    def issued(self, name, issuer, ca=False, kind="ec", pubkey_from=None):
        """A certificate for name signed by issuer; ca=True makes an intermediate CA.
        pubkey_from forges it: the certificate carries that certificate's public key."""
        self.key(name, kind)
        csr = self.path(name, "csr")
        openssl("req", "-new", "-key", self.path(name, "key"), "-subj", "/CN=" + name,
                "-out", csr)
        if ca:
            ext = self.ext_file(name, ["basicConstraints=critical,CA:TRUE",
                                       "keyUsage=critical,keyCertSign,digitalSignature"])
        else:
            ext = self.ext_file(name, ["basicConstraints=critical,CA:FALSE",
                                       "extendedKeyUsage=clientAuth"])
        args = ["x509", "-req", "-in", csr, "-CA", self.path(issuer, "crt"), "-CAkey",
                self.path(issuer, "key"), "-CAcreateserial", "-days", "2", "-extfile", ext,
                "-out", self.path(name, "crt")]
        if pubkey_from:
            pub = self.path(name, "victim.pub")
            openssl("x509", "-in", pubkey_from, "-pubkey", "-noout", "-out", pub)
            args += ["-force_pubkey", pub]
        openssl(*args)
        return self.path(name, "crt"), self.path(name, "key")

    def self_signed_leaf(self, name, kind="ec"):
        self.key(name, kind)
        ext = ["-addext", "basicConstraints=critical,CA:FALSE",
               "-addext", "extendedKeyUsage=clientAuth"]
        openssl("req", "-x509", "-new", "-key", self.path(name, "key"), "-subj", "/CN=" + name,
                "-days", "2", *ext, "-out", self.path(name, "crt"))
        return self.path(name, "crt"), self.path(name, "key")

    def chain(self, name, *crts):
        """A PEM file with the certificates in the order given (the first is sent first)."""
        p = self.path(name, "chain.pem")
        with open(p, "w") as out:
            for c in crts:
                with open(c) as f:
                    out.write(f.read())
        return p


def context(srv, chain, key, weak_ok=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if weak_ok:  # let OpenSSL itself use a key it considers too small
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_verify_locations(srv.certs.cert("server"))
    ctx.load_cert_chain(chain, key)
    return ctx


def get(srv, ctx, path, session=None):
    """One GET on a fresh connection; returns (Response, ssl socket's session_reused)."""
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
    except Exception:
        raw.close()
        raise
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: kesc\r\n\r\n" % path).encode())
        r = kesctest.ResponseReader(s).read()
        return r, s.session_reused, s.session
    finally:
        s.close()


class BindingTestCase(unittest.TestCase):
    def refused(self, srv, ctx, msg):
        """The handshake (or the first read after it: TLS 1.2 clients learn of a refused
        certificate only from the alert) must fail."""
        with self.assertRaises(HANDSHAKE_REFUSED, msg=msg):
            get(srv, ctx, "/v1/identity/self/describe")

    def identity_is(self, srv, ctx, expected, msg):
        r, _, _ = get(srv, ctx, "/v1/identity/self/describe")
        self.assertEqual(r.status, 200, "%s: %r" % (msg, r))
        self.assertEqual(r.json()["identity"], expected, msg)
        return r

    def finish(self, srv):
        self.assertEqual(srv.stop(), 0)
        self.assertEqual(srv.sanitizer_report(), "")


class AuthOffTest(BindingTestCase):
    """tls.auth off (KES's default): certificates are fingerprinted, chains not verified."""

    def test_ca_certificate_first_cannot_borrow_the_admins_identity(self):
        srv = kesctest.Server(start=False)
        try:
            pki = Pki(srv.certs)
            pki.self_signed_ca("attacker")
            # admin.crt is public: it crosses the wire in clear in every TLS 1.2 handshake.
            chain = pki.chain("attack", pki.path("attacker", "crt"), srv.certs.cert("admin"))
            srv.start()
            self.refused(srv, context(srv, chain, pki.path("attacker", "key")),
                         "[attacker CA, admin] with the attacker's key")
            # The same with a forged certificate: CA:FALSE, the admin's public key, signed by
            # the attacker; the attacker never needs to have seen admin.crt itself.
            pki.issued("forged", "attacker", pubkey_from=srv.certs.cert("admin"))
            self.assertEqual(kesctest.identity_of_cert(pki.path("forged", "crt")),
                             srv.identity("admin"))
            chain = pki.chain("forgery", pki.path("attacker", "crt"), pki.path("forged", "crt"))
            self.refused(srv, context(srv, chain, pki.path("attacker", "key")),
                         "[attacker CA, forged admin] with the attacker's key")
            # The forged certificate first cannot work: the handshake proves its key.
            alone = pki.chain("forged-alone", pki.path("forged", "crt"))
            with self.assertRaises(HANDSHAKE_REFUSED):
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.load_verify_locations(srv.certs.cert("server"))
                # OpenSSL refuses a key that does not match the first certificate on the
                # client side already; either way no identity is borrowed.
                ctx.load_cert_chain(alone, pki.path("attacker", "key"))
                get(srv, ctx, "/v1/identity/self/describe")
            # Nothing of it reached the admin's power: the key store is untouched.
            self.assertEqual(srv.request("GET", "/v1/key/list/*").json()["names"], [])
            self.finish(srv)  # the audit log is complete once the server has stopped
            audited = {a["request"]["identity"] for a in srv.audit_lines()}
            self.assertEqual(audited, {srv.identity("admin")})
        finally:
            srv.cleanup()

    def test_ca_certificate_first_is_a_missing_certificate_when_requests_pass(self):
        # With a skip_auth route the handshake lets clients without a certificate in; a
        # CA:TRUE first certificate must then be exactly "no certificate".
        srv = kesctest.Server(start=False, config={"api": {"/v1/status": {"skip_auth": True}}})
        try:
            pki = Pki(srv.certs)
            pki.self_signed_ca("attacker")
            chain = pki.chain("attack", pki.path("attacker", "crt"), srv.certs.cert("admin"))
            srv.start()
            ctx = context(srv, chain, pki.path("attacker", "key"))
            # self/describe only identifies (KES's insecureIdentifyOnly): no identity, no entry.
            r, _, _ = get(srv, ctx, "/v1/identity/self/describe")
            self.assertEqual((r.status, r.message), (404, "identity does not exist"))
            r, _, _ = get(srv, ctx, "/v1/key/list/*")
            self.assertEqual((r.status, r.message), (400, CERT_REQUIRED))
            r, _, _ = get(srv, ctx, "/v1/status")
            self.assertEqual(r.status, 200)
            self.finish(srv)
            audited = [a["request"]["identity"] for a in srv.audit_lines()]
            self.assertEqual(len(audited), 3)
            self.assertEqual(set(audited), {""})
        finally:
            srv.cleanup()

    def test_legitimate_chains_keep_working(self):
        srv = kesctest.Server(start=False)
        try:
            pki = Pki(srv.certs)
            pki.self_signed_ca("root")
            pki.issued("inter", "root", ca=True)
            pki.issued("leaf", "inter")
            pki.self_signed_leaf("rsa", kind="rsa:2048")
            pki.issued("rsa-leaf", "inter", kind="rsa:3072")
            leaf_id = kesctest.identity_of_cert(pki.path("leaf", "crt"))
            ids = [leaf_id, kesctest.identity_of_cert(pki.path("rsa", "crt")),
                   kesctest.identity_of_cert(pki.path("rsa-leaf", "crt"))]
            srv.policies = {"p": {"allow": ["/v1/identity/self/describe"], "identities": ids}}
            srv.write_config()
            srv.start()
            leaf, inter, root = (pki.path(n, "crt") for n in ("leaf", "inter", "root"))
            key = pki.path("leaf", "key")
            self.identity_is(srv, context(srv, pki.chain("l", leaf), key), leaf_id, "leaf")
            self.identity_is(srv, context(srv, pki.chain("li", leaf, inter), key), leaf_id,
                             "leaf + intermediate")
            self.identity_is(srv, context(srv, pki.chain("lir", leaf, inter, root), key),
                             leaf_id, "leaf + intermediate + root")
            self.identity_is(srv, context(srv, pki.path("rsa", "crt"), pki.path("rsa", "key")),
                             ids[1], "self-signed RSA-2048 leaf")
            self.identity_is(srv, context(srv, pki.chain("ri", pki.path("rsa-leaf", "crt"),
                                                         inter), pki.path("rsa-leaf", "key")),
                             ids[2], "RSA-3072 leaf + intermediate")
            self.identity_is(srv, srv.ssl_context("admin"), srv.identity("admin"), "admin")
            self.finish(srv)
        finally:
            srv.cleanup()

    def test_weak_rsa_client_key_refused(self):
        srv = kesctest.Server(start=False)
        try:
            pki = Pki(srv.certs)
            pki.self_signed_leaf("weak", kind="rsa:1024")
            srv.policies = {"p": {"allow": ["/v1/identity/self/describe"],
                                  "identities": [kesctest.identity_of_cert(
                                      pki.path("weak", "crt"))]}}
            srv.write_config()
            srv.start()
            ctx = context(srv, pki.path("weak", "crt"), pki.path("weak", "key"), weak_ok=True)
            self.refused(srv, ctx, "RSA-1024 client certificate")
            self.finish(srv)
        finally:
            srv.cleanup()


class AuthOnTest(BindingTestCase):
    """tls.auth on: the chain must verify against tls.ca, and still only the first
    certificate's key is proven."""

    def start(self, pki, srv):
        pki.self_signed_ca("root")
        pki.issued("inter", "root", ca=True)  # an intermediate whose key leaked
        pki.issued("victim", "root")
        pki.issued("leaf", "inter")
        srv.admin = kesctest.identity_of_cert(pki.path("victim", "crt"))
        leaf_id = kesctest.identity_of_cert(pki.path("leaf", "crt"))
        srv.policies = {"p": {"allow": ["/v1/identity/self/describe"], "identities": [leaf_id]}}
        srv.extra = {"tls": {"auth": "on", "ca": pki.path("root", "crt")}}
        srv.write_config()
        srv.start()
        return leaf_id

    def test_intermediate_key_cannot_borrow_a_leaf_identity(self):
        srv = kesctest.Server(start=False)
        try:
            pki = Pki(srv.certs)
            leaf_id = self.start(pki, srv)
            inter, victim = pki.path("inter", "crt"), pki.path("victim", "crt")
            chain = pki.chain("attack", inter, victim)
            self.refused(srv, context(srv, chain, pki.path("inter", "key")),
                         "[intermediate, victim] with the intermediate's key")
            # A certificate the intermediate signs itself, carrying the victim's key.
            pki.issued("forged", "inter", pubkey_from=victim)
            chain = pki.chain("forgery", inter, pki.path("forged", "crt"))
            self.refused(srv, context(srv, chain, pki.path("inter", "key")),
                         "[intermediate, forged victim] with the intermediate's key")
            # The legitimate chains under tls.auth on.
            leaf, root = pki.path("leaf", "crt"), pki.path("root", "crt")
            key = pki.path("leaf", "key")
            self.identity_is(srv, context(srv, pki.chain("li", leaf, inter), key), leaf_id,
                             "leaf + intermediate")
            self.identity_is(srv, context(srv, pki.chain("lir", leaf, inter, root), key),
                             leaf_id, "leaf + intermediate + root")
            self.identity_is(srv, context(srv, victim, pki.path("victim", "key")),
                             srv.admin, "a leaf the root signed directly")
            # A leaf without its intermediate does not verify.
            self.refused(srv, context(srv, leaf, key), "leaf without its intermediate")
            self.finish(srv)
        finally:
            srv.cleanup()


class ResumptionTest(BindingTestCase):
    """A session ticket must not outlive the client certificate it was issued for. Go refuses
    to resume a session whose first client certificate has expired; kesc does the same, and
    with tls.auth on issues no ticket at all to a chain that expires within a ticket's
    lifetime (a ticket carries only the first certificate, so a resumption could not see an
    intermediate expire)."""

    def short_lived(self, srv, seconds):
        crt, key = os.path.join(srv.dir, "short.crt"), os.path.join(srv.dir, "short.key")
        r = kesctest.run_kesc("identity", "new", "--key", key, "--cert", crt, "--expiry",
                              "%ds" % seconds, "short-lived")
        self.assertEqual(r.returncode, 0, r.stderr)
        srv.policies = {"p": {"allow": ["/v1/identity/self/describe"],
                              "identities": [kesctest.identity_of_cert(crt)]}}
        return crt, key, time.monotonic() + seconds

    def connect_twice(self, srv, ctx):
        r, reused, session = get(srv, ctx, "/v1/identity/self/describe")
        self.assertEqual((r.status, reused), (200, False), r)
        r, reused, _ = get(srv, ctx, "/v1/identity/self/describe", session)
        self.assertEqual(r.status, 200, r)
        return reused, session

    def test_auth_off_expired_certificate_does_not_resume(self):
        srv = kesctest.Server(start=False)
        try:
            crt, key, expires = self.short_lived(srv, 6)
            srv.write_config()
            srv.start()
            ctx = context(srv, crt, key)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            reused, session = self.connect_twice(srv, ctx)
            self.assertTrue(reused, "a ticket of a valid certificate resumes")
            time.sleep(max(0.0, expires - time.monotonic()) + 2)
            # tls.auth off fingerprints without verifying: the full handshake succeeds.
            r, reused, _ = get(srv, ctx, "/v1/identity/self/describe", session)
            self.assertEqual((r.status, reused), (200, False), r)
            self.finish(srv)
        finally:
            srv.cleanup()

    def test_auth_on_ticket_never_outlives_the_chain(self):
        srv = kesctest.Server(start=False)
        try:
            crt, key, expires = self.short_lived(srv, 6)
            # A self-signed end-entity certificate listed in tls.ca is trusted as itself.
            srv.extra = {"tls": {"auth": "on", "ca": crt}}
            srv.write_config()
            srv.start()
            ctx = context(srv, crt, key)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            reused, session = self.connect_twice(srv, ctx)
            self.assertFalse(reused, "no ticket for a chain that expires within its lifetime")
            time.sleep(max(0.0, expires - time.monotonic()) + 2)
            with self.assertRaises(HANDSHAKE_REFUSED):
                r, reused, _ = get(srv, ctx, "/v1/identity/self/describe", session)
                raise AssertionError("served an expired certificate: %r %r" % (r, reused))
            self.finish(srv)
        finally:
            srv.cleanup()

    def test_auth_on_long_lived_chain_resumes(self):
        srv = kesctest.Server(start=False)
        try:
            pki = Pki(srv.certs)
            pki.self_signed_ca("root")
            crt, key = pki.issued("long", "root")
            srv.policies = {"p": {"allow": ["/v1/identity/self/describe"],
                                  "identities": [kesctest.identity_of_cert(crt)]}}
            srv.extra = {"tls": {"auth": "on", "ca": pki.path("root", "crt")}}
            srv.write_config()
            srv.start()
            ctx = context(srv, crt, key)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            reused, _ = self.connect_twice(srv, ctx)
            self.assertTrue(reused)
            self.finish(srv)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
