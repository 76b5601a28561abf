"""kesctest — the shared harness for kesc integration tests (Python 3 standard library + the
`openssl` CLI only).

It makes certificates, writes a KES config.yml, starts the real `kesc server` on an ephemeral
127.0.0.1 port, talks to it over mTLS, and always stops it (context manager + atexit).

Quick start
-----------
    import kesctest
    with kesctest.Server() as srv:                       # fs keystore in a temp dir
        r = srv.request('GET', '/v1/status')             # admin client certificate
        assert r.status == 200 and r.json()['version']
        r = srv.request('POST', '/v1/key/create/k1', cert='limited')
        assert (r.status, r.message) == (403, 'not authorized: insufficient permissions')

Certificates (class Certs; srv.certs) — also .ca('ca') and .client_signed('name', ca='ca')
    Made once per Server in its temp dir: a self-signed EC P-256 server certificate with
    SAN IP:127.0.0.1,DNS:localhost ("server"), and self-signed client certificates "admin",
    "limited" and "unknown" (CA:FALSE, clientAuth). More: srv.certs.client('name').
    srv.certs.cert('admin') / .key('admin') are paths; srv.identity('admin') is the KES
    identity (hex SHA-256 of the DER SubjectPublicKeyInfo, computed with openssl).

Server(...) arguments (all optional)
    policies   dict name -> {'allow': [...], 'deny': [...], 'identities': ['limited', ...]}
               identities may be cert names (turned into identities) or hex strings.
               Default: policy "limited" allowing /v1/key/create/limited-*,
               /v1/key/generate/limited-*, /v1/key/encrypt/limited-*,
               /v1/key/decrypt/limited-*, /v1/key/list/*, /v1/status for "limited".
    admin      cert name or identity for admin.identity (default 'admin'; 'disabled' works)
    config     dict merged over the generated config (e.g. {'api': {'/v1/status':
               {'skip_auth': True}}, 'cache': {...}, 'server': {'threads': 1}})
    keystore   dict for the keystore: section (default {'fs': {'path': <tmp>/keys}})
    raw_config YAML text used verbatim instead of the generated config
    args       extra command-line arguments for `kesc server`
    env        extra environment for the server process
    start      False: only prepare (call srv.start() yourself)
    user       run the server as this user (e.g. 'nobody'): when the tests run as root, the
               temp dir is handed to that user and the server started through setpriv, so
               that file permissions apply to it (root reads and writes anything)

Talking to it
    srv.request(method, path, body=b''|str|dict, cert='admin'|None, headers={}) -> Response
        one request on a fresh connection; cert=None sends no client certificate.
        Response has .status, .headers (lower-case keys), .body (bytes), .json(), .message
        (the {"message"} of an error, else None).
    srv.connection(cert='admin') -> http.client.HTTPSConnection (keep-alive; reuse it)
    srv.tls_socket(cert='admin', timeout=10) -> connected ssl.SSLSocket (raw bytes)
    srv.ssl_context(cert='admin') -> ssl.SSLContext trusting the server certificate
    kesctest.read_response(sock_reader) / ResponseReader(sock).read() -> Response, for raw use
    srv.raw(data, cert='admin', timeout=10) -> bytes: sends data, reads until EOF/timeout
    srv.port, srv.addr ('127.0.0.1:PORT'), srv.url ('https://127.0.0.1:PORT'), srv.dir (temp)

Process control
    srv.reload(config=None) rewrites config.yml (dict merged as above) and sends SIGHUP;
        waits for "configuration reloaded" (returns True) or "reload failed" (False).
    srv.signal(signum); srv.stop(timeout=20) -> exit code (SIGTERM, then SIGKILL)
    srv.stderr_text(), srv.audit_lines() (parsed JSON lines from stdout)
    srv.wait_stderr(regex, timeout=15) waits for a line of the (asynchronously written) error log
    srv.sanitizer_report() -> '' or the ASan/UBSan/LSan lines found in stderr
    srv.cli(*args, cert='admin', input=None, env=None) -> subprocess.CompletedProcess running
        `kesc <args>` with KES_SERVER, KES_CLIENT_CERT, KES_CLIENT_KEY set and the server
        certificate offered as CA via SSL_CERT_FILE / CURL_CA_BUNDLE / KESC_CA.
    kesctest.run_kesc(*args, ...) runs the binary without a server (e.g. --check-config).

The binary is $KESC_BIN (meson passes it). Everything is created under a fresh temp dir that
is removed when the Server stops, unless KESCTEST_KEEP=1.
"""

