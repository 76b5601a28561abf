#!/usr/bin/env python3
"""Runs the commands of the production guide, man/kesc-deploy.7.

Each block the page marks with a roff comment `.\\" test: NAME` is read from the page itself
(so the page and this test cannot drift apart) and its "$ " and "# " lines are run with bash,
one at a time, keeping the working directory and exported variables between them. A line
that follows a command without a prompt is that command's expected output.

The "machine" is a scratch directory: /etc/kesc, /var/lib/kesc, /var/log/kesc, /etc/minio
and /root/ are placed under it (in the commands and in the configuration files), the user and
group "kesc" become the test's own, `kesc` is the binary under test, and `systemctl
start|stop|restart|reload|enable --now kesc` become what the unit does (start the server with
the unit's command line and kesc.env, SIGTERM, SIGHUP). `git pull`, `meson compile` and
`meson install` in the upgrade block are not run here (tests/run builds; test_systemd.py
installs). `vault` command lines are carried out through Vault's HTTP API against the Vault
test server by a small interpreter for the forms the page uses.

Environment: KESC_BIN, KESC_SOURCE_ROOT.
"""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest as dt  # noqa: E402

PAGE = os.path.join(dt.SOURCE_ROOT, "man", "kesc-deploy.7")
EXAMPLES = os.path.join(dt.SOURCE_ROOT, "deploy", "examples")
MAPPED = ("/etc/kesc", "/var/lib/kesc", "/var/log/kesc", "/etc/minio", "/root")


# ---- the page ----------------------------------------------------------------------------

def page_blocks():
    """{name: [lines]} of every literal block marked `.\\" test: NAME` in the page."""
    with open(PAGE) as f:
        lines = f.read().splitlines()
    blocks, i = {}, 0
    while i < len(lines):
        m = re.match(r'^\.\\" test: ([\w-]+)', lines[i])
        if m and m.group(1) != "none":
            j = i + 1
            while not lines[j].startswith(".Bd -literal"):
                j += 1
            k = j + 1
            body = []
            while lines[k] != ".Ed":
                body.append(unroff(lines[k]))
                k += 1
            blocks[m.group(1)] = body
            i = k
        i += 1
    return blocks


def unroff(line):
    return line.replace("\\e", "\\").replace("\\(aq", "'").replace("\\&", "")


def commands(block):
    """[(command, [expected output lines])] of a block's prompted lines."""
    out, cur = [], None
    pending = ""
    for line in block:
        text = line.strip()
        if pending:
            pending += " " + text
            if not pending.endswith("\\"):
                out.append((pending, []))
                pending = ""
            else:
                pending = pending[:-1]
            continue
        if text.startswith(("$ ", "# ")):
            cmd = text[2:]
            if cmd.endswith("\\"):
                pending = cmd[:-1]
            else:
                out.append((cmd, []))
        elif out:
            out[-1][1].append(text)
    return out


def literal_after(marker):
    """The literal block that follows the first line containing marker."""
    with open(PAGE) as f:
        text = f.read()
    i = text.index(marker)
    start = text.index(".Bd -literal", i)
    body = text[text.index("\n", start) + 1:text.index("\n.Ed", start)]
    return unroff(body) + "\n"


# ---- the machine ---------------------------------------------------------------------------

