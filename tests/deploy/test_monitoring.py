#!/usr/bin/env python3
"""deploy/monitoring/: the Grafana dashboard and the Prometheus alert rules use only metrics
kesc exports. A real server is driven through 2xx, 4xx and 5xx answers and scraped
(/v1/metrics) by a Prometheus client certificate under the monitoring policy of
man/kesc-deploy.7; every metric name in every dashboard query and alert expression must be one
of its families (or Prometheus's own "up"), every label a selector or aggregation names must
be one kesc puts on those metrics (or "job"/"instance", which Prometheus adds), and the
relations the rules rely on must hold: the histogram's _count counts every answer, and the
key-store alert's status codes are the ones server/api_errors.c uses for key-store failures.

Environment: KESC_BIN (the kesc binary), KESC_SOURCE_ROOT (the source tree).
"""
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest as dt  # noqa: E402
import test_guide  # noqa: E402  (reads blocks of man/kesc-deploy.7)

MON = os.path.join(dt.SOURCE_ROOT, "deploy", "monitoring")
PROMETHEUS_SERIES = {"up"}          # made by Prometheus for every scrape target
PROMETHEUS_LABELS = {"job", "instance"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "inf", "nan"}


def expressions():
    """(where, PromQL) of every dashboard query and alert rule."""
    out = []
    with open(os.path.join(MON, "kesc-dashboard.json")) as f:
        dash = json.load(f)
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append(("panel %r" % p["title"], t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"]
            m = re.fullmatch(r"label_values\((.*), (\w+)\)", q)
            out.append(("variable %s" % v["name"], m.group(1)))
    rules = dt.load_documents(os.path.join(MON, "kesc-alerts.yml"))[0]
    for g in rules["groups"]:
        for r in g["rules"]:
            out.append(("alert %s" % r["alert"], r["expr"]))
    return out


def strip_strings(expr):
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)


def metric_names(expr):
    e = strip_strings(expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", e):
        if e[m.end():].lstrip().startswith("(") or m.group(0).lower() in KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def selector_labels(expr):
    """{metric: {label, ...}} from metric{label="…", …} selectors."""
    out = {}
    for m in re.finditer(r"([A-Za-z_:][\w:]*)\{([^}]*)\}", expr):
        labels = set(re.findall(r"(\w+)\s*(?:=~|!=|!~|=)", strip_strings(m.group(2))))
        out.setdefault(m.group(1), set()).update(labels)
    return out


def grouping_labels(expr):
    labels = set()
    for m in re.finditer(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels.update(l.strip() for l in m.group(1).split(",") if l.strip())
    return labels


def parse_exposition(text):
    """({series name: {label names}}, {family: type}, [(name, labels dict, value)])."""
    families, series, samples = {}, {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            families[name] = kind
            if kind == "histogram":
                series.setdefault(name + "_bucket", set()).add("le")
                series.setdefault(name + "_sum", set())
                series.setdefault(name + "_count", set())
            else:
                series.setdefault(name, set())
        elif line and not line.startswith("#"):
            m = re.match(r"([\w:]+)(?:\{(.*)\})? (\S+)$", line)
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            series.setdefault(m.group(1), set()).update(labels)
            samples.append((m.group(1), labels, float(m.group(3))))
    return series, families, samples


class Monitoring(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The monitoring policy of man 7 kesc-deploy, for a Prometheus client certificate.
        page_policy = dt.yaml_module().safe_load(test_guide.literal_after(
            "serves Prometheus metrics to a client whose policy allows it"))["policy"]
        srv = dt.kesctest.Server(start=False)
        try:
            srv.certs.client("prometheus")
            srv.env["PROMETHEUS_IDENTITY"] = srv.certs.identity("prometheus")
            policies = srv.config_dict()["policy"]
            policies.update(page_policy)
            srv.extra = {"policy": policies}
            srv.write_config()
            srv.start()
            assert srv.request("POST", "/v1/key/create/mon-key").status == 200
            assert srv.request("POST", "/v1/key/generate/mon-key", {"context": ""}).status == 200
            assert srv.request("GET", "/v1/key/describe/missing").status == 404
            assert srv.request("POST", "/v1/key/create/other", cert="limited").status == 403
            # The key store fails to read a key (a directory where its file should be): 502.
            os.mkdir(os.path.join(srv.dir, "keys", "unreadable"))
            cls.failed = srv.request("GET", "/v1/key/describe/unreadable").status
            r = srv.request("GET", "/v1/metrics", cert="prometheus")
            assert r.status == 200, r
            cls.prometheus_denied = srv.request("GET", "/v1/status", cert="prometheus").status
            cls.text = r.body.decode()
        finally:
            srv.cleanup()
        cls.series, cls.families, cls.samples = parse_exposition(cls.text)

    def test_prometheus_may_scrape_and_nothing_else(self):
        self.assertIn("kes_http_response_time_count", self.series)
        self.assertEqual(self.prometheus_denied, 403)

    def test_the_server_failed_as_intended(self):
        self.assertEqual(self.failed, 502)
        self.assertIn(("kes_http_request_failure", {"code": "502"}, 1.0), self.samples)

    def test_every_metric_used_is_exported(self):
        exported = set(self.series) | PROMETHEUS_SERIES
        used = 0
        for where, expr in expressions():
            names = metric_names(expr)
            self.assertTrue(names, "%s: no metric in %r" % (where, expr))
            self.assertEqual(names - exported, set(), "%s: %s" % (where, expr))
            used += len(names)
        self.assertGreater(used, 20)

    def test_every_label_used_exists(self):
        for where, expr in expressions():
            for metric, labels in selector_labels(expr).items():
                have = self.series.get(metric, set()) | PROMETHEUS_LABELS
                self.assertEqual(labels - have, set(), "%s: %s{%s}" % (where, metric, labels))
            all_labels = set().union(*self.series.values()) | PROMETHEUS_LABELS
            self.assertEqual(grouping_labels(expr) - all_labels, set(), where)

    def test_response_time_count_counts_every_answer(self):
        """KescHighErrorRate divides 5xx by kes_http_response_time_count: all answers."""
        by_code = sum(v for n, _, v in self.samples
                      if n in ("kes_http_request_success", "kes_http_request_error",
                               "kes_http_request_failure"))
        count = [v for n, _, v in self.samples if n == "kes_http_response_time_count"]
        # The scrape itself is counted once it is answered, after the text was made.
        self.assertEqual(count, [by_code])

    def test_keystore_alert_codes_are_the_keystore_errors(self):
        with open(os.path.join(dt.SOURCE_ROOT, "server", "api_errors.c")) as f:
            src = f.read()
        codes = set(re.findall(r"\[API_ERR_(?:STORE_UNREACHABLE|STORE_UNAVAILABLE|READ_KEY)\]"
                               r" = \{(\d+),", src))
        self.assertEqual(codes, {"502", "504"})
        rules = dt.load_documents(os.path.join(MON, "kesc-alerts.yml"))[0]["groups"][0]["rules"]
        (rule,) = [r for r in rules if r["alert"] == "KescKeystoreUnreachable"]
        self.assertIn('code=~"502|504"', rule["expr"])

    def test_rules_are_complete(self):
        rules = dt.load_documents(os.path.join(MON, "kesc-alerts.yml"))[0]["groups"][0]["rules"]
        names = [r["alert"] for r in rules]
        self.assertEqual(len(names), len(set(names)))
        for r in rules:
            self.assertIn(r["labels"]["severity"], ("critical", "warning"), r["alert"])
            self.assertTrue(r["annotations"]["summary"] and r["annotations"]["description"])
            self.assertRegex(r["for"], r"^\d+[smh]$")
        self.assertLessEqual({"KescDown", "KescKeystoreUnreachable", "KescHighErrorRate"},
                             set(names))

    def test_dashboard_shape(self):
        with open(os.path.join(MON, "kesc-dashboard.json")) as f:
            dash = json.load(f)
        ids = [p["id"] for p in dash["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(dash["templating"]["list"][0]["type"], "datasource")
        for p in dash["panels"]:
            self.assertIn("gridPos", p)
            if p["type"] != "row":
                self.assertEqual(p["datasource"]["uid"], "${datasource}")
                self.assertTrue(p["targets"])
                for t in p["targets"]:
                    self.assertIn('job=~"$job"', t["expr"], p["title"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
