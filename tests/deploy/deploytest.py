"""deploytest — helpers shared by the tests of deploy/ (Containerfile, Kubernetes manifests,
systemd unit): reading a Containerfile, collecting a kustomization's objects, a TLS Vault test
server, and starting kesc with an exact argv and environment. Everything started here is
stopped again (context managers), also when a test fails.

Environment: KESC_BIN (the kesc binary), KESC_SOURCE_ROOT (the source tree).
"""
import http.client
import json
import os
import re
import shlex
import signal
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("KESC_SOURCE_ROOT", os.path.dirname(os.path.dirname(HERE)))
KESC_BIN = os.environ.get("KESC_BIN", "")
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))
import kesctest  # noqa: E402,F401  (re-exported: Certs, identity_of_cert)

VAULT_SERVER = os.path.join(SOURCE_ROOT, "tests", "vault", "vault_server.py")
START_WAIT = 90  # generous: a loaded 2-core machine running a sanitizer build

# Variables of the test runner that would change what a kesc process does.
_SCRUB = re.compile(r"^(KES|KESC|MINIO|VAULT)_|^NOTIFY_SOCKET$|_proxy$|_PROXY$")


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not _SCRUB.search(k) or k == "KESC_BIN"}
    env.pop("KESC_BIN", None)
    env.update(extra or {})
    return env


def project_version():
    with open(os.path.join(SOURCE_ROOT, "meson.build")) as f:
        return re.search(r"version:\s*'([^']+)'", f.read()).group(1)