class Machine:
    """A scratch root with the guide's directories, and the kesc "service" on it."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="deploy-guide-")
        for d in MAPPED + ("/state",):
            os.makedirs(self.root + d, exist_ok=True)
        self.bin = os.path.join(self.root, "bin")
        os.makedirs(self.bin)
        os.symlink(dt.KESC_BIN, os.path.join(self.bin, "kesc"))
        self.cwd = self.root
        self.env_file = os.path.join(self.root, "state", "env")
        with open(self.env_file, "w") as f:
            f.write("")
        self.server = None
        self.config = self.path("/etc/kesc/config.yml")

    def path(self, p):
        return self.root + p

    def map(self, text):
        for d in MAPPED:
            text = re.sub(r"(?<![\w/.-])" + re.escape(d) + r"(?=/|\b|$)", self.root + d, text)
        return text

    def install_file(self, src, dest):
        """Installs an example file as meson install would, paths mapped into the machine."""
        with open(src) as f:
            text = f.read()
        with open(self.path(dest), "w") as f:
            f.write(self.map(text))

    # -- commands --
    def run_block(self, test, name, block, skip=()):
        for cmd, expected in commands(block):
            if any(cmd.startswith(s) for s in skip):
                continue
            out = self.run(test, cmd)
            if expected:
                test.assertEqual(out.strip().splitlines()[-len(expected):], expected,
                                 "%s: %s" % (name, cmd))

    def run(self, test, cmd):
        m = re.match(r"systemctl (start|stop|restart|reload|enable --now) kesc$", cmd)
        if m:
            getattr(self, "service_" + m.group(1).split()[0])(test)
            return ""
        cmd = self.map(cmd)
        cmd = re.sub(r"\b(root|kesc):kesc\b", "$(id -u):$(id -g)", cmd)
        cmd = cmd.replace("build/cmd/kesc", dt.KESC_BIN)
        state = self.path("/state")
        script = ('cd "$1"; . "$2"; %s\nrc=$?; pwd > "$3/cwd"; export -p > "$2"; exit $rc'
                  % cmd)
        env = dt.clean_env({"PATH": self.bin + ":" + os.environ.get("PATH", ""),
                            "HOME": self.path("/root")})
        r = subprocess.run(["bash", "-c", script, "guide", self.cwd, self.env_file, state],
                           env=env, capture_output=True, text=True, timeout=300)
        test.assertEqual(r.returncode, 0, "%s\n%s%s" % (cmd, r.stdout, r.stderr))
        with open(os.path.join(state, "cwd")) as f:
            self.cwd = f.read().strip()
        return r.stdout

    # -- the unit: ExecStart with EnvironmentFile=, ExecReload = SIGHUP, stop = SIGTERM --
    def unit_env(self):
        env = {}
        envfile = self.path("/etc/kesc/kesc.env")
        if os.path.exists(envfile):
            with open(envfile) as f:
                for line in f:
                    line = line.strip()
                    if line and not line.startswith("#") and "=" in line:
                        k, v = line.split("=", 1)
                        env[k] = v
        return dt.clean_env(env)

    def service_start(self, test):
        test.assertIsNone(self.server, "already running")
        self.server = dt.Process([dt.KESC_BIN, "server", "--config", self.config,
                                  "--addr", "127.0.0.1:0"], self.unit_env())

    service_enable = service_start

    def service_stop(self, test):
        test.assertEqual(self.server.stop(), 0)
        self.server = None

    def service_restart(self, test):
        self.service_stop(test)
        self.service_start(test)

    def log_text(self):
        """The error log: standard error, and the file once the configuration names one."""
        text = self.server.stderr()
        errfile = self.path("/var/log/kesc/error.log")
        if os.path.exists(errfile):
            text += read(errfile)
        return text

    def service_reload(self, test):
        before = self.log_text().count("configuration reloaded")
        self.server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + dt.START_WAIT
        while self.log_text().count("configuration reloaded") == before:
            test.assertNotIn("reload failed", self.log_text())
            test.assertLess(time.monotonic(), deadline, "no reload")
            time.sleep(0.05)

    def close(self):
        if self.server:
            self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def https(port, method, path, body=None, cert=None, key=None, ca=None, host="localhost"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                                server_hostname=host)
    try:
        data = json.dumps(body) if isinstance(body, dict) else body
        conn.request(method, path, body=data)
        r = conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw.strip().startswith(b"{") else raw), \
            conn.sock.getpeercert()
    finally:
        conn.close()


# ---- Vault command lines, carried out through the HTTP API -------------------------------

class VaultCLI:
    """The `vault` command forms the page uses, as HTTP requests with the root token."""

    def __init__(self, url, token):
        self.url, self.token = url, token

    def request(self, method, path, body=None, namespace=None):
        host, port = self.url.split("//")[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        hdr = {"X-Vault-Token": self.token}
        if namespace:
            hdr["X-Vault-Namespace"] = namespace
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers=hdr)
            r = conn.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw.strip() else None)
        finally:
            conn.close()

    def ok(self, *a, **kw):
        status, js = self.request(*a, **kw)
        if status not in (200, 204):
            raise RuntimeError("%r -> %d %r" % (a, status, js))
        return js

    def run_block(self, block):
        lines = list(block)
        i = 0
        while i < len(lines):
            text = lines[i].strip()
            i += 1
            if not text.startswith("$ "):
                continue
            cmd = text[2:]
            ns = None
            m = re.match(r"VAULT_NAMESPACE=(\S+) (.*)", cmd)
            if m:
                ns, cmd = m.group(1), m.group(2)
            heredoc = None
            if cmd.endswith("<<'EOF'"):
                body = []
                while lines[i].strip() != "EOF":
                    body.append(lines[i])
                    i += 1
                i += 1
                heredoc = "\n".join(body) + "\n"
            self.execute(cmd, ns, heredoc)

    def execute(self, cmd, ns, heredoc):
        w = cmd.split()
        assert w[0] == "vault", cmd
        if w[1:3] == ["secrets", "enable"]:
            opts = dict(a[1:].split("=", 1) for a in w[3:-1])
            self.ok("POST", "/v1/sys/mounts/" + opts.get("path", w[-1]),
                    {"type": w[-1], "options": {"version": opts.get("version", "1")}},
                    namespace=ns)
        elif w[1:3] == ["auth", "enable"]:
            self.ok("POST", "/v1/sys/auth/" + w[3], {"type": w[3]}, namespace=ns)
        elif w[1:3] == ["policy", "write"]:
            self.ok("PUT", "/v1/sys/policies/acl/" + w[3], {"policy": heredoc}, namespace=ns)
        elif w[1] == "write":
            body = dict(a.split("=", 1) for a in w[3:])
            self.ok("POST", "/v1/" + w[2], body, namespace=ns)
        elif w[1:3] == ["namespace", "create"]:
            self.ok("POST", "/v1/sys/namespaces/" + w[3], {}, namespace=ns)
        else:
            raise AssertionError("no HTTP equivalent for: " + cmd)

    def approle_credentials(self, role, namespace=None):
        rid = self.ok("GET", "/v1/auth/approle/role/%s/role-id" % role,
                      namespace=namespace)["data"]["role_id"]
        sid = self.ok("POST", "/v1/auth/approle/role/%s/secret-id" % role, {},
                      namespace=namespace)["data"]["secret_id"]
        return rid, sid


class VaultServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="guide-vault-")
        ready = os.path.join(self.dir, "ready")
        self.proc = subprocess.Popen([sys.executable, dt.VAULT_SERVER, "--listen", "127.0.0.1:0",
                                      "--ready-file", ready], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + dt.START_WAIT
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("vault_server.py did not start")
            time.sleep(0.02)
        with open(ready) as f:
            self.url, self.root = f.read().split("\n")[:2]
        self.cli = VaultCLI(self.url, self.root)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def vault_config(base_text, keystore_example, endpoint, extra_env_names=()):
    """base config with its keystore: section replaced by an example's, over plain HTTP."""
    yaml = dt.yaml_module()
    cfg = yaml.safe_load(base_text)
    with open(os.path.join(EXAMPLES, keystore_example)) as f:
        ks = yaml.safe_load(f)["keystore"]
    ks["vault"]["endpoint"] = endpoint
    ks["vault"].pop("tls", None)  # the Vault test server runs plain HTTP here
    cfg["keystore"] = ks
    return dt.kesctest.to_yaml(cfg) + "\n"


