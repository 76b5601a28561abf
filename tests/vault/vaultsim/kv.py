"""KV secrets engines, version 1 (passthrough) and version 2 (versioned), per vault-api.md §2-3."""
import copy
import time

from .backend import Backend
from .util import (SYSTEM_DEFAULT_TTL, Resp, VaultError, bad_request, go_duration, parse_bool,
                   parse_duration, parse_int, rfc3339nano, unsupported_operation)


def _list_children(paths, prefix):
    keys = set()
    for p in paths:
        if p.startswith(prefix):
            rest = p[len(prefix):]
            if not rest:
                continue
            head, sep, _ = rest.partition("/")
            keys.add(head + "/" if sep else head)
    return sorted(keys)


class KVv1(Backend):
    def __init__(self, core, ns):
        super().__init__(core, ns)
        self.store = {}

    def existence(self, req):
        return req.sub in self.store

    def handle(self, req):
        sub = req.sub
        if req.op == "list":
            return Resp(data={"keys": _list_children(self.store, sub if sub != "/" else "")})
        if req.op == "read":
            val = self.store.get(sub)
            if val is None:
                return None
            ttl = SYSTEM_DEFAULT_TTL
            raw_ttl = val.get("ttl", val.get("lease"))
            if raw_ttl is not None:
                try:
                    ttl = parse_duration(raw_ttl)
                except VaultError:
                    pass
            return Resp(data=copy.deepcopy(val), lease_duration=ttl)
        if req.op == "update":
            if not req.data:
                raise bad_request("missing data fields")
            if not sub:
                raise bad_request("missing path")
            self.store[sub] = copy.deepcopy(req.data)
            return None
        if req.op == "delete":
            self.store.pop(sub, None)
            return None
        raise unsupported_operation()


_ROOTS = ("data", "metadata", "delete", "undelete", "destroy", "subkeys", "config")
_CLI_VERB = {"update": "put", "create": "put", "patch": "patch", "read": "get", "list": "list", "delete": "delete"}


def _merge_patch(target, patch):
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