import atexit
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

KESC_BIN = os.environ.get("KESC_BIN", "")
START_TIMEOUT = float(os.environ.get("KESCTEST_START_TIMEOUT", "60"))
_LIVE = set()


def _require_bin():
    if not KESC_BIN or not os.access(KESC_BIN, os.X_OK):
        raise RuntimeError("set KESC_BIN to the kesc binary (meson test does)")
    return KESC_BIN


def _openssl(*args, input=None):
    r = subprocess.run(["openssl", *args], input=input, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), r.stderr.decode()))
    return r.stdout


def identity_of_cert(path):
    """KES identity: lowercase hex SHA-256 of the DER SubjectPublicKeyInfo."""
    pub = _openssl("x509", "-in", path, "-pubkey", "-noout")
    der = _openssl("pkey", "-pubin", "-outform", "DER", input=pub)
    import hashlib

    return hashlib.sha256(der).hexdigest()


class Certs:
    """Self-signed certificates in a directory, made with the openssl CLI."""

    def __init__(self, directory):
        self.dir = directory
        self._ids = {}

    def cert(self, name):
        return os.path.join(self.dir, name + ".crt")

    def key(self, name):
        return os.path.join(self.dir, name + ".key")

    def _make(self, name, subject, exts):
        args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", self.key(name), "-out", self.cert(name), "-days", "2",
                "-subj", subject]
        for e in exts:
            args += ["-addext", e]
        _openssl(*args)
        self._ids[name] = identity_of_cert(self.cert(name))
        return self.cert(name), self.key(name)

    def server(self, name="server", san=True):
        exts = ["basicConstraints=critical,CA:FALSE", "extendedKeyUsage=serverAuth"]
        if san:
            exts.append("subjectAltName=IP:127.0.0.1,DNS:localhost")
        return self._make(name, "/CN=localhost", exts)

    def client(self, name):
        if os.path.exists(self.cert(name)):
            return self.cert(name), self.key(name)
        return self._make(name, "/CN=" + name,
                          ["basicConstraints=critical,CA:FALSE", "extendedKeyUsage=clientAuth"])

    def ca(self, name="ca"):
        """A CA certificate (CA:TRUE) for tls.auth / tls.ca tests."""
        if not os.path.exists(self.cert(name)):
            self._make(name, "/CN=" + name, ["basicConstraints=critical,CA:TRUE",
                                             "keyUsage=critical,keyCertSign"])
        return self.cert(name), self.key(name)

    def client_signed(self, name, ca="ca"):
        """A client certificate issued by the CA `ca` (made if needed)."""
        self.ca(ca)
        csr = os.path.join(self.dir, name + ".csr")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", self.key(name), "-out", csr, "-subj", "/CN=" + name)
        _openssl("x509", "-req", "-in", csr, "-CA", self.cert(ca), "-CAkey", self.key(ca),
                 "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", self.cert(name))
        self._ids[name] = identity_of_cert(self.cert(name))
        return self.cert(name), self.key(name)

    def identity(self, name):
        if name not in self._ids:
            self._ids[name] = identity_of_cert(self.cert(name))
        return self._ids[name]


def _yaml_scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return '""'
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(value, indent=0):
    """A small YAML emitter for dicts, lists and scalars (enough for KES configs)."""
    pad = "  " * indent
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:" % (pad, k))
                out.append(to_yaml(v, indent + 1))
            elif isinstance(v, list):
                out.append("%s%s: []" % (pad, k))
            elif isinstance(v, dict):
                out.append("%s%s: {}" % (pad, k))
            else:
                out.append("%s%s: %s" % (pad, k, _yaml_scalar(v)))
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)):
                inner = to_yaml(v, indent + 1).lstrip()
                out.append("%s- %s" % (pad, inner))
            else:
                out.append("%s- %s" % (pad, _yaml_scalar(v)))
    return "\n".join(out)


