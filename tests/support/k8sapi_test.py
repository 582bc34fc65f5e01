#!/usr/bin/env python3
"""Pins the Kubernetes API conventions that tests/support/bin/k8sapi.py follows and the gateway-api and kserve
adapters rely on: GET, merge-patch PATCH (RFC 7386: objects merge, null deletes, arrays replace), resourceVersion
bumped on every write and checked as a precondition (409 Conflict), generation bumped on spec changes only, status
ignored on the main resource, 401/403/404/415 as v1 Status objects, the simulated controllers' status."""
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROUTE = "/apis/gateway.networking.k8s.io/v1/namespaces/models/httproutes/foo-route"
ISVC = "/apis/serving.kserve.io/v1beta1/namespaces/models/inferenceservices/my-model"


class K8sApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "bin", "k8sapi.py"), "--token", "s3cret",
                                     "--readonly-token", "viewer", "--status-delay-ms", "20",
                                     "--fixtures", os.path.join(HERE, "fixtures", "k8s")], stdout=subprocess.PIPE)
        line = cls.proc.stdout.readline().decode()
        cls.base = "http://" + line.split()[-1]

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(5)

    def req(self, method, path, body=None, token="s3cret", ctype="application/merge-patch+json"):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.base + path, data=data, method=method)
        if token:
            r.add_header("Authorization", "Bearer " + token)
        if data is not None:
            r.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(r, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def wait_status(self, path, pred):
        for _ in range(100):
            code, obj = self.req("GET", path)
            if pred(obj):
                return obj
            time.sleep(0.02)
        self.fail("status never matched: %s" % json.dumps(obj.get("status")))

    def assertStatus(self, code, obj, want, reason):
        self.assertEqual(code, want)
        self.assertEqual(obj["kind"], "Status")
        self.assertEqual(obj["apiVersion"], "v1")
        self.assertEqual(obj["status"], "Failure")
        self.assertEqual(obj["code"], want)
        self.assertEqual(obj["reason"], reason)
        self.assertTrue(obj["message"])

    def test_get_fixture(self):
        code, obj = self.req("GET", ROUTE)
        self.assertEqual(code, 200)
        self.assertEqual(obj["kind"], "HTTPRoute")
        self.assertEqual([b["weight"] for b in obj["spec"]["rules"][1]["backendRefs"]], [90, 10])
        self.assertTrue(obj["metadata"]["resourceVersion"])

    def test_merge_patch_rfc7386(self):
        code, before = self.req("GET", ROUTE)
        rules = before["spec"]["rules"]
        rules[1]["backendRefs"][0]["weight"] = 70
        rules[1]["backendRefs"][1]["weight"] = 30
        code, after = self.req("PATCH", ROUTE, {"metadata": {"labels": {"gateway": None, "team": "ml"}},
                                               "spec": {"rules": rules}})
        self.assertEqual(code, 200)
        self.assertEqual(after["metadata"]["labels"], {"team": "ml"})  # null deletes, objects merge
        self.assertEqual(after["spec"]["rules"], rules)                  # arrays replace
        self.assertEqual(after["spec"]["hostnames"], before["spec"]["hostnames"])
        self.assertNotEqual(after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"])
        self.assertEqual(after["metadata"]["generation"], before["metadata"]["generation"] + 1)
        # a metadata-only change is a write (new resourceVersion) but not a new generation
        code, again = self.req("PATCH", ROUTE, {"metadata": {"labels": {"team": "ml2"}}})
        self.assertNotEqual(again["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"])
        self.assertEqual(again["metadata"]["generation"], after["metadata"]["generation"])

    def test_stale_resource_version_conflicts(self):
        # The simulated controller may still be writing the status of an earlier test's change between our GET and
        # PATCH (a new resourceVersion, as on a real cluster): read again until our write is the next one.
        for _ in range(50):
            code, obj = self.req("GET", ROUTE)
            rv = obj["metadata"]["resourceVersion"]
            code, _ = self.req("PATCH", ROUTE, {"metadata": {"resourceVersion": rv, "labels": {"x": "1"}}})
            if code != 409:
                break
            time.sleep(0.05)
        self.assertEqual(code, 200)
        code, st = self.req("PATCH", ROUTE, {"metadata": {"resourceVersion": rv, "labels": {"x": "2"}}})
        self.assertStatus(code, st, 409, "Conflict")
        self.assertIn("the object has been modified", st["message"])
        code, obj = self.req("GET", ROUTE)
        self.assertEqual(obj["metadata"]["labels"]["x"], "1")

    def test_status_is_not_written_through_the_main_resource(self):
        code, obj = self.req("PATCH", ISVC, {"status": {"observedGeneration": 999}})
        self.assertEqual(code, 200)
        self.assertNotEqual(obj.get("status", {}).get("observedGeneration"), 999)

    def test_auth_and_errors(self):
        code, st = self.req("GET", ROUTE, token=None)
        self.assertStatus(code, st, 401, "Unauthorized")
        code, st = self.req("GET", ROUTE, token="wrong")
        self.assertStatus(code, st, 401, "Unauthorized")
        code, obj = self.req("GET", ROUTE, token="viewer")
        self.assertEqual(code, 200)
        code, st = self.req("PATCH", ROUTE, {"metadata": {"labels": {"y": "1"}}}, token="viewer")
        self.assertStatus(code, st, 403, "Forbidden")
        self.assertIn('cannot patch resource "httproutes"', st["message"])
        code, st = self.req("GET", ROUTE.replace("foo-route", "nope"))
        self.assertStatus(code, st, 404, "NotFound")
        self.assertEqual(st["message"], 'httproutes.gateway.networking.k8s.io "nope" not found')
        code, st = self.req("PATCH", ROUTE, {"metadata": {}}, ctype="application/json-patch+json")
        self.assertStatus(code, st, 415, "UnsupportedMediaType")

    def test_route_controller_conditions(self):
        code, obj = self.req("PATCH", ROUTE, {"metadata": {"annotations": {"t": "1"}}, "spec": {"hostnames": ["a.example.com"]}})
        gen = obj["metadata"]["generation"]
        obj = self.wait_status(ROUTE, lambda o: o.get("status", {}).get("parents") and all(
            c["observedGeneration"] == gen for c in o["status"]["parents"][0]["conditions"]))
        conds = {c["type"]: c for c in obj["status"]["parents"][0]["conditions"]}
        self.assertEqual(conds["Accepted"]["status"], "True")
        self.assertEqual(conds["ResolvedRefs"]["status"], "True")
        self.req("POST", "/_fake/config", {"conditions": {"ResolvedRefs": {"status": "False", "reason": "BackendNotFound",
                                                                          "message": "service foo-v2 not found"}}})
        try:
            code, obj = self.req("PATCH", ROUTE, {"spec": {"hostnames": ["b.example.com"]}})
            gen = obj["metadata"]["generation"]
            obj = self.wait_status(ROUTE, lambda o: o["status"]["parents"][0]["conditions"][1]["observedGeneration"] == gen)
            self.assertEqual(obj["status"]["parents"][0]["conditions"][1]["status"], "False")
        finally:
            self.req("POST", "/_fake/config", {"conditions": {}})

    def test_kserve_traffic_split(self):
        for pct, want in ((25, [("my-model-predictor-00002", True, 25), ("my-model-predictor-00001", False, 75)]),
                          (0, [("my-model-predictor-00002", True, 0), ("my-model-predictor-00001", False, 100)])):
            code, obj = self.req("PATCH", ISVC, {"spec": {"predictor": {"canaryTrafficPercent": pct}}})
            self.assertEqual(code, 200)
            gen = obj["metadata"]["generation"]
            obj = self.wait_status(ISVC, lambda o: o.get("status", {}).get("observedGeneration") == gen)
            got = [(t["revisionName"], t["latestRevision"], t["percent"])
                   for t in obj["status"]["components"]["predictor"]["traffic"]]
            self.assertEqual(got, want)

    def test_kserve_traffic_split_new_revision(self):
        """A new predictor (another storageUri) is a new revision, created last and split against the one rolled
        out; canaryTrafficPercent alone makes none. Runs after test_kserve_traffic_split (names sort)."""
        code, obj = self.req("PATCH", ISVC, {"spec": {"predictor": {"canaryTrafficPercent": 100}}})
        gen = obj["metadata"]["generation"]
        obj = self.wait_status(ISVC, lambda o: o.get("status", {}).get("observedGeneration") == gen)
        comp = obj["status"]["components"]["predictor"]
        self.assertEqual(comp["latestRolledoutRevision"], "my-model-predictor-00002")
        code, obj = self.req("PATCH", ISVC, {"spec": {"predictor": {"canaryTrafficPercent": 0, "tensorflow": {
            "storageUri": "gs://kfserving-examples/models/tensorflow/flowers-3"}}}})
        gen = obj["metadata"]["generation"]
        obj = self.wait_status(ISVC, lambda o: o.get("status", {}).get("observedGeneration") == gen)
        comp = obj["status"]["components"]["predictor"]
        self.assertEqual(comp["latestCreatedRevision"], "my-model-predictor-00003")
        self.assertEqual(comp["latestReadyRevision"], "my-model-predictor-00003")
        self.assertEqual([(t["revisionName"], t["latestRevision"], t["percent"]) for t in comp["traffic"]],
                         [("my-model-predictor-00003", True, 0), ("my-model-predictor-00002", False, 100)])
        code, revs = self.req("GET", "/_fake/revisions" + ISVC, token=None)
        self.assertEqual(code, 200)
        self.assertEqual(revs["my-model-predictor-00003"]["tensorflow"]["storageUri"],
                         "gs://kfserving-examples/models/tensorflow/flowers-3")
        self.assertNotIn("canaryTrafficPercent", revs["my-model-predictor-00003"])
        code, obj = self.req("PATCH", ISVC, {"spec": {"predictor": {"canaryTrafficPercent": 5}}})
        gen = obj["metadata"]["generation"]
        obj = self.wait_status(ISVC, lambda o: o.get("status", {}).get("observedGeneration") == gen)
        self.assertEqual(obj["status"]["components"]["predictor"]["latestCreatedRevision"], "my-model-predictor-00003")


if __name__ == "__main__":
    unittest.main(verbosity=2)
