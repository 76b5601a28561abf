"""Request core: namespaces, mount table, authentication, ACL and response rendering."""
import json
import threading
import traceback
import urllib.parse

from . import acl as aclmod
from .tokens import Token, TokenStore
from .util import (INVALID_TOKEN, NAMESPACE_LOCKED, PERMISSION_DENIED, SEALED, VaultError, bad_request, go_json,
                   new_uuid, parse_bool)

_OPS = {"GET": "read", "POST": "update", "PUT": "update", "DELETE": "delete",
        "LIST": "list", "PATCH": "patch", "HEAD": "read"}


class Mount:
    def __init__(self, path, mtype, backend, options=None, description="", local=False):
        self.path = path
        self.type = mtype
        self.backend = backend
        self.options = options
        self.description = description
        self.local = local
        self.uuid = new_uuid()
        self.accessor = "%s_%s" % (mtype, self.uuid[:8])

    def info(self):
        return {
            "accessor": self.accessor,
            "config": {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0},
            "description": self.description,
            "external_entropy_access": False,
            "local": self.local,
            "options": self.options,
            "plugin_version": "",
            "running_plugin_version": "v1.15.0+builtin",
            "running_sha256": "",
            "seal_wrap": False,
            "type": self.type,
            "uuid": self.uuid,
        }


class Namespace:
    def __init__(self, path):
        self.path = path                       # "" for root, else "ns1/" or "ns1/ns2/"
        self.id = "root" if not path else new_uuid()[:5]
        self.custom_metadata = {}
        self.locked = False                    # /_test/lock-namespace (Vault Enterprise API lock)
        self.mounts = {}                       # "kv/", "auth/approle/", "sys/" -> Mount
        self.policies = {"default": (aclmod.DEFAULT_POLICY.strip(), aclmod.parse_policy(aclmod.DEFAULT_POLICY))}


class Request:
    def __init__(self, op, path, data, query, headers, remote):
        self.op = op
        self.path = path          # relative to the namespace, e.g. "kv/data/foo"
        self.data = data
        self.query = query
        self.headers = headers
        self.remote = remote
        self.ns = None
        self.mount = None
        self.sub = ""             # path inside the mount
        self.token = None
        self.acl = None
        self.cap = op             # capability checked: "create" for writes to absent resources


