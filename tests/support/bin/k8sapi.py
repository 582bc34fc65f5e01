#!/usr/bin/python3
"""A local stand-in for the Kubernetes API server, for the gateway-api and kserve adapters' tests.

It follows the conventions those adapters rely on (Kubernetes API concepts, "Resource versions", "PATCH", "Status"):
  GET   /apis/GROUP/VERSION/namespaces/NS/PLURAL/NAME          200 the object, 404 Status
  PATCH the same, Content-Type application/merge-patch+json    RFC 7386 merge; 415 for other patch types
  - metadata.resourceVersion is bumped on every write (also the simulated controller's status writes);
  - a patch carrying metadata.resourceVersion that is not the current one gets 409 Conflict (reason Conflict);
  - metadata.generation is bumped when spec changes; the main resource ignores changes to status (status
    subresource);
  - Authorization: Bearer TOKEN: none or a wrong one is 401 (reason Unauthorized); --readonly-token may get but
    not patch: 403 (reason Forbidden);
  every error is a v1 Status object {kind: Status, status: Failure, message, reason, code}.
A simulated controller writes status after --status-delay-ms: HTTPRoute status.parents[] (one per parentRef,
conditions Accepted and ResolvedRefs with observedGeneration), InferenceService status.components.predictor.traffic
(as KServe's knative reconciler and PropagateStatus split between latestRolledoutRevision and the latest revision)
and status.observedGeneration.

Test controls (no auth), JSON bodies:
  POST /_fake/config  {"status_delay_ms": N, "controller": bool, "conditions": {"Accepted": {"status": "False",
                       "reason": R, "message": M}}, "fail": {"code": C, "count": N, "method": "PATCH"|"GET"|"*",
                       "message": M}, "conflicts": N (the next N patches find that another writer changed the
                       object first), "hang_ms": N (every API request waits this long)}
  PUT  /_fake/objects  an object: stored (resourceVersion set)
  GET  /_fake/log      the requests seen: [{method, path, content_type, auth, code}]
  GET  /_fake/get/apis/...  an object as stored
  GET  /_fake/revisions/apis/...  an InferenceService's predictor revisions: {NAME-predictor-0000N: the
                       spec.predictor it was made from, without canaryTrafficPercent}; a change of that template
                       (a new storageUri) makes the next revision, which becomes latestCreatedRevision and is ready
--data-plane ARGV_JSON: the simulated controllers program a data plane as a gateway controller does before they
report on a generation (the e2e tests' HAProxy through policies/gateways/haproxy-socat; see program()).
Prints "k8sapi listening on 127.0.0.1:PORT" when ready. TLS with --tls-cert/--tls-key (https); --client-ca FILE
verifies client certificates against that CA, and a request that presented a valid one is authenticated as its
subject's CN (as the API server's x509 authenticator does; no token needed); --require-client-cert refuses the TLS
handshake without one. --token-file FILE: the accepted token is read from FILE at each request (to test rotation).
Runs under Debian's /usr/bin/python3, not `env python3`: a pyenv shim first in PATH took 11 s to start under load.
"""
import argparse
import copy
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH_RE = re.compile(r"^/apis/([a-z0-9.-]+)/([a-z0-9]+)/namespaces/([a-z0-9-]+)/([a-z]+)/([a-z0-9.-]+)$")
KINDS = {("gateway.networking.k8s.io", "httproutes"): "HTTPRoute",
         ("serving.kserve.io", "inferenceservices"): "InferenceService"}
PLURAL = {v: k for k, v in KINDS.items()}
BODY_MAX = 1 << 20