class KVv2(Backend):
    def __init__(self, core, ns):
        super().__init__(core, ns)
        self.config = {"max_versions": 0, "cas_required": False, "delete_version_after": 0}
        self.keys = {}

    # ---- routing ---------------------------------------------------------------------

    def _split(self, req):
        root, sep, rest = req.sub.partition("/")
        if root not in _ROOTS or (root == "config" and sep):
            raise self._invalid(req, "Invalid path for a versioned K/V secrets engine. See the API docs for "
                                     "the appropriate API endpoints to use. If using the Vault CLI, use "
                                     "'vault kv %s' for this operation." % _CLI_VERB.get(req.op, "get"))
        if root != "config" and not rest and not (root == "metadata" and req.op == "list"):
            raise self._invalid(req, "Non-listing operations on the root of a K/V v2 mount are not supported.")
        return root, rest

    @staticmethod
    def _invalid(req, warning):
        exc = VaultError(404)
        exc.resp = Resp(data=None, warnings=[warning], status=404)
        return exc

    def existence(self, req):
        root, _, rest = req.sub.partition("/")
        if root in ("data", "metadata"):
            return rest in self.keys
        return None

    def handle(self, req):
        try:
            root, rest = self._split(req)
        except VaultError as e:
            return e.resp
        if root == "config":
            return self.do_config(req)
        if root == "data":
            return self.do_data(req, rest)
        if root == "metadata":
            return self.do_metadata(req, rest)
        if root == "subkeys":
            return self.do_subkeys(req, rest)
        return self.do_versions(req, root, rest)

    # ---- helpers ---------------------------------------------------------------------

    @staticmethod
    def _deleted(v):
        return v["deletion_time"] is not None and v["deletion_time"] <= time.time_ns()

    @staticmethod
    def _ts(ns):
        return rfc3339nano(ns) if ns is not None else ""

    def _vmeta(self, key, n):
        v = key["versions"][n]
        return {"created_time": self._ts(v["created"]), "custom_metadata": key["custom_metadata"] or None,
                "deletion_time": self._ts(v["deletion_time"]), "destroyed": v["destroyed"], "version": n}

    def _max_versions(self, key):
        return max(key["max_versions"], self.config["max_versions"]) or 10

    def _dva(self, key):
        vals = [x for x in (key["delete_version_after"], self.config["delete_version_after"]) if x > 0]
        return min(vals) if vals else 0

    @staticmethod
    def _new_key():
        now = time.time_ns()
        return {"current_version": 0, "oldest_version": 0, "created": now, "updated": now, "max_versions": 0,
                "cas_required": False, "delete_version_after": 0, "custom_metadata": None, "versions": {}}

    @staticmethod
    def _versions_param(req, lower_msg):
        vs = req.data.get("versions")
        if isinstance(vs, (int, str)) and not isinstance(vs, bool):
            vs = [vs] if not isinstance(vs, str) else [x for x in vs.split(",") if x.strip()]
        if not vs:
            raise bad_request("no version number provided" if lower_msg else "No version number provided")
        if not isinstance(vs, list):
            raise bad_request("error converting input for field \"versions\"")
        return [parse_int(v, "versions") for v in vs]

    # ---- config ----------------------------------------------------------------------

    def do_config(self, req):
        if req.op == "read":
            c = self.config
            return Resp(data={"cas_required": c["cas_required"], "max_versions": c["max_versions"],
                              "delete_version_after": go_duration(c["delete_version_after"])})
        if req.op != "update":
            raise unsupported_operation()
        d = req.data
        if "max_versions" in d:
            self.config["max_versions"] = parse_int(d["max_versions"], "max_versions")
        if "cas_required" in d:
            self.config["cas_required"] = parse_bool(d["cas_required"], "cas_required")
        if "delete_version_after" in d:
            self.config["delete_version_after"] = max(0, parse_duration(d["delete_version_after"],
                                                                        "delete_version_after"))
        return None

    # ---- data ------------------------------------------------------------------------

    def do_data(self, req, path):
        key = self.keys.get(path)
        if req.op == "read":
            if key is None:
                return None
            n = parse_int(req.query.get("version", "0") or "0", "version") or key["current_version"]
            if n not in key["versions"]:
                return None
            v = key["versions"][n]
            body = {"data": None if (v["destroyed"] or self._deleted(v)) else copy.deepcopy(v["data"]),
                    "metadata": self._vmeta(key, n)}
            return Resp(data=body, status=404 if body["data"] is None else 200)
        if req.op == "update":
            return self._write(req, path, key)
        if req.op == "patch":
            return self._patch(req, path, key)
        if req.op == "delete":
            if key and key["current_version"] in key["versions"]:
                v = key["versions"][key["current_version"]]
                if not v["destroyed"] and not self._deleted(v):
                    v["deletion_time"] = time.time_ns()
                    key["updated"] = time.time_ns()
            return None
        raise unsupported_operation()

    def _check_cas(self, req, key):
        opts = req.data.get("options")
        cas = None
        if isinstance(opts, dict) and "cas" in opts:
            try:
                cas = parse_int(opts["cas"], "cas")
            except VaultError:
                raise bad_request("error parsing check-and-set parameter")
        required = self.config["cas_required"] or (key is not None and key["cas_required"])
        if cas is None and required:
            raise bad_request("check-and-set parameter required for this call")
        current = key["current_version"] if key else 0
        if cas is not None and cas != current:
            raise bad_request("check-and-set parameter did not match the current version")
        return cas

    def _write(self, req, path, key):
        data = req.data.get("data")
        if data is None:
            raise bad_request("no data provided")
        if not isinstance(data, dict):
            raise bad_request("error converting input %s for field \"data\"" % (data,))
        self._check_cas(req, key)
        if key is None:
            key = self.keys[path] = self._new_key()
        return Resp(data=self._add_version(key, data))

    def _add_version(self, key, data):
        now = time.time_ns()
        n = key["current_version"] + 1
        dva = self._dva(key)
        key["versions"][n] = {"created": now, "deletion_time": now + dva * 1_000_000_000 if dva else None,
                              "destroyed": False, "data": copy.deepcopy(data)}
        key["current_version"] = n
        key["updated"] = now
        if key["oldest_version"] == 0:
            key["oldest_version"] = n
        while n - key["oldest_version"] >= self._max_versions(key):
            key["versions"].pop(key["oldest_version"], None)
            key["oldest_version"] += 1
        return self._vmeta(key, n)

    def _patch(self, req, path, key):
        if key is None or key["current_version"] not in key["versions"]:
            return Resp(status=404, raw=b"")
        v = key["versions"][key["current_version"]]
        if v["destroyed"] or self._deleted(v):
            return Resp(data=self._vmeta(key, key["current_version"]), status=404)
        data = req.data.get("data")
        if data is None:
            raise bad_request("no data provided")
        opts = req.data.get("options")
        if isinstance(opts, dict) and "cas" in opts:
            if parse_int(opts["cas"], "cas") <= 0:
                raise bad_request("check-and-set parameter must be greater than 0")
        self._check_cas(req, key)
        return Resp(data=self._add_version(key, _merge_patch(v["data"], data)))

    # ---- metadata --------------------------------------------------------------------

    def do_metadata(self, req, path):
        if req.op == "list":
            return Resp(data={"keys": _list_children(self.keys, path)})
        key = self.keys.get(path)
        if req.op == "read":
            if key is None:
                return None
            return Resp(data={
                "cas_required": key["cas_required"], "created_time": self._ts(key["created"]),
                "current_version": key["current_version"], "custom_metadata": key["custom_metadata"] or None,
                "delete_version_after": go_duration(key["delete_version_after"]),
                "max_versions": key["max_versions"], "oldest_version": key["oldest_version"],
                "updated_time": self._ts(key["updated"]),
                "versions": {str(n): {"created_time": self._ts(v["created"]),
                                      "deletion_time": self._ts(v["deletion_time"]),
                                      "destroyed": v["destroyed"]}
                             for n, v in sorted(key["versions"].items())}})
        if req.op == "delete":
            self.keys.pop(path, None)
            return None
        if req.op in ("update", "patch"):
            if req.op == "patch" and key is None:
                return Resp(status=404, raw=b"")
            if key is None:
                key = self.keys[path] = self._new_key()
            d = req.data
            if "max_versions" in d:
                key["max_versions"] = parse_int(d["max_versions"], "max_versions")
            if "cas_required" in d:
                key["cas_required"] = parse_bool(d["cas_required"], "cas_required")
            if "delete_version_after" in d:
                key["delete_version_after"] = max(0, parse_duration(d["delete_version_after"],
                                                                    "delete_version_after"))
            if "custom_metadata" in d:
                cm = d["custom_metadata"]
                if cm is not None and not isinstance(cm, dict):
                    raise bad_request("error converting input for field \"custom_metadata\"")
                if req.op == "patch":
                    cm = {k: v for k, v in _merge_patch(key["custom_metadata"] or {}, cm or {}).items()}
                key["custom_metadata"] = {str(k): str(v) for k, v in (cm or {}).items()} or None
            key["updated"] = time.time_ns()
            return None
        raise unsupported_operation()

    # ---- delete/undelete/destroy/subkeys ---------------------------------------------

    def do_versions(self, req, root, path):
        if req.op != "update":
            raise unsupported_operation()
        versions = self._versions_param(req, lower_msg=(root == "destroy"))
        key = self.keys.get(path)
        if key is None:
            return None
        now = time.time_ns()
        for n in versions:
            v = key["versions"].get(n)
            if v is None or v["destroyed"]:
                continue
            if root == "delete":
                if not self._deleted(v):
                    v["deletion_time"] = now
            elif root == "undelete":
                dva = self._dva(key)
                v["deletion_time"] = now + dva * 1_000_000_000 if dva else None
            else:
                v["destroyed"] = True
                v["data"] = None
        key["updated"] = now
        return None

    def do_subkeys(self, req, path):
        if req.op != "read":
            raise unsupported_operation()
        key = self.keys.get(path)
        if key is None:
            return None
        n = parse_int(req.query.get("version", "0") or "0", "version") or key["current_version"]
        depth = parse_int(req.query.get("depth", "0") or "0", "depth")
        if n not in key["versions"]:
            return None
        v = key["versions"][n]
        if v["destroyed"] or self._deleted(v):
            return Resp(data={"subkeys": None, "metadata": self._vmeta(key, n)}, status=404)

        def strip(obj, level):
            out = {}
            for k, val in obj.items():
                if isinstance(val, dict) and val and (depth == 0 or level < depth):
                    out[k] = strip(val, level + 1)
                else:
                    out[k] = None
            return out
        return Resp(data={"subkeys": strip(v["data"], 1), "metadata": self._vmeta(key, n)})