class Core:
    def __init__(self, root_token):
        self.lock = threading.RLock()
        self.log = lambda line: None
        self.sealed = False
        self.tokens = TokenStore()
        self.namespaces = {}
        self.cluster_id = new_uuid()
        self.cluster_name = "vault-cluster-" + self.cluster_id[:8]
        self.root_ns = self.new_namespace("")
        self.root_token = self.tokens.add(Token("", ["root"], "auth/token/root", 0, renewable=False,
                                                display_name="root", token_id=root_token))

    def new_namespace(self, path):
        from .sysapi import SysBackend
        from .auth import TokenBackend
        ns = Namespace(path)
        ns.mounts["sys/"] = Mount("sys/", "system", SysBackend(self, ns),
                                  description="system endpoints used for control, policy and debugging")
        ns.mounts["auth/token/"] = Mount("auth/token/", "token", TokenBackend(self, ns),
                                         description="token based credentials")
        self.namespaces[path] = ns
        return ns

    # ---- routing helpers -------------------------------------------------------------

    def resolve_namespace(self, header, path):
        """Applies X-Vault-Namespace and path-prefix namespaces (vault-api.md §1.9)."""
        full = path
        if header:
            h = header.strip("/")
            if h:
                full = h + "/" + path
        ns = self.root_ns
        rest = full
        while True:
            seg, sep, tail = rest.partition("/")
            cand = ns.path + seg + "/"
            if sep and seg and cand in self.namespaces:
                ns, rest = self.namespaces[cand], tail
                continue
            return ns, rest

    @staticmethod
    def find_mount(ns, path):
        best = None
        for mpath, m in ns.mounts.items():
            if path.startswith(mpath) or path + "/" == mpath:
                if best is None or len(mpath) > len(best.path):
                    best = m
        return best

    def acl_for(self, tok, ns):
        ns_tables = self.namespaces.get(tok.ns, ns).policies
        tables = []
        for p in tok.policies:
            if p == "root":
                tables.append("root")
            elif p in ns_tables:
                tables.append(ns_tables[p][1])
        return aclmod.ACL(tables)

    # ---- request processing ------------------------------------------------------------

    def handle(self, method, raw_path, headers, body, remote):
        """Returns (status, headers, body bytes) for one /v1/ request."""
        try:
            return self._handle(method, raw_path, headers, body, remote)
        except VaultError as e:
            return self.render_error(e.status, e.errors)
        except Exception:  # a bug in the simulator: answer like Vault's 500, keep serving
            self.log("internal error:\n" + traceback.format_exc())
            return self.render_error(500, ["1 error occurred:\n\t* internal error\n\n"])

    @staticmethod
    def render_error(status, errors):
        return status, {"Content-Type": "application/json"}, go_json({"errors": errors})

    def _handle(self, method, raw_path, headers, body, remote):
        url = urllib.parse.urlsplit(raw_path)
        if not url.path.startswith("/v1/"):
            raise VaultError(404)
        path = urllib.parse.unquote(url.path[4:])
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        op = _OPS.get(method)
        if op is None:
            raise VaultError(405)
        if method == "GET" and "list" in query:
            try:
                is_list = parse_bool(query.pop("list"), "list")
            except VaultError:
                raise VaultError(400)
            if is_list:
                op = "list"
        if method == "PATCH":
            ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/merge-patch+json":
                raise VaultError(415, "PATCH requires Content-Type of application/merge-patch+json, "
                                      "provided %s" % (headers.get("Content-Type") or ""))
        if op == "list" and not path.endswith("/"):
            path += "/"

        from .sysapi import raw_sys
        raw = raw_sys(self, method, path, query, headers)
        if raw is not None:
            return raw
        with self.lock:
            if self.sealed:
                raise VaultError(503, SEALED)
        data = self.parse_body(method, body, query)
        if method in ("POST", "PUT") and path.endswith("/"):
            raise bad_request("cannot write to a path ending in '/'")
        req = Request(op, path, data, query, headers, remote)
        with self.lock:
            return self.render(req, self.dispatch(req))

    @staticmethod
    def parse_body(method, body, query):
        if method in ("POST", "PUT", "PATCH"):
            if not body or not body.strip():
                return {}
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise bad_request("error parsing JSON")
            if not isinstance(data, dict):
                raise bad_request("error parsing JSON")
            return data
        return dict(query)

    def authenticate(self, req):
        tok_str = req.headers.get("X-Vault-Token")
        if not tok_str:
            auth = req.headers.get("Authorization") or ""
            if auth.startswith("Bearer "):
                tok_str = auth[len("Bearer "):].strip()
        if not tok_str:
            raise VaultError(403, "permission denied")
        tok = self.tokens.get(tok_str)
        if tok is None:
            raise VaultError(403, INVALID_TOKEN)
        # A token works in its own namespace and in namespaces below it.
        if not req.ns.path.startswith(tok.ns):
            raise VaultError(403, PERMISSION_DENIED)
        req.token = tok
        req.acl = self.acl_for(tok, req.ns)

    def check(self, req, cap, path=None, sudo=False):
        """Raises 403 unless the token's ACL grants cap on path (relative to its namespace)."""
        full = req.ns.path[len(req.token.ns):] + (req.path if path is None else path)
        if not req.acl.allowed(full, cap, is_list=(cap == "list"), sudo=sudo):
            raise VaultError(403, PERMISSION_DENIED)

    def dispatch(self, req):
        req.ns, req.path = self.resolve_namespace(req.headers.get("X-Vault-Namespace"), req.path)
        # A namespace an administrator locked answers nothing, nor do the ones below it.
        if any(ns.locked and req.ns.path.startswith(ns.path) for ns in self.namespaces.values()
               if ns.path):
            raise VaultError(503, NAMESPACE_LOCKED)
        mount = self.find_mount(req.ns, req.path)
        req.mount = mount
        if mount is not None:
            req.sub = req.path[len(mount.path):]
            if mount.backend.unauthenticated(req):
                return mount.backend.handle(req)
        self.authenticate(req)
        cap = req.op
        if req.op == "update" and mount is not None:
            exists = mount.backend.existence(req)
            if exists is False:
                cap = "create"
        req.cap = cap
        sudo = mount is not None and mount.backend.needs_sudo(req)
        if mount is None or not mount.backend.skip_acl(req):
            self.check(req, cap, sudo=sudo)
        if mount is None:
            raise VaultError(404, 'no handler for route "%s". route entry not found.' % (req.ns.path + req.path))
        tok = req.token
        if tok.num_uses > 0:
            tok.num_uses -= 1
            if tok.num_uses == 0:
                self.tokens.revoke(tok)
        return mount.backend.handle(req)

    def render(self, req, resp):
        hdr = {"Content-Type": "application/json"}
        if resp is None:
            if req.op in ("read", "list"):
                return 404, hdr, go_json({"errors": []})
            return 204, {}, b""
        if isinstance(resp.raw, bytes):
            return resp.status, hdr, resp.raw
        if resp.raw is not None:
            return resp.status, hdr, go_json(resp.raw)
        if req.op == "list" and resp.status == 200 and not resp.warnings:
            keys = (resp.data or {}).get("keys")
            if not keys and set((resp.data or {}).keys()) <= {"keys"}:
                return 404, hdr, go_json({"errors": []})
        env = {
            "request_id": new_uuid(),
            "lease_id": "",
            "renewable": resp.renewable,
            "lease_duration": resp.lease_duration,
            "data": _sorted(resp.data),
            "wrap_info": None,
            "warnings": resp.warnings,
            "auth": resp.auth,
            "mount_type": req.mount.type if req.mount else "",
        }
        if resp.auth and isinstance(resp.auth.get("metadata"), dict):
            resp.auth["metadata"] = _sorted(resp.auth["metadata"])
        if resp.inject and isinstance(resp.data, dict):
            top = dict(_sorted(resp.data))
            top.update(env)
            env = top
        return resp.status, hdr, go_json(env)


def _sorted(v):
    """Go encodes maps with sorted keys."""
    if isinstance(v, dict):
        return {k: _sorted(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [_sorted(x) for x in v]
    return v
