#!/usr/bin/env python3
"""deploy/kubernetes/ works as shipped. Without a cluster, everything a cluster would do with
these manifests that decides whether kesc runs is done here:

* every document parses, every manifest belongs to a kustomization (what `kubectl apply -k`
  reads), and each variant has what it needs (Service, PodDisruptionBudget for N replicas,
  probes, resources);
* the container's argv — the image's ENTRYPOINT (deploy/Containerfile) followed by the
  manifest's args — is accepted by `kesc server --check-config` with the shipped ConfigMap,
  inside a directory tree laid out as the pod's volumes would be (the ConfigMap, test
  certificates for the Secrets, a service-account token, a volume for the PVC), with the
  environment the manifest sets (Secret values filled with test values; the Vault address
  pointed at the Vault test server);
* the server started with that argv answers both probes over HTTPS without a client
  certificate, as the kubelet sends them, and still refuses other APIs without one; on Vault,
  readiness fails while Vault is sealed and liveness does not;
* the pod passes the "restricted" Pod Security Standard, and the scale-out rule holds:
  Vault = a Deployment of N >= 2 replicas, fs = a StatefulSet of exactly 1 with its keys on a
  PersistentVolumeClaim.

Environment: KESC_BIN (the kesc binary), KESC_SOURCE_ROOT (the source tree).
"""
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest as dt  # noqa: E402

K8S = os.path.join(dt.SOURCE_ROOT, "deploy", "kubernetes")
CONTAINERFILE = os.path.join(dt.SOURCE_ROOT, "deploy", "Containerfile")
NAMESPACE = "minio"  # the namespace the kustomizations' instructions use
WAIT = 60            # Vault's health poll (ping: 10s) plus slack for a loaded machine

# Volume types the "restricted" Pod Security Standard allows.
PSS_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
               "persistentVolumeClaim", "projected", "secret"}


def variants():
    """Directories whose kustomization produces a kesc workload."""
    out = []
    for name in sorted(os.listdir(K8S)):
        d = os.path.join(K8S, name)
        if os.path.isfile(os.path.join(d, "kustomization.yaml")):
            if any(o.get("kind") in ("Deployment", "StatefulSet")
                   for o in dt.kustomization_objects(d)):
                out.append(name)
    return out


class Manifests(unittest.TestCase):
    def test_every_document_parses(self):
        files = 0
        for dirpath, _, names in os.walk(K8S):
            for n in names:
                self.assertTrue(n.endswith(".yaml"), "unexpected file %s/%s" % (dirpath, n))
                docs = dt.load_documents(os.path.join(dirpath, n))
                self.assertTrue(docs, n)
                for d in docs:
                    self.assertIn("apiVersion", d, n)
                    self.assertIn("kind", d, n)
                    if d["kind"] != "Kustomization":
                        self.assertTrue(d.get("metadata", {}).get("name"), n)
                files += 1
        self.assertGreaterEqual(files, 10)

    def test_every_manifest_is_in_a_kustomization(self):
        seen = set()
        for v in variants():
            seen.add(os.path.join(K8S, v, "kustomization.yaml"))
            dt.kustomization_objects(os.path.join(K8S, v), seen)
        every = {os.path.normpath(os.path.join(dp, n))
                 for dp, _, ns in os.walk(K8S) for n in ns}
        self.assertEqual(every - seen, set(), "files no kustomization applies")

    def test_the_three_layouts_exist(self):
        self.assertEqual(variants(), ["fs", "vault-approle", "vault-kubernetes"])