def merge_patch(target, patch):
    """RFC 7386: objects merge key by key, null deletes, everything else (arrays included) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


class State:
    def __init__(self, args):
        self.lock = threading.RLock()
        self.objects = {}
        self.rv = 1000
        self.token = args.token
        self.token_file = args.token_file
        self.client_ca = bool(args.client_ca)
        self.readonly_token = args.readonly_token
        self.cfg = {"status_delay_ms": args.status_delay_ms, "controller": True, "conditions": {}, "fail": None,
                    "conflicts": 0, "hang_ms": 0}
        self.log = []
        self.timers = []
        self.revisions = {}  # InferenceService key -> {"n": last number, "created": name, "revs": {name: template}}
        self.data_plane = json.loads(args.data_plane) if args.data_plane else None

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def put(self, obj):
        group = obj["apiVersion"].split("/")[0]
        plural = PLURAL[obj["kind"]][1]
        md = obj.setdefault("metadata", {})
        md.setdefault("namespace", "default")
        md["resourceVersion"] = self.next_rv()
        md.setdefault("generation", 1)
        md.setdefault("uid", "00000000-0000-4000-8000-%012d" % (len(self.objects) + 1))
        key = (group, plural, md["namespace"], md["name"])
        self.objects[key] = obj
        if obj["kind"] == "InferenceService":
            created = obj.get("status", {}).get("components", {}).get("predictor", {}).get("latestCreatedRevision")
            if created:  # the revisions before it are unknown; it was made from the spec as given
                m = re.search(r"-(\d+)$", created)
                self.revisions[key] = {"n": int(m.group(1)) if m else 1, "created": created,
                                       "revs": {created: predictor_template(obj)}}
            else:
                self.revisions.pop(key, None)
                self.new_revision(key, obj)
        self.schedule(key)

    def new_revision(self, key, obj):
        """Knative makes a revision of the predictor's pod template whenever it changes (not for
        canaryTrafficPercent, which only moves traffic): NAME-predictor-0000N."""
        r = self.revisions.setdefault(key, {"n": 0, "created": "", "revs": {}})
        r["n"] += 1
        r["created"] = "%s-predictor-%05d" % (obj["metadata"]["name"], r["n"])
        r["revs"][r["created"]] = predictor_template(obj)

    def schedule(self, key):
        if not self.cfg["controller"]:
            return
        delay = self.cfg["status_delay_ms"] / 1000.0
        t = threading.Timer(delay, self.reconcile, args=(key,))
        t.daemon = True
        self.timers = [x for x in self.timers if x.is_alive()] + [t]
        t.start()

    def reconcile(self, key):
        with self.lock:
            obj = self.objects.get(key)
            if obj is None or not self.cfg["controller"]:
                return
            gen = obj["metadata"].get("generation", 1)
            obj = copy.deepcopy(obj)
            if obj["kind"] == "HTTPRoute":
                reconcile_route(obj, gen, self.cfg["conditions"])
            else:
                reconcile_isvc(obj, gen, self.revisions.get(key, {}).get("created"))
            if self.data_plane and not self.program(key, obj):
                self.schedule(key)  # not programmed: report nothing new, try again
                return
            obj["metadata"]["resourceVersion"] = self.next_rv()
            self.objects[key] = obj

    def program(self, key, obj):
        """The data plane a gateway controller programs before it reports on a generation: runs --data-plane with
        "blue PCT green PCT" appended (the slots' shares: an HTTPRoute's first rule's backendRefs by name, or an
        InferenceService's status traffic by the slot its revision's storageUri ends with). True when it exit 0."""
        shares = {"blue": 0.0, "green": 0.0}
        if obj["kind"] == "HTTPRoute":
            for ref in obj["spec"]["rules"][0]["backendRefs"]:
                if ref.get("name") in shares:
                    shares[ref["name"]] += ref.get("weight", 1)
        else:
            revs = self.revisions.get(key, {}).get("revs", {})
            for t in obj["status"]["components"]["predictor"].get("traffic", []):
                uri = revs.get(t.get("revisionName"), {}).get("model", {}).get("storageUri", "")
                slot = uri.rsplit("/", 1)[-1]
                if slot in shares:
                    shares[slot] += t.get("percent", 0)
        total = shares["blue"] + shares["green"]
        argv = list(self.data_plane)
        for slot in ("blue", "green"):
            argv += [slot, "%g" % (100.0 * shares[slot] / total if total else 0)]
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=10)
        line = "%s %s -> %s" % (time.strftime("%H:%M:%S"), " ".join(argv[-4:]), r.returncode)
        print(line + (" " + r.stderr.decode(errors="replace").strip() if r.returncode else ""), file=sys.stderr,
              flush=True)
        return r.returncode == 0


def cond(ctype, gen, override, ok_reason):
    c = {"type": ctype, "status": "True", "reason": ok_reason, "message": "", "observedGeneration": gen,
         "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if ctype in override:
        c.update(override[ctype])
    return c


def reconcile_route(obj, gen, override):
    parents = []
    for ref in obj.get("spec", {}).get("parentRefs", []):
        parents.append({"parentRef": ref, "controllerName": "example.net/gateway-controller",
                        "conditions": [cond("Accepted", gen, override, "Accepted"),
                                       cond("ResolvedRefs", gen, override, "ResolvedRefs")]})
    obj.setdefault("status", {})["parents"] = parents


def predictor_template(obj):
    """What a predictor revision is made from: spec.predictor without canaryTrafficPercent."""
    pred = dict(obj.get("spec", {}).get("predictor", {}))
    pred.pop("canaryTrafficPercent", None)
    return pred


def reconcile_isvc(obj, gen, created):
    """KServe's knative ksvc reconciler (traffic targets) and PropagateStatus (rolled-out revisions), in one go.
    The revision created last (`created`) is ready at once. Knative's status.traffic names every target's
    revision: the "latest" target (latestRevision true, resolved to the latest ready revision) carries
    canaryTrafficPercent, the "prev" target (latestRolledoutRevision) the rest (ksvc_reconciler.go)."""
    pred = obj.get("spec", {}).get("predictor", {})
    comp = obj.setdefault("status", {}).setdefault("components", {}).setdefault("predictor", {})
    if created:
        comp["latestCreatedRevision"] = created
        comp["latestReadyRevision"] = created
    latest = comp.get("latestReadyRevision", "")
    for _ in range(2):  # a rollback of latestRolledoutRevision shows in the next reconcile's traffic
        rolled = comp.get("latestRolledoutRevision", "")
        pct = pred.get("canaryTrafficPercent")
        if pct is not None and rolled:
            traffic = [{"revisionName": latest, "latestRevision": True, "percent": pct}]
            if pct < 100:
                traffic.append({"revisionName": rolled, "latestRevision": False, "percent": 100 - pct,
                                "tag": "prev"})
        else:
            traffic = [{"revisionName": latest, "latestRevision": True, "percent": 100}]
        comp["traffic"] = traffic
        by_rev = {}
        for t in traffic:
            by_rev[t["revisionName"]] = by_rev.get(t["revisionName"], 0) + t["percent"]
        again = False
        for t in traffic:
            if t["revisionName"] == latest and t["latestRevision"]:
                if rolled != latest:
                    if t["percent"] == 100:
                        comp["previousRolledoutRevision"] = rolled
                        comp["latestRolledoutRevision"] = latest
                elif latest == comp.get("latestCreatedRevision") and t["percent"] < 100 \
                        and by_rev.get(latest) == 100 and comp.get("previousRolledoutRevision"):
                    comp["latestRolledoutRevision"] = comp["previousRolledoutRevision"]
                    again = True
        if not again:
            break
    obj["status"]["observedGeneration"] = gen


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k8sapi"

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        # headers and body go out in two writes: without this, Nagle and the client's delayed ACK add 40 ms to
        # every answer on a kept-alive connection (Go's net/http, the real API server's, sets TCP_NODELAY too)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        st = self.server.state
        with st.lock:
            if not self.path.startswith("/_fake/"):
                st.log.append({"method": self.command, "path": self.path,
                               "content_type": self.headers.get("Content-Type", ""),
                               "auth": self.headers.get("Authorization", ""), "code": code})
                del st.log[:-1000]

    def read_body(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        if n < 0 or n > BODY_MAX:
            return None
        return self.rfile.read(n)

    def do_GET(self):
        st = self.server.state
        if self.path == "/_fake/log":
            with st.lock:
                return self.send_json(200, list(st.log))
        if self.path.startswith("/_fake/revisions/"):  # an InferenceService's revisions: {name: template}
            m = PATH_RE.match(self.path[len("/_fake/revisions"):])
            with st.lock:
                r = st.revisions.get((m.group(1), m.group(4), m.group(3), m.group(5))) if m else None
                return self.send_json(200 if r else 404, r["revs"] if r else status_obj(404, "NotFound", "not found"))
        if self.path.startswith("/_fake/get/"):  # an object as stored, without auth (for tests' checks)
            m = PATH_RE.match(self.path[len("/_fake/get"):])
            with st.lock:
                obj = st.objects.get((m.group(1), m.group(4), m.group(3), m.group(5))) if m else None
                return self.send_json(200 if obj else 404, obj or status_obj(404, "NotFound", "not found"))
        self.api("GET", None)

    def do_PUT(self):
        body = self.read_body()
        if self.path != "/_fake/objects" or body is None:
            return self.send_json(404, status_obj(404, "NotFound", "the server could not find the requested resource"))
        st = self.server.state
        with st.lock:
            st.put(json.loads(body))
        self.send_json(200, {})

    def do_POST(self):
        body = self.read_body()
        if self.path != "/_fake/config" or body is None:
            return self.send_json(405, status_obj(405, "MethodNotAllowed", "the server does not allow this method on "
                                                  "the requested resource"))
        st = self.server.state
        with st.lock:
            st.cfg.update(json.loads(body))
        self.send_json(200, st.cfg)

    def do_PATCH(self):
        body = self.read_body()
        if body is None:
            return self.send_json(413, status_obj(413, "RequestEntityTooLarge", "request entity too large"))
        self.api("PATCH", body)

    def client_cn(self):
        """The CN of a verified client certificate, or None (plain http, or none presented)."""
        getpeercert = getattr(self.connection, "getpeercert", None)
        cert = getpeercert() if getpeercert else None
        for rdn in (cert or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

    def authenticated(self, tok):
        st = self.server.state
        token = st.token
        if st.token_file:
            try:
                with open(st.token_file) as fh:
                    token = fh.read().strip()
            except OSError:
                token = None
        if not token and not st.client_ca:
            return True  # no authentication configured
        if st.client_ca and self.client_cn():
            return True
        return bool(tok) and tok in (token, st.readonly_token)

    def api(self, method, body):
        st = self.server.state
        hang = st.cfg["hang_ms"]
        if hang:
            time.sleep(min(hang, 60000) / 1000.0)
        m = PATH_RE.match(self.path)
        auth = self.headers.get("Authorization", "")
        tok = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        if not self.authenticated(tok):
            return self.send_json(401, status_obj(401, "Unauthorized", "Unauthorized"))
        with st.lock:
            fail = st.cfg.get("fail")
            if fail and fail.get("count", 0) > 0 and fail.get("method", "*") in ("*", method):
                fail["count"] -= 1
                code = fail.get("code", 500)
                return self.send_json(code, status_obj(code, fail.get("reason", "InternalError"),
                                                       fail.get("message", "Internal error occurred: injected")))
        if not m or (m.group(1), m.group(4)) not in KINDS:
            return self.send_json(404, status_obj(404, "NotFound", "the server could not find the requested resource"))
        group, version, ns, plural, name = m.groups()
        res = "%s.%s" % (plural, group)
        if method == "PATCH" and st.token and tok == st.readonly_token:
            return self.send_json(403, status_obj(
                403, "Forbidden", '%s "%s" is forbidden: User "system:serviceaccount:%s:viewer" cannot patch '
                'resource "%s" in API group "%s" in the namespace "%s"' % (res, name, ns, plural, group, ns),
                {"name": name, "group": group, "kind": plural}))
        key = (group, plural, ns, name)
        with st.lock:
            obj = st.objects.get(key)
            if obj is None:
                return self.send_json(404, status_obj(404, "NotFound", '%s "%s" not found' % (res, name),
                                                      {"name": name, "group": group, "kind": plural}))
            if method == "GET":
                return self.send_json(200, obj)
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
            if ctype != "application/merge-patch+json":
                return self.send_json(415, status_obj(415, "UnsupportedMediaType",
                                                      'the body of the request was in an unknown format - accepted '
                                                      'media types include: application/merge-patch+json'))
            try:
                patch = json.loads(body)
            except ValueError as e:
                return self.send_json(400, status_obj(400, "BadRequest", "error decoding patch: %s" % e))
            if not isinstance(patch, dict):
                return self.send_json(400, status_obj(400, "BadRequest", "patch must be a JSON object"))
            if st.cfg["conflicts"] > 0:  # another writer got there first
                st.cfg["conflicts"] -= 1
                obj["metadata"].setdefault("annotations", {})["example.com/other-writer"] = str(st.rv)
                obj["metadata"]["resourceVersion"] = st.next_rv()
            want_rv = patch.get("metadata", {}).get("resourceVersion") if isinstance(patch.get("metadata"), dict) \
                else None
            if want_rv is not None and want_rv != obj["metadata"]["resourceVersion"]:
                return self.send_json(409, status_obj(
                    409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                    'please apply your changes to the latest version and try again' % (res, name),
                    {"name": name, "group": group, "kind": plural}))
            new = merge_patch(copy.deepcopy(obj), patch)
            new["status"] = obj.get("status")  # the status subresource is written by controllers only
            if new["status"] is None:
                del new["status"]
            for k in ("name", "namespace", "uid", "generation"):
                if k in obj["metadata"]:
                    new["metadata"][k] = obj["metadata"][k]
            if new.get("spec") != obj.get("spec"):
                new["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
            new["metadata"]["resourceVersion"] = st.next_rv()
            st.objects[key] = new
            if new["kind"] == "InferenceService" and predictor_template(new) != predictor_template(obj):
                st.new_revision(key, new)
            if new["metadata"]["generation"] != obj["metadata"].get("generation", 1):
                st.schedule(key)
            return self.send_json(200, new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", default="")
    ap.add_argument("--readonly-token", default="")
    ap.add_argument("--status-delay-ms", type=int, default=50)
    ap.add_argument("--fixtures", action="append", default=[], help="a JSON object file or a directory of them")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--client-ca", help="verify client certificates against this CA; a valid one authenticates")
    ap.add_argument("--require-client-cert", action="store_true", help="refuse the handshake without one")
    ap.add_argument("--token-file", help="the accepted token, read at each request")
    ap.add_argument("--data-plane", help="a JSON argv the simulated controllers run with 'blue PCT green PCT' "
                    "appended before they report on a generation (the e2e's HAProxy through haproxy-socat)")
    args = ap.parse_args()
    st = State(args)
    for f in args.fixtures:
        files = [os.path.join(f, n) for n in sorted(os.listdir(f)) if n.endswith(".json")] if os.path.isdir(f) else [f]
        for p in files:
            with open(p) as fh:
                st.put(json.load(fh))
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.state = st
    srv.handle_error = lambda request, client_address: None  # a client that gave up (timeout tests) is no news
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            ctx.load_verify_locations(args.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED if args.require_client_cert else ssl.CERT_OPTIONAL
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("k8sapi listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