def config_variables(text):
    """The ${NAME} references of a kesc config (comments ignored)."""
    names = set()
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*", "", line)
        names.update(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", line))
    return names


# ---- Containerfile ----------------------------------------------------------------------

class Containerfile:
    """The instructions of a Containerfile, line continuations joined, comments dropped,
    ARG defaults substituted; .stages is a list of (FROM line, [(INSTR, args), ...])."""

    def __init__(self, path):
        self.path = path
        self.args = {}
        self.stages = []
        self.preamble = []
        logical, cur = [], ""
        with open(path) as f:
            for raw in f:
                line = raw.rstrip("\n")
                if not cur and (not line.strip() or line.lstrip().startswith("#")):
                    continue
                if line.lstrip().startswith("#"):
                    continue  # a comment inside a continued instruction
                if line.endswith("\\"):
                    cur += line[:-1] + " "
                    continue
                logical.append(cur + line)
                cur = ""
        for line in logical:
            instr, _, rest = line.strip().partition(" ")
            instr, rest = instr.upper(), rest.strip()
            if instr == "ARG" and not self.stages:
                name, _, default = rest.partition("=")
                self.args[name] = default
                self.preamble.append((instr, rest))
                continue
            rest = re.sub(r"\$\{(\w+)\}", lambda m: self.args.get(m.group(1), m.group(0)), rest)
            if instr == "FROM":
                self.stages.append((rest, []))
            elif not self.stages:
                self.preamble.append((instr, rest))
            else:
                self.stages[-1][1].append((instr, rest))

    def final(self):
        return self.stages[-1][1]

    def last(self, instr, stage=None):
        found = [r for i, r in (stage or self.final()) if i == instr]
        return found[-1] if found else None

    def exec_form(self, instr):
        """ENTRYPOINT/CMD in JSON (exec) form as a list; None when absent."""
        value = self.last(instr)
        return json.loads(value) if value is not None else None

    def healthcheck(self):
        """(options dict, argv list) of the final stage's HEALTHCHECK."""
        value = self.last("HEALTHCHECK")
        if value is None:
            return None, None
        opts = {}
        while value.startswith("--"):
            opt, _, value = value.partition(" ")
            k, _, v = opt[2:].partition("=")
            opts[k] = v
            value = value.lstrip()
        assert value.startswith("CMD "), value
        return opts, json.loads(value[4:])


# ---- ignore files (Docker/Podman .dockerignore/.containerignore semantics) --------------

def ignore_patterns(path):
    pats = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                pats.append(line)
    return pats


def _pattern_regex(pat):
    neg = pat.startswith("!")
    pat = pat[1:] if neg else pat
    pat = pat.strip("/")
    out, i = "", 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pat.startswith("**", i):
            out += ".*"
            i += 2
        elif pat[i] == "*":
            out += "[^/]*"
            i += 1
        elif pat[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pat[i])
            i += 1
    return neg, re.compile(out + "$")


def ignored(relpath, patterns):
    """Whether the context path relpath (or a directory above it) is excluded: the last
    matching pattern wins, "!" patterns re-include (as Docker's and Podman's builders do)."""
    compiled = [_pattern_regex(p) for p in patterns]
    parts = relpath.split("/")
    for n in range(1, len(parts) + 1):
        prefix = "/".join(parts[:n])
        result = None
        for neg, rx in compiled:
            if rx.match(prefix):
                result = not neg
        if result:
            return True
    return False


# ---- YAML / kustomize --------------------------------------------------------------------

def yaml_module():
    import yaml  # python3-yaml (deploy/install-deps); meson picks a python3 that has it
    return yaml


def load_documents(path):
    yaml = yaml_module()
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def kustomization_objects(directory, seen=None):
    """Every object a kustomization directory produces from its `resources:` (files and
    other kustomization directories). The manifests use no patches or generators, so this
    is exactly what `kubectl kustomize` renders, up to the images: rewrite."""
    seen = seen if seen is not None else set()
    kpath = os.path.join(directory, "kustomization.yaml")
    (k,) = load_documents(kpath)
    objects = []
    for res in k.get("resources", []):
        full = os.path.normpath(os.path.join(directory, res))
        seen.add(full)
        if os.path.isdir(full):
            seen.add(os.path.join(full, "kustomization.yaml"))
            objects += kustomization_objects(full, seen)
        else:
            objects += load_documents(full)
    return objects


# ---- processes ---------------------------------------------------------------------------

class Vault:
    """vault_server.py on an ephemeral 127.0.0.1 port, HTTPS with the given certificate."""

    def __init__(self, cert, key):
        self.dir = tempfile.mkdtemp(prefix="deploy-vault-")
        ready = os.path.join(self.dir, "ready")
        self.proc = subprocess.Popen(
            [sys.executable, VAULT_SERVER, "--listen", "127.0.0.1:0", "--ready-file", ready,
             "--tls-cert", cert, "--tls-key", key],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_WAIT
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("vault_server.py did not start")
            time.sleep(0.02)
        with open(ready) as f:
            self.url, self.root = f.read().split("\n")[:2]
        self.ctx = ssl.create_default_context(cafile=cert)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def call(self, method, path, body=None):
        host, port = self.url.split("//")[1].split(":")
        conn = http.client.HTTPSConnection(host, int(port), context=self.ctx, timeout=30)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"X-Vault-Token": self.root})
            r = conn.getresponse()
            raw = r.read()
            if r.status not in (200, 204):
                raise RuntimeError("%s %s -> %d %s" % (method, path, r.status, raw[:300]))
            return json.loads(raw) if raw.strip() else None
        finally:
            conn.close()

    def setup_kv2(self, policy_name="kesc"):
        """K/V v2 at kv/ with the policy of deploy/examples/vault-kv-v2.yml."""
        self.call("POST", "/v1/sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
        self.call("PUT", "/v1/sys/policies/acl/" + policy_name, {"policy": """
path "kv/data/*" { capabilities = ["create", "read", "update"] }
path "kv/destroy/*" { capabilities = ["update"] }
path "kv/metadata/*" { capabilities = ["list"] }
"""})

    def approle(self, role, policy="kesc"):
        self.call("POST", "/v1/sys/auth/approle", {"type": "approle"})
        self.call("POST", "/v1/auth/approle/role/" + role,
                  {"token_policies": [policy], "token_ttl": "1h"})
        rid = self.call("GET", "/v1/auth/approle/role/%s/role-id" % role)["data"]["role_id"]
        sid = self.call("POST", "/v1/auth/approle/role/%s/secret-id" % role)["data"]["secret_id"]
        return rid, sid

    def kubernetes(self, role, sa, namespace, audience, policy="kesc"):
        self.call("POST", "/v1/sys/auth/kubernetes", {"type": "kubernetes"})
        self.call("POST", "/v1/auth/kubernetes/config",
                  {"kubernetes_host": "https://kubernetes.default.svc"})
        self.call("POST", "/v1/auth/kubernetes/role/" + role,
                  {"bound_service_account_names": [sa],
                   "bound_service_account_namespaces": [namespace],
                   "audience": audience, "token_policies": [policy], "token_ttl": "1h"})

    def seal(self, sealed=True):
        self.call("POST", "/_test/seal" if sealed else "/_test/unseal")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def service_account_jwt(name, namespace, audience):
    """A projected service-account token's shape (the Vault test server reads the claims and,
    like every test double here, does not verify the signature)."""
    import base64

    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"aud": [audience], "iss": "https://kubernetes.default.svc",
              "sub": "system:serviceaccount:%s:%s" % (namespace, name),
              "kubernetes.io": {"namespace": namespace,
                                "serviceaccount": {"name": name, "uid": "0" * 8}},
              "exp": int(time.time()) + 3600}
    return "%s.%s.%s" % (b64({"alg": "RS256", "kid": "test"}), b64(claims), "c2ln")


class Process:
    """A kesc server started with an exact argv and environment; waits for its listener."""

    def __init__(self, argv, env, cwd=None):
        self.dir = tempfile.mkdtemp(prefix="deploy-kesc-")
        self.out = open(os.path.join(self.dir, "stdout"), "wb")
        self.err_path = os.path.join(self.dir, "stderr")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.err)
        self.port = None
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            m = re.search(r"listening on [^\s]*:(\d+)\n", self.stderr())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        text = self.stderr()
        self.stop()
        raise RuntimeError("kesc did not start (%s):\n%s" % (shlex.join(argv), text))

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def get_without_certificate(port, path, timeout=30):
    """GET over HTTPS the way the kubelet probes: no client certificate, no server check."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()