def merge(base, over):
    """Recursive dict merge; a value None in over deletes the key."""
    for k, v in (over or {}).items():
        if v is None:
            base.pop(k, None)
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode())

    @property
    def message(self):
        if self.status < 400:
            return None
        try:
            return self.json().get("message")
        except ValueError:
            return None

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.body[:200])


class ResponseReader:
    """Reads HTTP/1.1 responses one at a time from a socket (pipelining-safe buffer)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed by server")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read(self, skip_continue=True):
        while True:
            status_line = self._line().decode()
            parts = status_line.split(" ", 2)
            status = int(parts[1])
            headers = {}
            while True:
                line = self._line()
                if not line:
                    break
                k, v = line.decode().split(":", 1)
                headers[k.strip().lower()] = v.strip()
            if status == 100 and skip_continue:
                continue
            break
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    self._line()
                    break
                body += self._exact(size)
                self._line()
        else:
            body = self._exact(int(headers.get("content-length", "0")))
        return Response(status, parts[2] if len(parts) > 2 else "", headers, body)


def read_response(reader):
    return reader.read()


def chown_tree(top, uid, gid):
    """chown -R without following links."""
    os.chown(top, uid, gid, follow_symlinks=False)
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def run_kesc(*args, env=None, input=None, timeout=120):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([_require_bin(), *args], input=input, capture_output=True, env=e,
                          timeout=timeout)


class Server:
    def __init__(self, policies=None, admin="admin", config=None, keystore=None,
                 raw_config=None, args=(), env=None, start=True, server_cert_san=True,
                 user=None):
        _require_bin()
        self.user = user
        self.dir = tempfile.mkdtemp(prefix="kesctest-")
        self.certs = Certs(self.dir)
        self.certs.server("server", san=server_cert_san)
        for name in ("admin", "limited", "unknown"):
            self.certs.client(name)
        self.config_path = os.path.join(self.dir, "config.yml")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.admin = admin
        self.policies = policies
        self.extra = config or {}
        self.keystore = keystore
        self.raw_config = raw_config
        self.args = list(args)
        self.env = env or {}
        self.proc = None
        self.port = None
        self._stopped = False
        self.write_config()
        if start:
            self.start()

    # ---- configuration ----
    def identity(self, name):
        if re.fullmatch(r"[0-9a-f]{64}", name) or name == "disabled":
            return name
        return self.certs.identity(name)

    def default_policies(self):
        return {
            "limited": {
                "allow": ["/v1/key/create/limited-*", "/v1/key/generate/limited-*",
                          "/v1/key/encrypt/limited-*", "/v1/key/decrypt/limited-*",
                          "/v1/key/list/*", "/v1/status"],
                "deny": [],
                "identities": ["limited"],
            }
        }

    def config_dict(self, extra=None):
        policies = self.policies if self.policies is not None else self.default_policies()
        pol = {}
        for name, p in policies.items():
            q = dict(p)
            q["identities"] = [self.identity(i) for i in p.get("identities", [])]
            pol[name] = q
        cfg = {
            "version": "v1",
            "address": "127.0.0.1:0",
            "admin": {"identity": self.identity(self.admin)},
            "tls": {"key": self.certs.key("server"), "cert": self.certs.cert("server")},
            "policy": pol,
            "log": {"error": "on", "audit": "on"},
            "keystore": self.keystore or {"fs": {"path": os.path.join(self.dir, "keys")}},
        }
        if not pol:
            del cfg["policy"]
        merge(cfg, self.extra)
        merge(cfg, extra)
        return cfg

    def write_config(self, extra=None):
        text = self.raw_config if self.raw_config is not None else to_yaml(self.config_dict(extra))
        with open(self.config_path, "w") as f:
            f.write(text + "\n")

    # ---- process ----
    def start(self):
        self._stdout = open(self.stdout_path, "wb")
        self._stderr = open(self.stderr_path, "wb")
        env = dict(os.environ)
        env.update(self.env)
        cmd = [KESC_BIN, "server", "--config", self.config_path, "--addr", "127.0.0.1:0",
               *self.args]
        if self.user is not None and os.geteuid() == 0:
            pw = pwd.getpwnam(self.user)
            chown_tree(self.dir, pw.pw_uid, pw.pw_gid)
            cmd = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                   "--clear-groups", "--", *cmd]
        self.proc = subprocess.Popen(cmd, stdout=self._stdout, stderr=self._stderr, env=env,
                                     stdin=subprocess.DEVNULL)
        _LIVE.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.stderr_text())
            if m:
                self.port = int(m.group(1))
                self.addr = "127.0.0.1:%d" % self.port
                self.url = "https://" + self.addr
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("kesc server exited with %d:\n%s" %
                                   (self.proc.returncode, self.stderr_text()))
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("kesc server did not start:\n" + self.stderr_text())

    def signal(self, signum):
        self.proc.send_signal(signum)

    def reload(self, config=None, timeout=30):
        before = self.stderr_text()
        done0 = before.count("configuration reloaded")
        fail0 = before.count("reload failed")
        if config is not None:
            self.extra = merge(self.extra, config)
        self.write_config()
        self.signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.stderr_text()
            if text.count("configuration reloaded") > done0:
                return True
            if text.count("reload failed") > fail0:
                return False
            time.sleep(0.05)
        raise RuntimeError("no reload outcome in the log:\n" + self.stderr_text())

    def stop(self, timeout=20):
        if self._stopped or not self.proc:
            return self.proc.returncode if self.proc else None
        self._stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stdout.close()
        self._stderr.close()
        _LIVE.discard(self)
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        if not os.environ.get("KESCTEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # ---- logs ----
    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_stderr(self, pattern, timeout=15):
        """Waits until the error log matches pattern (a regular expression); the log is
        written by a thread of its own, so a line may follow the answer it is about. Returns
        the match; raises AssertionError with the log's tail after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.stderr_text()
            m = re.search(pattern, text)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("no %r in the error log within %s s:\n%s" %
                                     (pattern, timeout, text[-3000:]))
            time.sleep(0.05)

    def audit_lines(self):
        with open(self.stdout_path, "rb") as f:
            return [json.loads(l) for l in f.read().decode().splitlines() if l.startswith("{")]

    def sanitizer_report(self):
        lines = [l for l in self.stderr_text().splitlines()
                 if "runtime error:" in l or "Sanitizer" in l]
        return "\n".join(lines)

    # ---- clients ----
    def ssl_context(self, cert="admin"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.certs.cert("server"))
        if cert:
            self.certs.client(cert)
            ctx.load_cert_chain(self.certs.cert(cert), self.certs.key(cert))
        return ctx

    def connection(self, cert="admin", timeout=30):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=self.ssl_context(cert))

    def request(self, method, path, body=b"", cert="admin", headers=None, timeout=30):
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        conn = self.connection(cert, timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, r.reason, {k.lower(): v for k, v in r.getheaders()},
                            data)
        finally:
            conn.close()

    def tls_socket(self, cert="admin", timeout=10):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            return self.ssl_context(cert).wrap_socket(raw, server_hostname="127.0.0.1")
        except Exception:
            raw.close()
            raise

    def raw(self, data, cert="admin", timeout=10):
        s = self.tls_socket(cert, timeout)
        try:
            s.sendall(data)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (socket.timeout, ConnectionError, ssl.SSLError):
                    break
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()

    def cli_env(self, cert="admin"):
        env = {"KES_SERVER": self.url, "SSL_CERT_FILE": self.certs.cert("server"),
               "CURL_CA_BUNDLE": self.certs.cert("server"), "KESC_CA": self.certs.cert("server")}
        if cert:
            self.certs.client(cert)
            env["KES_CLIENT_CERT"] = self.certs.cert(cert)
            env["KES_CLIENT_KEY"] = self.certs.key(cert)
        return env

    def cli(self, *args, cert="admin", input=None, env=None, timeout=120):
        e = self.cli_env(cert)
        e.update(env or {})
        return run_kesc(*args, env=e, input=input, timeout=timeout)


@atexit.register
def _stop_all():
    for s in list(_LIVE):
        try:
            s.cleanup()
        except Exception:
            pass