# ---- the tests ----------------------------------------------------------------------------

class Guide(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.blocks = page_blocks()

    def test_every_marked_block_is_run_here(self):
        run_here = {"configure", "check", "ca", "selfsigned", "clients", "rotate", "minio-env",
                    "migrate", "backup-fs", "restore-fs", "upgrade", "logs", "tenant-prefix",
                    "tenant-namespace", "tenants-one-process"}
        self.assertEqual(set(self.blocks), run_here)

    def test_single_node_life_cycle(self):
        """Install, configure, certificates, check, start, rotate, logs, backup and restore,
        upgrade, and the move to Vault, in the page's order."""
        m = Machine()
        self.addCleanup(m.close)
        b = self.blocks
        m.install_file(os.path.join(EXAMPLES, "fs.yml"), "/etc/kesc/config.yml.example")
        m.install_file(os.path.join(dt.SOURCE_ROOT, "deploy/systemd/kesc.env.example"),
                       "/etc/kesc/kesc.env.example")
        m.run_block(self, "configure", b["configure"])

        # The CA, on "the machine that keeps the CA": a directory of its own.
        ca_dir = m.path("/root/ca")
        os.makedirs(ca_dir)
        m.cwd = ca_dir
        m.run_block(self, "ca", b["ca"])
        for f in ("server.crt", "server.key"):
            shutil.copy(os.path.join(ca_dir, f), m.path("/etc/kesc/" + f))
        os.makedirs(m.path("/root/selfsigned"))
        m.cwd = m.path("/root/selfsigned")
        m.run_block(self, "selfsigned", b["selfsigned"])
        san = subprocess.run(["openssl", "x509", "-in", "server.crt", "-noout", "-ext",
                              "subjectAltName"], cwd=m.cwd, capture_output=True, text=True)
        self.assertIn("DNS:kesc.example.net", san.stdout)
        m.cwd = m.path("/etc/kesc")
        m.run_block(self, "clients", b["clients"])
        m.run_block(self, "check", b["check"])
        srv = m.server
        ca, admin = m.path("/root/ca/ca.crt"), (m.path("/etc/kesc/admin.crt"),
                                                m.path("/etc/kesc/admin.key"))

        def api(method, path, body=None):
            status, js, peer = https(m.server.port, method, path, body, *admin, ca=ca)
            return status, js, peer

        status, js, peer = api("GET", "/v1/status")
        self.assertEqual(status, 200, js)
        first_serial = peer["serialNumber"]

        # Rotation: new files next to the old, moved into place, reload.
        subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", "server.key.new", "-out", "server.csr",
                        "-subj", "/CN=kesc.example.net"], cwd=ca_dir, check=True,
                       capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey",
                        "ca.key", "-CAcreateserial", "-days", "365", "-extfile", "server.ext",
                        "-out", "server.crt.new"], cwd=ca_dir, check=True, capture_output=True)
        for f in ("server.key.new", "server.crt.new"):
            shutil.copy(os.path.join(ca_dir, f), m.path("/etc/kesc/" + f))
        m.run_block(self, "rotate", b["rotate"])
        self.assertEqual(srv, m.server, "a reload keeps the process")
        status, _, peer = api("GET", "/v1/status")
        self.assertEqual(status, 200)
        self.assertNotEqual(peer["serialNumber"], first_serial, "old certificate still served")

        # Logs to files, then rotation by rename + reload.
        cfg = dt.yaml_module().safe_load(read(m.config))
        cfg["log"] = dt.yaml_module().safe_load(m.map(literal_after(
            "To write them to files instead")))["log"]
        with open(m.config, "w") as f:
            f.write(dt.kesctest.to_yaml(cfg) + "\n")
        m.service_reload(self)
        api("GET", "/v1/key/list/*")
        audit = m.path("/var/log/kesc/audit.log")
        self.wait_for(lambda: os.path.exists(audit) and "/v1/key/list/" in read(audit))
        m.run_block(self, "logs", b["logs"])
        api("GET", "/v1/identity/self/describe")
        self.wait_for(lambda: os.path.exists(audit) and
                      "/v1/identity/self/describe" in read(audit))
        self.assertNotIn("/v1/identity/self/describe", read(audit + ".1"))
        self.assertNotIn("/v1/key/list/", read(audit))

        # Backup, a lost key, restore.
        self.assertEqual(api("POST", "/v1/key/create/backup-key")[0], 200)
        status, dek, _ = api("POST", "/v1/key/generate/backup-key", {"context": ""})
        self.assertEqual(status, 200)
        m.cwd = m.root
        m.run_block(self, "backup-fs", b["backup-fs"])
        self.assertEqual(api("DELETE", "/v1/key/delete/backup-key")[0], 200)
        self.assertEqual(api("POST", "/v1/key/decrypt/backup-key",
                             {"ciphertext": dek["ciphertext"], "context": ""})[0], 404)
        m.run_block(self, "restore-fs", b["restore-fs"])
        status, out, _ = api("POST", "/v1/key/decrypt/backup-key",
                             {"ciphertext": dek["ciphertext"], "context": ""})
        self.assertEqual((status, out["plaintext"]), (200, dek["plaintext"]))

        # Upgrade: the check and the restart (git pull and the build are what tests/run does).
        m.run_block(self, "upgrade", b["upgrade"],
                    skip=("git pull", "meson compile", "meson install"))
        self.assertEqual(api("GET", "/v1/status")[0], 200)

        # Scaling out: migrate to Vault, then a server on vault.yml decrypts the old DEK.
        vault = VaultServer()
        self.addCleanup(vault.stop)
        v = vault.cli
        v.ok("POST", "/v1/sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
        policy = re.search(r"vault policy write kes-v2 - <<'HCL'\n(.*?)#   HCL",
                           read(os.path.join(EXAMPLES, "vault-kv-v2.yml")), re.S).group(1)
        v.ok("PUT", "/v1/sys/policies/acl/kes-v2", {"policy": policy.replace("#   ", "")})
        v.ok("POST", "/v1/sys/auth/approle", {"type": "approle"})
        v.ok("POST", "/v1/auth/approle/role/kes-server", {"token_policies": "kes-v2"})
        rid, sid = v.approle_credentials("kes-server")
        with open(m.path("/etc/kesc/kesc.env"), "a") as f:
            f.write("KESC_VAULT_ROLE_ID=%s\nKESC_VAULT_SECRET_ID=%s\n" % (rid, sid))
        with open(m.path("/etc/kesc/vault.yml"), "w") as f:
            f.write(vault_config(read(m.config), "vault-kv-v2.yml", vault.url))
        out = [m.run(self, cmd) for cmd, _ in commands(b["migrate"])]
        self.assertRegex(out[-1].strip().splitlines()[-1],
                         r"^copied [1-9]\d*, skipped 0, failed 0$")
        m.service_stop(self)
        m.config = m.path("/etc/kesc/vault.yml")
        m.service_start(self)
        self.assertIn("Keystore: Hashicorp Vault", m.server.stderr())
        status, out, _ = api("POST", "/v1/key/decrypt/backup-key",
                             {"ciphertext": dek["ciphertext"], "context": ""})
        self.assertEqual((status, out["plaintext"]), (200, dek["plaintext"]))

    def wait_for(self, cond, what="condition"):
        deadline = time.monotonic() + 30
        while not cond():
            self.assertLess(time.monotonic(), deadline, what)
            time.sleep(0.1)

    def test_minio_environment(self):
        """MinIO's variables from the page, used as MinIO's client uses them."""
        m = Machine()
        self.addCleanup(m.close)
        ca_dir = m.path("/root/ca")
        os.makedirs(ca_dir)
        m.cwd = ca_dir
        m.run_block(self, "ca", self.blocks["ca"])
        m.run_block(self, "clients", self.blocks["clients"])
        for f in ("server.crt", "server.key"):
            shutil.copy(os.path.join(ca_dir, f), m.path("/etc/kesc/" + f))
        os.makedirs(m.path("/etc/minio/kesc"))
        for f in ("minio.crt", "minio.key", "ca.crt"):
            shutil.copy(os.path.join(ca_dir, f), m.path("/etc/minio/kesc/" + f))
        m.install_file(os.path.join(EXAMPLES, "minio.yml"), "/etc/kesc/config.yml")
        with open(m.path("/etc/kesc/kesc.env"), "w") as f:
            f.write("KESC_ADMIN_IDENTITY=disabled\nMINIO_IDENTITY=%s\n"
                    % dt.kesctest.identity_of_cert(os.path.join(ca_dir, "minio.crt")))
        m.service_start(self)
        # kesc1 is down (a closed port), kesc2 is the server: MinIO must skip kesc1.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
        s.close()
        env = {}
        for line in self.blocks["minio-env"]:
            k, v = line.strip().split("=", 1)
            env[k] = m.map(v)
        self.assertEqual(set(env), {"MINIO_KMS_KES_ENDPOINT", "MINIO_KMS_KES_CERT_FILE",
                                    "MINIO_KMS_KES_KEY_FILE", "MINIO_KMS_KES_CAPATH",
                                    "MINIO_KMS_KES_KEY_NAME"})
        ports = {"kesc1.example.net": dead, "kesc2.example.net": m.server.port}
        minio = MinioLikeClient(env, ports)
        # Start-up: generate the default key, create it on 404 (the config's keys: made it).
        dek = minio.start()
        self.assertEqual(minio.decrypt(dek["ciphertext"]), dek["plaintext"])
        self.assertGreaterEqual(minio.skipped, 1, "the dead endpoint was never tried")


class MinioLikeClient:
    """What MinIO does with MINIO_KMS_KES_* (kes.md §11): endpoints in turn, a failing one
    skipped; the CA from CAPATH; the certificate pair; the server name from the endpoint."""

    def __init__(self, env, ports):
        self.endpoints = [e.strip() for e in env["MINIO_KMS_KES_ENDPOINT"].split(",")]
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.load_verify_locations(env["MINIO_KMS_KES_CAPATH"])
        self.ctx.load_cert_chain(env["MINIO_KMS_KES_CERT_FILE"], env["MINIO_KMS_KES_KEY_FILE"])
        self.key = env["MINIO_KMS_KES_KEY_NAME"]
        self.ports = ports
        self.skipped = 0

    def call(self, method, path, body):
        last = None
        for ep in self.endpoints:
            host = ep.split("//")[1].split(":")[0]
            try:
                sock = socket.create_connection(("127.0.0.1", self.ports[host]), timeout=10)
            except OSError as e:
                self.skipped += 1
                last = e
                continue
            conn = http.client.HTTPSConnection(host, 7373, context=self.ctx, timeout=30)
            conn.sock = self.ctx.wrap_socket(sock, server_hostname="localhost")
            try:
                conn.request(method, path, body=json.dumps(body))
                r = conn.getresponse()
                return r.status, json.loads(r.read() or b"{}")
            finally:
                conn.close()
        raise last

    def start(self):
        ctx = base64.b64encode(b"{}").decode()
        status, js = self.call("POST", "/v1/key/generate/" + self.key, {"context": ctx})
        if status == 404:
            status, js = self.call("POST", "/v1/key/create/" + self.key, {})
            assert status in (200, 400), (status, js)
            status, js = self.call("POST", "/v1/key/generate/" + self.key, {"context": ctx})
        assert status == 200, (status, js)
        return js

    def decrypt(self, ciphertext):
        ctx = base64.b64encode(b"{}").decode()
        status, js = self.call("POST", "/v1/key/decrypt/" + self.key,
                               {"ciphertext": ciphertext, "context": ctx})
        assert status == 200, (status, js)
        return js["plaintext"]


class Tenants(unittest.TestCase):
    """Two tenants on one Vault, set up with the page's commands, each through its own kesc
    with the example configuration; the isolation the page promises."""

    def tenants(self, block_name, example, namespace):
        blocks = page_blocks()
        vault = VaultServer()
        self.addCleanup(vault.stop)
        block = blocks[block_name]
        vault.cli.run_block(block)
        # "and the same for tenant-b": the block with the tenant name changed.
        if namespace:
            vault.cli.run_block([l.replace("tenant-a", "tenant-b") for l in block])
        servers = {}
        for tenant in ("tenant-a", "tenant-b"):
            role = "kesc" if namespace else "kesc-" + tenant
            ns = tenant if namespace else None
            rid, sid = vault.cli.approle_credentials(role, namespace=ns)
            srv = self.start_tenant(vault, example, tenant, rid, sid)
            servers[tenant] = srv
        return vault, servers

    def start_tenant(self, vault, example, tenant, rid, sid):
        yaml = dt.yaml_module()
        with open(os.path.join(EXAMPLES, example)) as f:
            ks = yaml.safe_load(f)["keystore"]
        ks["vault"]["endpoint"] = vault.url
        ks["vault"].pop("tls", None)
        for k in ("prefix", "namespace"):
            if k in ks["vault"]:
                ks["vault"][k] = tenant
        ks["vault"]["approle"]["id"] = rid
        ks["vault"]["approle"]["secret"] = sid
        srv = dt.kesctest.Server(keystore=ks)
        self.addCleanup(srv.cleanup)
        return srv

    def isolation(self, vault, a, b, stored_path, namespace):
        self.assertEqual(a.request("POST", "/v1/key/create/shared-name").status, 200)
        # Stored where the layout says.
        status, _ = vault.cli.request("GET", stored_path("tenant-a", "shared-name"),
                                      namespace="tenant-a" if namespace else None)
        self.assertEqual(status, 200)
        # Not visible through B; B can have its own key of the same name.
        self.assertEqual(b.request("GET", "/v1/key/describe/shared-name").status, 404)
        self.assertEqual(b.request("POST", "/v1/key/create/shared-name").status, 200)
        dek = a.request("POST", "/v1/key/generate/shared-name", {"context": ""}).json()
        r = b.request("POST", "/v1/key/decrypt/shared-name",
                      {"ciphertext": dek["ciphertext"], "context": ""})
        self.assertNotEqual(r.status, 200, "B decrypted A's data key")
        # B's Vault credentials are refused on A's keys.
        token = vault.cli.ok("POST", "/v1/auth/approle/login",
                             {"role_id": b.keystore["vault"]["approle"]["id"],
                              "secret_id": b.keystore["vault"]["approle"]["secret"]},
                             namespace="tenant-b" if namespace else None)["auth"]["client_token"]
        host, port = vault.url.split("//")[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        hdr = {"X-Vault-Token": token}
        if namespace:
            hdr["X-Vault-Namespace"] = "tenant-a"
        conn.request("GET", stored_path("tenant-a", "shared-name"), headers=hdr)
        self.assertEqual(conn.getresponse().status, 403)
        conn.close()

    def test_prefix(self):
        vault, s = self.tenants("tenant-prefix", "vault-tenant-prefix.yml", namespace=False)
        self.isolation(vault, s["tenant-a"], s["tenant-b"],
                       lambda t, k: "/v1/kv/%s/%s" % (t, k), namespace=False)

    def test_namespace(self):
        vault, s = self.tenants("tenant-namespace", "vault-tenant-namespace.yml", namespace=True)
        self.isolation(vault, s["tenant-a"], s["tenant-b"],
                       lambda t, k: "/v1/kv/data/%s" % k, namespace=True)


class OneProcess(unittest.TestCase):
    """ONE PROCESS FOR MANY TENANTS: tenant A of the prefix layout and tenant B of the
    namespace layout, each first on its own kesc, then both in one kesc configured from
    deploy/examples/vault-tenants.yml, with their keys where they were."""

    def test_migration(self):
        blocks = page_blocks()
        vault = VaultServer()
        self.addCleanup(vault.stop)
        vault.cli.run_block(blocks["tenant-prefix"])
        vault.cli.run_block([l.replace("tenant-a", "tenant-b")
                             for l in blocks["tenant-namespace"]])
        a_role = vault.cli.approle_credentials("kesc-tenant-a")
        b_role = vault.cli.approle_credentials("kesc", namespace="tenant-b")
        before = {}
        for tenant, example, role in (("tenant-a", "vault-tenant-prefix.yml", a_role),
                                      ("tenant-b", "vault-tenant-namespace.yml", b_role)):
            srv = Tenants.start_tenant(self, vault, example, tenant, *role)
            self.assertEqual(srv.request("POST", "/v1/key/create/minio-key").status, 200)
            before[tenant] = srv.request("POST", "/v1/key/generate/minio-key",
                                         {"context": ""}).json()
            srv.stop()
        vault.cli.run_block(blocks["tenants-one-process"])
        op_role = vault.cli.approle_credentials("kesc-operator")

        yaml = dt.yaml_module()
        with open(os.path.join(EXAMPLES, "vault-tenants.yml")) as f:
            cfg = yaml.safe_load(f)
        srv = dt.kesctest.Server(start=False, policies={})
        self.addCleanup(srv.cleanup)
        for n in ("minio-a", "minio-b", "prometheus"):
            srv.certs.client(n)
        ks = cfg["keystore"]
        ks["vault"]["endpoint"] = vault.url
        ks["vault"].pop("tls")
        ks["vault"]["approle"] = {"id": op_role[0], "secret": op_role[1]}
        tenants = cfg["tenants"]
        for tenant, role, cert in (("tenant-a", a_role, "minio-a"),
                                   ("tenant-b", b_role, "minio-b")):
            t = tenants[tenant]
            t["keystore"]["vault"]["approle"].update({"id": role[0], "secret": role[1]})
            t["policy"]["minio"]["identities"] = [srv.identity(cert)]
        srv.keystore = ks
        srv.policies = {"monitoring": dict(cfg["policy"]["monitoring"],
                                           identities=["prometheus"])}
        srv.extra = {"tenants": tenants}
        srv.write_config()
        srv.start()
        for tenant, cert, other in (("tenant-a", "minio-a", "minio-b"),
                                    ("tenant-b", "minio-b", "minio-a")):
            r = srv.request("POST", "/v1/key/decrypt/minio-key",
                            {"ciphertext": before[tenant]["ciphertext"], "context": ""},
                            cert=cert)
            self.assertEqual((r.status, r.json()["plaintext"]),
                             (200, before[tenant]["plaintext"]), tenant)
            r = srv.request("POST", "/v1/key/decrypt/minio-key",
                            {"ciphertext": before[tenant]["ciphertext"], "context": ""},
                            cert=other)
            self.assertNotEqual(r.status, 200, "%s's data key opened by another" % tenant)
            self.assertEqual(srv.request("GET", "/v1/key/list/*", cert=cert).json()["names"],
                             ["minio-key"])
        # the operator's own keys are in its own place
        self.assertEqual(srv.request("POST", "/v1/key/create/ops-key").status, 200)
        status, _ = vault.cli.request("GET", "/v1/kv/kesc-operator/ops-key")
        self.assertEqual(status, 200)
        m = srv.request("GET", "/v1/metrics", cert="prometheus").body.decode()
        self.assertIn('kesc_tenant_keystore_up{tenant="tenant-b"}', m)
        self.assertEqual(srv.stop(), 0)


def read(path):
    with open(path) as f:
        return f.read()


if __name__ == "__main__":
    unittest.main(verbosity=2)