class Variant:
    """The checks every variant passes; subclasses name the directory."""
    name = None

    @classmethod
    def setUpClass(cls):
        cls.dir = os.path.join(K8S, cls.name)
        cls.objects = dt.kustomization_objects(cls.dir)
        by_kind = {}
        for o in cls.objects:
            by_kind.setdefault(o["kind"], []).append(o)
        cls.by_kind = by_kind
        (cls.workload,) = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
        cls.pod = cls.workload["spec"]["template"]["spec"]
        (cls.container,) = cls.pod["containers"]
        (cm,) = by_kind["ConfigMap"]
        cls.config_text = cm["data"]["config.yml"]
        cls.config = dt.yaml_module().safe_load(cls.config_text)
        cls.image = dt.Containerfile(CONTAINERFILE)

    # ---- static checks ----
    def test_restricted_pod_security_standard(self):
        pod, c = self.pod, self.container
        psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            self.assertFalse(pod.get(key, False), key)
        self.assertTrue(psc.get("runAsNonRoot") or csc.get("runAsNonRoot"))
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        self.assertIsInstance(uid, int)
        self.assertGreater(uid, 0)
        # The same numeric user the image declares (USER 10001:10001).
        self.assertEqual(str(uid), self.image.last("USER").split(":")[0])
        self.assertEqual((csc.get("seccompProfile") or psc.get("seccompProfile"))["type"],
                         "RuntimeDefault")
        self.assertIs(csc.get("allowPrivilegeEscalation"), False)
        self.assertIs(csc.get("readOnlyRootFilesystem"), True)
        self.assertFalse(csc.get("privileged", False))
        self.assertIn("ALL", csc["capabilities"]["drop"])
        self.assertLessEqual(set(csc["capabilities"].get("add", [])), {"NET_BIND_SERVICE"})
        for p in c.get("ports", []):
            self.assertNotIn("hostPort", p)
        for vol in pod.get("volumes", []):
            kinds = set(vol) - {"name"}
            self.assertLessEqual(kinds, PSS_VOLUMES, vol["name"])
        # Guaranteed QoS (requests == limits): out of swap even where mlock stops.
        res = c["resources"]
        self.assertEqual(res["requests"], res["limits"])
        self.assertTrue(res["limits"].get("cpu") and res["limits"].get("memory"))

    def test_probes_and_service(self):
        c = self.container
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        address_port = int(self.config["address"].rsplit(":", 1)[1])
        for probe in ("readinessProbe", "livenessProbe"):
            get = c[probe]["httpGet"]
            self.assertEqual(get["scheme"], "HTTPS", probe)
            port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
            self.assertEqual(port, address_port, probe)
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/v1/ready")
        labels = self.workload["spec"]["template"]["metadata"]["labels"]
        self.assertEqual(self.workload["spec"]["selector"]["matchLabels"].items() - labels.items(),
                         set())
        (svc,) = self.by_kind["Service"]
        self.assertLessEqual(svc["spec"]["selector"].items(), labels.items())
        for p in svc["spec"]["ports"]:
            self.assertIn(p["targetPort"], ports)

    def test_image_is_this_version(self):
        self.assertEqual(self.container["image"], "kesc:" + dt.project_version())

    def test_args_do_not_repeat_the_entrypoint(self):
        """The crash-loop of issue 11: args ["server", …] after ENTRYPOINT [kesc, server]."""
        entry = self.image.exec_form("ENTRYPOINT")
        args = self.container.get("args", [])
        self.assertNotIn("command", self.container)  # the image's entrypoint is used
        self.assertEqual((entry + args).count("server"), 1, entry + args)

    # ---- the container, run here ----
    def layout(self, root, vault=None, certs=None, secrets=None):
        """Writes the pod's volumes under root (container path P becomes root + P) and
        returns (argv, env) for the container, with paths and the Vault address adapted."""
        pod, c = self.pod, self.container
        claims = {t["metadata"]["name"] for t in self.workload["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounts = {}
        for m in c.get("volumeMounts", []):
            target = root + m["mountPath"]
            os.makedirs(target, exist_ok=True)
            mounts[m["mountPath"]] = target
            if m["name"] in claims:
                continue  # a fresh, empty PersistentVolume
            vol = volumes[m["name"]]
            self.assertIn("projected", vol, m["name"])
            for src in vol["projected"]["sources"]:
                if "configMap" in src:
                    (cm,) = [o for o in self.by_kind["ConfigMap"]
                             if o["metadata"]["name"] == src["configMap"]["name"]]
                    for item in src["configMap"]["items"]:
                        data = cm["data"][item["key"]]
                        for mp in sorted(self.mount_paths(), key=len, reverse=True):
                            data = data.replace(mp + "/", root + mp + "/")
                        with open(os.path.join(target, item["path"]), "w") as f:
                            f.write(data)
                elif "secret" in src:
                    for item in src["secret"]["items"]:
                        key = (src["secret"]["name"], item["key"])
                        self.assertIn(key, secrets, "no test value for Secret %s key %s" % key)
                        with open(os.path.join(target, item["path"]), "w") as f:
                            f.write(secrets[key])
                elif "serviceAccountToken" in src:
                    tok = src["serviceAccountToken"]
                    jwt = dt.service_account_jwt(pod["serviceAccountName"], NAMESPACE,
                                                 tok["audience"])
                    with open(os.path.join(target, tok["path"]), "w") as f:
                        f.write(jwt)
                else:
                    self.fail("unexpected projected source %r" % src)
        env = {}
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
                if e["name"] == "KESC_VAULT_ENDPOINT":
                    self.assertTrue(e["value"].startswith("https://"), e["value"])
                    env[e["name"]] = vault.url  # the one site-specific literal
            else:
                ref = e["valueFrom"]["secretKeyRef"]
                key = (ref["name"], ref["key"])
                self.assertIn(key, secrets, "no test value for Secret %s key %s" % key)
                env[e["name"]] = secrets[key]
        missing = dt.config_variables(self.config_text) - set(env)
        self.assertEqual(missing, set(), "config.yml names variables the pod does not set")
        argv = self.image.exec_form("ENTRYPOINT") + c.get("args", [])
        # argv[0] is where the image puts the binary (COPY --from=build … <dest>).
        copies = [r.split()[-1] for i, r in self.image.final() if i == "COPY"]
        self.assertIn(argv[0], copies)
        argv = [dt.KESC_BIN] + [a if not a.startswith("/") else self.map_path(a, root)
                                for a in argv[1:]]
        return argv, dt.clean_env(env)

    def mount_paths(self):
        return [m["mountPath"] for m in self.container.get("volumeMounts", [])]

    def map_path(self, path, root):
        for mp in sorted(self.mount_paths(), key=len, reverse=True):
            if path.startswith(mp + "/"):
                return root + path
        self.fail("%s is on no volume of the pod" % path)

    def test_container_runs(self):
        tmp = tempfile.mkdtemp(prefix="deploy-k8s-")
        self.addCleanup(shutil.rmtree, tmp, True)
        certs = dt.kesctest.Certs(os.path.join(tmp, "certs"))
        os.makedirs(certs.dir)
        certs.server("server")
        certs.server("vault")
        for name in ("admin", "minio"):
            certs.client(name)

        def pem(name):
            with open(certs.cert(name)) as f:
                return f.read()

        with open(certs.key("server")) as f:
            server_key = f.read()
        secrets = {("kesc-tls", "server.crt"): pem("server"),
                   ("kesc-tls", "server.key"): server_key,
                   ("kesc-tls", "vault-ca.pem"): pem("vault"),
                   ("kesc-identities", "admin"): certs.identity("admin"),
                   ("kesc-identities", "minio"): certs.identity("minio")}
        vault = None
        if "vault" in self.config["keystore"]:
            vault = dt.Vault(certs.cert("vault"), certs.key("vault"))
            self.addCleanup(vault.stop)
            vault.setup_kv2()
            auth = self.config["keystore"]["vault"]
            if "approle" in auth:
                rid, sid = vault.approle("kesc")
                secrets[("kesc-vault-approle", "role-id")] = rid
                secrets[("kesc-vault-approle", "secret-id")] = sid
            else:
                aud = [s["serviceAccountToken"]["audience"]
                       for v in self.pod["volumes"] if "projected" in v
                       for s in v["projected"]["sources"] if "serviceAccountToken" in s]
                vault.kubernetes(auth["kubernetes"]["role"], self.pod["serviceAccountName"],
                                 NAMESPACE, aud[0])
        root = os.path.join(tmp, "root")
        argv, env = self.layout(root, vault, certs, secrets)

        check = subprocess.run(argv + ["--check-config"], env=env, capture_output=True,
                               timeout=120)
        self.assertEqual(check.returncode, 0, check.stderr.decode())
        self.assertEqual(check.stdout.decode().strip(), "OK")

        with dt.Process(argv + ["--addr", "127.0.0.1:0"], env) as srv:
            for probe in ("readinessProbe", "livenessProbe"):
                path = self.container[probe]["httpGet"]["path"]
                status, body = dt.get_without_certificate(srv.port, path)
                self.assertEqual(status, 200, "%s %s: %s" % (probe, path, body))
            # Other APIs still need a certificate and a policy.
            status, _ = dt.get_without_certificate(srv.port, "/v1/status")
            self.assertNotEqual(status, 200)
            # MinIO's identity can use its default key (created at start from keys:).
            self.minio_round_trip(srv.port, certs)
            if vault:
                self.vault_outage(srv.port, vault)
            self.assertIn("Keystore: " + ("Hashicorp Vault" if vault else "filesystem"),
                          srv.stderr())

    def minio_round_trip(self, port, certs):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(certs.cert("server"))
        ctx.load_cert_chain(certs.cert("minio"), certs.key("minio"))
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
        try:
            conn.request("POST", "/v1/key/generate/minio-default-key", body=b'{"context":""}')
            r = conn.getresponse()
            dek = json.loads(r.read())
            self.assertEqual(r.status, 200, dek)
            conn.request("POST", "/v1/key/decrypt/minio-default-key",
                         body=json.dumps({"ciphertext": dek["ciphertext"], "context": ""}))
            r = conn.getresponse()
            out = json.loads(r.read())
            self.assertEqual(r.status, 200, out)
            self.assertEqual(out["plaintext"], dek["plaintext"])
        finally:
            conn.close()

    def vault_outage(self, port, vault):
        """Vault sealed: readiness fails (the pod leaves the Service), liveness does not (no
        restart storm); unsealed: ready again."""
        vault.seal(True)
        # The kubelet counts 200-399 as success; kesc answers 504 "key store is not reachable".
        self.assertTrue(self.wait_status(port, "/v1/ready", lambda s: s >= 400),
                        "still ready while Vault is sealed")
        self.assertEqual(dt.get_without_certificate(port, "/version")[0], 200)
        vault.seal(False)
        self.assertTrue(self.wait_status(port, "/v1/ready", lambda s: s == 200),
                        "not ready after Vault was unsealed")

    @staticmethod
    def wait_status(port, path, ok):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if ok(dt.get_without_certificate(port, path)[0]):
                return True
            time.sleep(0.5)
        return False


class VaultAppRole(Variant, unittest.TestCase):
    name = "vault-approle"

    def test_scale_out_shape(self):
        self.assertEqual(self.workload["kind"], "Deployment")
        self.assertGreaterEqual(self.workload["spec"]["replicas"], 2)
        self.assertIn("vault", self.config["keystore"])
        (pdb,) = self.by_kind["PodDisruptionBudget"]
        labels = self.workload["spec"]["template"]["metadata"]["labels"]
        self.assertLessEqual(pdb["spec"]["selector"]["matchLabels"].items(), labels.items())
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
        self.assertEqual(self.workload["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0)


class VaultKubernetes(VaultAppRole):
    name = "vault-kubernetes"

    def test_token_is_projected_for_vault_only(self):
        self.assertFalse(self.pod.get("automountServiceAccountToken", True))
        jwt = self.config["keystore"]["vault"]["kubernetes"]["jwt"]
        self.assertIn(os.path.dirname(jwt), self.mount_paths())


class FilesystemSingleNode(Variant, unittest.TestCase):
    name = "fs"

    def test_single_node_shape(self):
        """The fs keystore is one machine's directory: one replica, on a volume that stays."""
        self.assertEqual(self.workload["kind"], "StatefulSet")
        self.assertEqual(self.workload["spec"]["replicas"], 1)
        self.assertNotIn("PodDisruptionBudget", self.by_kind)
        path = self.config["keystore"]["fs"]["path"]
        (claim,) = self.workload["spec"]["volumeClaimTemplates"]
        mounts = [m for m in self.container["volumeMounts"]
                  if m["name"] == claim["metadata"]["name"]]
        self.assertEqual(len(mounts), 1)
        self.assertTrue(path.startswith(mounts[0]["mountPath"] + "/"), path)
        self.assertEqual(self.workload["spec"]["persistentVolumeClaimRetentionPolicy"],
                         {"whenDeleted": "Retain", "whenScaled": "Retain"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
