"""sys/ endpoints: health, seal-status, mounts, auth, policies, namespaces, capabilities."""
import time

from . import acl as aclmod
from .backend import Backend
from .router import Mount
from .util import Resp, VaultError, bad_request, parse_bool, unsupported_operation

VERSION = "1.15.0"


def health_body(core):
    body = {
        "initialized": True,
        "sealed": core.sealed,
        "standby": False,
        "performance_standby": False,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": int(time.time()),
        "version": VERSION,
        "enterprise": False,
        "echo_duration_ms": 0,
        "clock_skew_ms": 0,
    }
    if not core.sealed:
        body["cluster_name"] = core.cluster_name
        body["cluster_id"] = core.cluster_id
    return {k: body[k] for k in sorted(body)}


def seal_status_body(core):
    body = {"type": "shamir", "initialized": True, "sealed": core.sealed, "t": 1, "n": 1,
            "progress": 0, "nonce": "", "version": VERSION, "build_date": "2023-09-22T20:53:13Z",
            "migration": False}
    if not core.sealed:
        body["cluster_name"] = core.cluster_name
        body["cluster_id"] = core.cluster_id
    body["recovery_seal"] = False
    body["storage_type"] = "inmem"
    return body


def _code(query, name, default):
    if name not in query:
        return default
    try:
        return int(query[name])
    except ValueError:
        raise VaultError(400)


def raw_sys(core, method, path, query, headers):
    """sys/health and sys/seal-status: unauthenticated, raw bodies, work while sealed."""
    from .util import go_json
    hdr = {"Content-Type": "application/json"}
    if path in ("sys/health", "sys/seal-status") and (headers.get("X-Vault-Namespace") or "").strip("/"):
        # Root-only paths: Vault Enterprise answers 404 when a namespace is given (vault#14934).
        raise VaultError(404, "unsupported path")
    if path == "sys/health":
        if method not in ("GET", "HEAD"):
            raise VaultError(405)
        for flag in ("standbyok", "perfstandbyok"):
            if flag in query and query[flag] != "":
                try:
                    parse_bool(query[flag], flag)
                except VaultError:
                    raise VaultError(400)
        status = _code(query, "activecode", 200)
        sealed_code = _code(query, "sealedcode", 503)
        for name in ("uninitcode", "standbycode", "drsecondarycode", "performancestandbycode",
                     "removedcode", "haunhealthycode"):
            _code(query, name, 0)
        with core.lock:
            if core.sealed:
                status = sealed_code
            body = go_json(health_body(core))
        return status, hdr, (b"" if method == "HEAD" else body)
    if path == "sys/seal-status":
        if method != "GET":
            raise VaultError(405)
        with core.lock:
            return 200, hdr, go_json(seal_status_body(core))
    return None


def _norm(path):
    return path.strip("/") + "/"


class SysBackend(Backend):
    def skip_acl(self, req):
        return req.sub.startswith("internal/ui/mounts/") and req.op == "read"

    def needs_sudo(self, req):
        return (req.sub.startswith("auth/") and req.op in ("update", "create", "delete")) or req.sub == "seal"

    def handle(self, req):
        sub = req.sub
        if sub in ("mounts", "mounts/"):
            self.ops(req, ("read",))
            return Resp(data={m.path: m.info() for m in self.ns.mounts.values()
                              if not m.path.startswith("auth/")}, inject=True)
        if sub.startswith("mounts/"):
            return self.mount_path(req, _norm(sub[len("mounts/"):]))
        if sub in ("auth", "auth/"):
            self.ops(req, ("read",))
            return Resp(data={m.path[5:]: m.info() for m in self.ns.mounts.values()
                              if m.path.startswith("auth/")}, inject=True)
        if sub.startswith("auth/"):
            return self.auth_path(req, "auth/" + _norm(sub[len("auth/"):]))
        if sub in ("policy", "policy/"):
            self.ops(req, ("read", "list"))
            names = sorted(self.ns.policies) + (["root"] if not self.ns.path else [])
            return Resp(data={"keys": names, "policies": names}, inject=True)
        if sub.startswith("policy/"):
            return self.policy_path(req, sub[len("policy/"):], "rules", inject=True)
        if sub in ("policies/acl", "policies/acl/"):
            self.ops(req, ("list",))
            return Resp(data={"keys": sorted(self.ns.policies) + (["root"] if not self.ns.path else [])})
        if sub.startswith("policies/acl/"):
            return self.policy_path(req, sub[len("policies/acl/"):], "policy", inject=False)
        if sub in ("namespaces", "namespaces/"):
            return self.list_namespaces(req)
        if sub.startswith("namespaces/"):
            return self.namespace_path(req, sub[len("namespaces/"):].strip("/"))
        if sub.startswith("internal/ui/mounts/"):
            return self.ui_mount(req, sub[len("internal/ui/mounts/"):])
        if sub == "capabilities-self":
            return self.capabilities_self(req)
        if sub == "seal" and not self.ns.path:
            # Real Vault API (sudo); unsealing needs keys, so it is only available as /_test/unseal.
            self.ops(req, ("update",))
            self.core.sealed = True
            return None
        raise VaultError(404, "1 error occurred:\n\t* unsupported path\n\n")

    # ---- mounts ----------------------------------------------------------------------

    def mount_path(self, req, mpath):
        if req.op == "read":
            m = self.ns.mounts.get(mpath)
            if m is None:
                raise bad_request("No secret engine mount at %s" % mpath)
            return Resp(data=m.info(), inject=True)
        if req.op == "delete":
            if mpath in ("sys/", "auth/", "cubbyhole/", "identity/"):
                raise bad_request("cannot unmount \"%s\"" % mpath)
            self.ns.mounts.pop(mpath, None)
            return None
        if req.op != "update":
            raise unsupported_operation()
        return self.enable(req, mpath, secret=True)

    def auth_path(self, req, mpath):
        if req.op == "delete":
            if mpath == "auth/token/":
                raise bad_request("token credential backend cannot be disabled")
            self.ns.mounts.pop(mpath, None)
            return None
        if req.op == "read":
            m = self.ns.mounts.get(mpath)
            if m is None:
                raise bad_request("No auth engine at %s" % mpath[5:])
            return Resp(data=m.info(), inject=True)
        if req.op != "update":
            raise unsupported_operation()
        return self.enable(req, mpath, secret=False)

    def enable(self, req, mpath, secret):
        from .kv import KVv1, KVv2
        from .transit import Transit
        from .auth import AppRole, Kubernetes
        mtype = req.data.get("type")
        if not mtype or not isinstance(mtype, str):
            raise bad_request("backend type must be specified as a string")
        options = req.data.get("options")
        if options is not None and not isinstance(options, dict):
            raise bad_request("error converting input for field \"options\"")
        options = {str(k): str(v) for k, v in (options or {}).items()} or None
        for existing in self.ns.mounts:
            if existing.startswith(mpath) or mpath.startswith(existing):
                raise bad_request("path is already in use at %s" % existing)
        if secret:
            if mpath.startswith(("auth/", "sys/")):
                raise bad_request("cannot mount under %s" % mpath.split("/")[0] + "/")
            if mtype == "kv-v2":
                mtype, options = "kv", dict(options or {}, version="2")
            if mtype == "kv":
                version = (options or {}).get("version", "1")
                if version not in ("1", "2", ""):
                    raise bad_request("invalid version: %s" % version)
                backend = (KVv2 if version == "2" else KVv1)(self.core, self.ns)
                options = options or {"version": "1"}
            elif mtype == "transit":
                backend = Transit(self.core, self.ns)
            else:
                raise bad_request("plugin not found in the catalog: %s" % mtype)
        else:
            if mtype == "approle":
                backend = AppRole(self.core, self.ns, mpath)
            elif mtype == "kubernetes":
                backend = Kubernetes(self.core, self.ns, mpath)
            else:
                raise bad_request("plugin not found in the catalog: %s" % mtype)
        desc = req.data.get("description") or ""
        self.ns.mounts[mpath] = Mount(mpath, mtype, backend, options, desc)
        return None

    # ---- policies --------------------------------------------------------------------

    def policy_path(self, req, name, field, inject):
        name = name.strip("/").lower()
        if req.op == "read":
            if name == "root" and not self.ns.path:
                return Resp(data={"name": "root", field: ""}, inject=inject)
            pol = self.ns.policies.get(name)
            if pol is None:
                return None
            return Resp(data={"name": name, field: pol[0]}, inject=inject)
        if req.op == "delete":
            if name in ("root", "default"):
                raise bad_request('cannot delete "%s" policy' % name)
            self.ns.policies.pop(name, None)
            return None
        if req.op != "update":
            raise unsupported_operation()
        if name == "root":
            raise bad_request('cannot update "root" policy')
        text = req.data.get("policy", req.data.get("rules"))
        if not isinstance(text, str) or not text:
            raise bad_request("'policy' parameter not supplied or empty")
        self.ns.policies[name] = (text, aclmod.parse_policy(text))
        return None

    # ---- namespaces ------------------------------------------------------------------

    def list_namespaces(self, req):
        self.ops(req, ("list",))
        kids = {}
        for path, ns in self.core.namespaces.items():
            if path.startswith(self.ns.path) and path != self.ns.path:
                rel = path[len(self.ns.path):]
                if rel.count("/") == 1:
                    kids[rel] = {"custom_metadata": ns.custom_metadata, "id": ns.id, "path": path}
        return Resp(data={"keys": sorted(kids), "key_info": kids})

    def namespace_path(self, req, name):
        if not name or "/" in name:
            raise bad_request("invalid namespace name \"%s\"" % name)
        full = self.ns.path + name + "/"
        if req.op == "read":
            ns = self.core.namespaces.get(full)
            if ns is None:
                return None
            return Resp(data={"custom_metadata": ns.custom_metadata, "id": ns.id, "path": full})
        if req.op == "delete":
            for p in [p for p in self.core.namespaces if p.startswith(full)]:
                del self.core.namespaces[p]
            self.core.tokens.revoke_namespace(full)
            return None
        if req.op not in ("update", "create"):
            raise unsupported_operation()
        ns = self.core.namespaces.get(full)
        if ns is None:
            ns = self.core.new_namespace(full)
        meta = req.data.get("custom_metadata")
        if isinstance(meta, dict):
            ns.custom_metadata = {str(k): str(v) for k, v in meta.items()}
        return Resp(data={"custom_metadata": ns.custom_metadata, "id": ns.id, "path": full})

    # ---- introspection ---------------------------------------------------------------

    def ui_mount(self, req, path):
        m = self.core.find_mount(self.ns, path)
        if m is not None and self._any_access(req, m.path):
            info = m.info()
            info["path"] = m.path
            return Resp(data=info)
        shown = path if path.endswith("/") else path + "/"
        raise VaultError(403, "preflight capability check returned 403, please ensure client's "
                              "policies grant access to path \"%s\"" % shown)

    def _any_access(self, req, mpath):
        acl = req.acl
        if acl.root:
            return True
        prefix = req.ns.path[len(req.token.ns):] + mpath
        for pat, caps in list(acl.exact.items()) + list(acl.wild.items()):
            if caps - {"deny"} and (pat.startswith(prefix) or aclmod._pattern_regex(pat).match(prefix + "x")):
                return True
        return False

    def capabilities_self(self, req):
        """Vault's handleCapabilities: `paths` (or the deprecated `path`) is a comma string
        slice, so "a,b" is two paths; each path is relative to the request's namespace.
        Vault's ACL.Capabilities asks as a list operation (an exact rule for "p" also
        answers "p/"), answers ["root"] for a root token, ["deny"] when deny is set or
        nothing matches, and the sorted capability names otherwise."""
        paths = _comma_slice(req.data.get("paths"))
        if not paths:
            paths = _comma_slice(req.data.get("path"))
        if not paths:
            raise bad_request("paths must be supplied")
        out = {}
        for p in paths:
            caps = req.acl.capabilities(req.ns.path[len(req.token.ns):] + p, is_list=True)
            if "root" in caps:
                res = ["root"]
            elif "deny" in caps or not caps:
                res = ["deny"]
            else:
                res = sorted(caps)
            out[p] = res
        if len(paths) == 1:
            out["capabilities"] = out[paths[0]]
        return Resp(data=out, inject=True)


def _comma_slice(value):
    """Vault's TypeCommaStringSlice: a string is split at commas (each part trimmed, empty
    parts dropped); a list must hold strings. Anything else is a 400, as Vault's field
    decoding fails."""
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return [p.strip() for p in value if p.strip()]
    raise bad_request("paths must be supplied")
