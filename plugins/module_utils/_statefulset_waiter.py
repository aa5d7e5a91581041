# -*- coding: utf-8 -*-
# Copyright: (c) 2025, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Wait until a StatefulSet's ordinals are Ready, driven by watches.

One list then one watch per stream (the StatefulSet, its pods; the claims and their events only
when a pod waits on unbound claims), each watch asked to last until the deadline, so the number of
API requests does not grow with the length of the wait. A dropped watch resumes from the last
resourceVersion it saw, with backoff, until the deadline; a watch that answers 410 Gone lists again.
The readiness rules are the pure functions of ``_ordinal``; this file only keeps the state they
look at up to date and decides when to return or fail.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import random
import threading
import time
import traceback

try:
    import queue
except ImportError:  # pragma: no cover - Python 2 is not supported by the collection
    import Queue as queue  # noqa: N813

from ansible_collections.kubess.stateful.plugins.module_utils._ordinal import (
    HINTS,
    describe_pod,
    dig,
    events_for,
    first_unready_ordinal,
    last_events,
    ordinal_ready,
    pod_claim_names,
    pod_ordinal,
    pod_ready,
    pod_revision,
    pod_unscheduled,
    pods_by_ordinal,
    stuck_reason,
    unready_ordinals,
    wait_target,
)

try:
    from kubernetes.dynamic.exceptions import DynamicApiError

    HAS_K8S = True
    K8S_IMP_ERR = None
except ImportError:
    HAS_K8S = False
    K8S_IMP_ERR = traceback.format_exc()

    class DynamicApiError(Exception):
        status = None
        reason = None
        body = None

try:
    from urllib3.exceptions import HTTPError as _Urllib3Error
except ImportError:

    class _Urllib3Error(Exception):
        pass


try:
    from http.client import HTTPException as _HttpLibError
except ImportError:  # pragma: no cover

    class _HttpLibError(Exception):
        pass


# HTTP statuses worth retrying: the API server restarts, is overloaded, or its watch cache lags.
TRANSIENT_STATUSES = frozenset([0, 408, 429, 500, 502, 503, 504])
CONNECT_TIMEOUT = 10
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 2.0
EVENT_LINES = 5


class StatefulSetWaitError(Exception):
    """What the module reports with fail_json: a message, plus result fields (ordinal, pod, reason, ...)."""

    def __init__(self, msg, **result):
        super(StatefulSetWaitError, self).__init__(msg)
        self.msg = msg
        self.result = result


class ApiFailure(Exception):
    """The API refused a request for good (403, 404, 400, ...)."""

    def __init__(self, status, message):
        super(ApiFailure, self).__init__("HTTP {0}: {1}".format(status, message))
        self.status = status
        self.message = message


class TransientApiError(Exception):
    """The API could not be reached or answered with a retryable error."""


class _Gone(Exception):
    """The resourceVersion to watch from is too old: list again."""


def _api_error_message(err):
    try:
        body = json.loads(err.body) if err.body else {}
        if isinstance(body, dict) and body.get("message"):
            return body["message"]
    except (TypeError, ValueError):
        pass
    return "{0}".format(err.reason or err.body or "")


def classify_api_error(err):
    """The waiter's exception for an exception raised by a request (kubernetes client or urllib3)."""
    if isinstance(err, DynamicApiError) or (hasattr(err, "status") and hasattr(err, "reason") and hasattr(err, "body")):
        status = getattr(err, "status", None)
        if status == 410:
            return _Gone(_api_error_message(err))
        if status is None or status in TRANSIENT_STATUSES:
            return TransientApiError("HTTP {0}: {1}".format(status, _api_error_message(err)))
        return ApiFailure(status, _api_error_message(err))
    if isinstance(err, (_Urllib3Error, _HttpLibError, OSError)):
        return TransientApiError("{0}: {1}".format(type(err).__name__, err))
    return None


class KubeApi(object):
    """GET requests (lists, watches) over the dynamic client kubernetes.core builds, counted."""

    def __init__(self, dynamic_client):
        self._client = dynamic_client
        self._lock = threading.Lock()
        self.requests = 0

    def _get(self, path, query, timeout):
        # The dynamic client hands back the urllib3 response unread: a list reads it whole, a watch streams it.
        with self._lock:
            self.requests += 1
        params = dict(
            query_params=[(k, v) for k, v in query if v is not None],
            serialize=False,
            _request_timeout=timeout,
        )
        try:
            return self._client.request("GET", path, **params)
        except Exception as err:  # pylint: disable=broad-except
            mapped = classify_api_error(err)
            if mapped is None:
                raise
            raise mapped

    def list(self, path, query=(), timeout=30):
        """The list at ``path`` as a dict (items, metadata.resourceVersion)."""
        resp = self._get(path, list(query), (CONNECT_TIMEOUT, timeout))
        try:
            data = resp.data
        except Exception as err:  # pylint: disable=broad-except
            mapped = classify_api_error(err)
            if mapped is None:
                raise
            raise mapped
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)

    def watch(self, path, query, resource_version, timeout_seconds, read_timeout):
        """Open a watch from ``resource_version``: the raw streaming response (see ``iter_watch_events``)."""
        query = list(query) + [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", int(timeout_seconds)),
        ]
        return self._get(path, query, (CONNECT_TIMEOUT, read_timeout))


def iter_watch_events(resp):
    """The decoded events of a watch response, one per line, until the server closes the stream."""
    buf = b""
    try:
        for chunk in resp.stream(amt=None, decode_content=False):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line.decode("utf-8"))
    except Exception as err:  # pylint: disable=broad-except
        mapped = classify_api_error(err)
        if mapped is None:
            raise
        raise mapped
    if buf.strip():
        yield json.loads(buf.decode("utf-8"))


def _close(resp):
    if resp is None:
        return
    for name in ("shutdown", "close", "release_conn"):
        func = getattr(resp, name, None)
        if func is None:
            continue
        try:
            func()
        except Exception:  # pylint: disable=broad-except
            pass


def _strip(obj):
    """Drop what the waiter never reads (managedFields can be most of a pod) to keep memory flat."""
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            meta.pop("managedFields", None)
    return obj


class _Stream(threading.Thread):
    """List then watch one collection until the deadline, posting (t, key, type, payload) to the waiter.

    Types: SYNC (payload: every item, after a list), ADDED / MODIFIED / DELETED (payload: the object),
    DISCONNECTED (payload: the error; the stream retries with backoff), FATAL (payload: the exception).
    """

    def __init__(self, waiter, key, path, query):
        super(_Stream, self).__init__(name="watch-" + key)
        self.daemon = True
        self.waiter = waiter
        self.key = key
        self.path = path
        self.query = list(query)
        self.halt = threading.Event()
        self._resp = None
        self.down = False  # the last attempt to reach the API server failed

    def stop(self):
        self.halt.set()
        _close(self._resp)

    def _stopped(self):
        return self.halt.is_set() or self.waiter.stop.is_set()

    def _post(self, typ, payload):
        if not self.halt.is_set():
            self.waiter.events.put((self.waiter.clock(), self, typ, payload))

    def run(self):
        try:
            self._run()
        except Exception as err:  # pylint: disable=broad-except
            self._post("FATAL", err)

    def _run(self):
        w = self.waiter
        rv = None
        backoff = BACKOFF_FIRST
        listed_once = False
        while not self._stopped():
            remaining = w.remaining()
            if remaining <= 0:
                return
            opened = w.clock()
            seen = 0
            try:
                if rv is None:
                    if listed_once:
                        w.stats["relists"] += 1
                    body = w.api.list(self.path, self.query, timeout=max(1.0, remaining))
                    listed_once = True
                    self.down = False
                    rv = dig(body, "metadata", "resourceVersion")
                    self._post("SYNC", [_strip(item) for item in body.get("items") or []])
                    seen += 1
                    remaining = w.remaining()
                    if remaining <= 0:
                        return
                self._resp = w.api.watch(self.path, self.query, rv, remaining + 1, remaining + 30)
                self.down = False
                for event in iter_watch_events(self._resp):
                    if self._stopped():
                        return
                    typ = event.get("type")
                    obj = event.get("object") or {}
                    if typ == "ERROR":
                        code = obj.get("code")
                        if code == 410:
                            raise _Gone(obj.get("message"))
                        if code in TRANSIENT_STATUSES:
                            raise TransientApiError("watch error {0}: {1}".format(code, obj.get("message")))
                        raise ApiFailure(code, obj.get("message"))
                    rv = dig(obj, "metadata", "resourceVersion") or rv
                    seen += 1
                    if typ != "BOOKMARK":
                        self._post(typ, _strip(obj))
                # The server ended the watch (its timeout, or it is shutting down): watch again from rv.
                if not seen and w.clock() - opened < 1.0 and w.remaining() > 2:
                    raise TransientApiError("the watch closed at once")
                backoff = BACKOFF_FIRST
            except _Gone:
                rv = None
            except TransientApiError as err:
                if self._stopped():
                    return
                self.down = True
                w.stats["reconnects"] += 1
                self._post("DISCONNECTED", str(err))
                delay = min(backoff, max(0.0, w.remaining())) * (0.8 + 0.4 * random.random())
                backoff = min(backoff * 2, BACKOFF_MAX)
                self.halt.wait(delay)
            finally:
                resp, self._resp = self._resp, None
                _close(resp)


def _clause(text):
    """``text`` without its closing period, to be followed by one."""
    return (text or "").strip().rstrip(".")


def _ns_path(group_version, namespace, plural):
    if group_version == "v1":
        return "/api/v1/namespaces/{0}/{1}".format(namespace, plural)
    return "/apis/{0}/namespaces/{1}/{2}".format(group_version, namespace, plural)


class StatefulSetWaiter(object):
    """Waits until the StatefulSet ``name`` in ``namespace`` has every ordinal Ready, or fails saying why not."""

    def __init__(
        self,
        api,
        name,
        namespace,
        replicas=None,
        timeout=300,
        wait_for_set=False,
        wait_for_update=True,
        fail_fast=True,
        clock=time.monotonic,
        started=None,
    ):
        self.api = api
        self.name = name
        self.namespace = namespace
        self.replicas = replicas
        self.timeout = float(timeout)
        self.wait_for_set = wait_for_set
        self.wait_for_update = wait_for_update
        self.fail_fast = fail_fast
        self.clock = clock
        self.started = clock() if started is None else started
        self.deadline = self.started + self.timeout
        self.stop = threading.Event()
        self.events = queue.Queue()
        self.stats = {"reconnects": 0, "relists": 0}
        self.sts = None
        self.sts_seen = False
        self.pods = {}  # name -> pod
        self.ordinal_of = {}  # pod name -> ordinal
        self.ready_since = {}  # pod name -> (uid, time it was seen becoming Ready)
        self.pods_synced = False
        self.pvcs = {}  # claim name -> claim
        self.claim_events = {}  # event uid -> event
        self.streams = {}
        self.selector = None
        self.last_disconnect = None
        self._target = None
        self._ok = set()  # ordinals in range that count as Ready under the current target
        self._dirty = set()  # pod names changed since the last evaluation
        self._claims_changed = False

    # ------------------------------------------------------------------ helpers

    def remaining(self):
        return self.deadline - self.clock()

    def elapsed(self, t=None):
        return round((self.clock() if t is None else t) - self.started, 3)

    @property
    def ref(self):
        return "{0}/{1}".format(self.namespace, self.name)

    def _start(self, key, path, query):
        old = self.streams.pop(key, None)
        if old is not None:
            old.stop()
        stream = _Stream(self, key, path, query)
        self.streams[key] = stream
        stream.start()

    def _shutdown(self):
        self.stop.set()
        for stream in self.streams.values():
            stream.stop()

    def _sts_path(self):
        return _ns_path("apps/v1", self.namespace, "statefulsets")

    # ------------------------------------------------------------------ state updates

    def _set_target(self):
        target = wait_target(self.sts, self.replicas, self.wait_for_update) if self.sts else None
        if target != self._target:
            self._target = target
            self._recount()

    def _counts(self, name):
        n = self.ordinal_of.get(name)
        t = self._target
        if n is None or t is None or not t["start"] <= n < t["start"] + t["replicas"]:
            return False
        return ordinal_ready(self.pods[name], t["update_revision"], t["partition"], ordinal=n, start=t["start"])

    def _recount(self):
        self._ok = set(self.ordinal_of[name] for name in self.pods if self._counts(name))
        self._dirty.update(self.pods)

    def _put_pod(self, pod, t):
        name = dig(pod, "metadata", "name")
        n = pod_ordinal(pod, self.name)
        old_n = self.ordinal_of.pop(name, None)
        if old_n is not None:
            self._ok.discard(old_n)
        if n is None:
            self.pods.pop(name, None)
            self.ready_since.pop(name, None)
            return
        self.pods[name] = pod
        self.ordinal_of[name] = n
        uid = dig(pod, "metadata", "uid")
        if pod_ready(pod):
            since = self.ready_since.get(name)
            if since is None or since[0] != uid:
                self.ready_since[name] = (uid, t)
        else:
            self.ready_since.pop(name, None)
        if self._counts(name):
            self._ok.add(n)
        self._dirty.add(name)

    def _drop_pod(self, name):
        n = self.ordinal_of.pop(name, None)
        if n is not None:
            self._ok.discard(n)
        self.pods.pop(name, None)
        self.ready_since.pop(name, None)

    def _on_sts(self, typ, payload):
        if typ == "SYNC":
            found = [s for s in payload if dig(s, "metadata", "name") == self.name]
            self.sts = found[0] if found else None
        elif typ in ("ADDED", "MODIFIED"):
            self.sts = payload
        elif typ == "DELETED":
            self.sts = None
        if self.sts is not None:
            self.sts_seen = True
        elif not self.wait_for_set:
            if self.sts_seen:
                raise StatefulSetWaitError(
                    "StatefulSet {0} was deleted while waiting for its ordinals. "
                    "Set wait_for_set: true to wait for it to be created again.".format(self.ref),
                    **self.result_fields(reason="StatefulSetDeleted")
                )
            raise StatefulSetWaitError(self._missing_message(), **self.result_fields(reason="StatefulSetNotFound"))
        self._set_target()
        if self._target is not None and self._target["selector"] != self.selector:
            if not self._target["selector"]:
                raise StatefulSetWaitError(
                    "StatefulSet {0} has an empty spec.selector: its pods cannot be found.".format(self.ref),
                    **self.result_fields(reason="InvalidSelector")
                )
            self.selector = self._target["selector"]
            for name in list(self.pods):
                self._drop_pod(name)
            self.pods_synced = False
            self._start(
                "pods",
                _ns_path("v1", self.namespace, "pods"),
                [("labelSelector", self.selector)],
            )

    def _on_pods(self, typ, payload, t):
        if typ == "SYNC":
            names = set()
            for pod in payload:
                names.add(dig(pod, "metadata", "name"))
                self._put_pod(pod, t)
            for name in list(self.pods):
                if name not in names:
                    self._drop_pod(name)
            self.pods_synced = True
        elif typ in ("ADDED", "MODIFIED"):
            self._put_pod(payload, t)
        elif typ == "DELETED":
            self._drop_pod(dig(payload, "metadata", "name"))

    def _on_claims(self, key, typ, payload):
        store = self.pvcs if key == "pvcs" else self.claim_events
        ident = (lambda o: dig(o, "metadata", "name")) if key == "pvcs" else (lambda o: dig(o, "metadata", "uid"))
        if typ == "SYNC":
            store.clear()
            for obj in payload:
                store[ident(obj)] = obj
        elif typ in ("ADDED", "MODIFIED"):
            store[ident(payload)] = payload
        elif typ == "DELETED":
            store.pop(ident(payload), None)
        self._claims_changed = True

    def _apply(self, item):
        t, stream, typ, payload = item
        if self.streams.get(stream.key) is not stream:
            return  # from a stream replaced since
        if typ == "FATAL":
            if isinstance(payload, ApiFailure):
                raise StatefulSetWaitError(self._api_failure_message(stream.key, payload), **self.result_fields(reason="ApiError"))
            raise StatefulSetWaitError(
                "Watching the {0} of StatefulSet {1} failed: {2}: {3}".format(stream.key, self.ref, type(payload).__name__, payload),
                **self.result_fields(reason="WatchFailed")
            )
        if typ == "DISCONNECTED":
            self.last_disconnect = payload
            return
        if stream.key == "sts":
            self._on_sts(typ, payload)
        elif stream.key == "pods":
            self._on_pods(typ, payload, t)
        else:
            self._on_claims(stream.key, typ, payload)

    # ------------------------------------------------------------------ decisions

    def _done(self):
        t = self._target
        return (
            t is not None
            and t["observed"]
            and self.pods_synced
            and len(self._ok) == t["replicas"]
        )

    def _claim_context(self):
        return list(self.pvcs.values()), list(self.claim_events.values())

    def _find_stuck(self):
        """(ordinal, pod, reason, message) for the lowest stuck ordinal among the pods to look at, or None."""
        t = self._target
        if t is None or not self.pods_synced:
            return None
        names = set(self.pods) if self._claims_changed else self._dirty
        candidates = []
        for name in names:
            n = self.ordinal_of.get(name)
            if n is None or n in self._ok or not t["start"] <= n < t["start"] + t["replicas"]:
                continue
            candidates.append((n, name))
        if not candidates:
            return None
        pvcs, events = self._claim_context()
        for n, name in sorted(candidates):
            pod = self.pods[name]
            if pod_claim_names(pod) and pod_unscheduled(pod) and "pvcs" not in self.streams:
                self._watch_claims()
            found = stuck_reason(pod, pvcs, events)
            if found:
                return (n, pod, found[0], found[1])
        return None

    def _watch_claims(self):
        """Watch the namespace's claims and their events: only once a pod waits on claims to be bound."""
        self._start("pvcs", _ns_path("v1", self.namespace, "persistentvolumeclaims"), [])
        self._start(
            "pvc-events",
            _ns_path("v1", self.namespace, "events"),
            [("fieldSelector", "involvedObject.kind=PersistentVolumeClaim")],
        )

    def _evaluate(self):
        if self._done():
            return True
        if self.fail_fast:
            stuck = self._find_stuck()
            if stuck:
                raise self._stuck_error(*stuck)
        else:
            # Claims are still worth watching for the timeout message.
            for name in self._dirty:
                pod = self.pods.get(name)
                if pod and pod_claim_names(pod) and pod_unscheduled(pod) and "pvcs" not in self.streams:
                    self._watch_claims()
                    break
        self._dirty = set()
        self._claims_changed = False
        return False

    # ------------------------------------------------------------------ entry points

    def wait(self):
        """Block until every ordinal is Ready; return the result dict, or raise StatefulSetWaitError."""
        try:
            self._start("sts", self._sts_path(), [("fieldSelector", "metadata.name=" + self.name)])
            while True:
                remaining = self.remaining()
                if remaining <= 0:
                    raise self._timeout_error()
                try:
                    item = self.events.get(timeout=remaining)
                except queue.Empty:
                    continue
                batch = [item]
                while True:
                    try:
                        batch.append(self.events.get_nowait())
                    except queue.Empty:
                        break
                for item in batch:
                    self._apply(item)
                if self._evaluate():
                    return self.result_fields()
        finally:
            self._shutdown()

    def check(self):
        """One look, no waiting (check mode): what the wait would wait for."""
        sts = self._list_once(self._sts_path(), [("fieldSelector", "metadata.name=" + self.name)])
        found = [s for s in sts.get("items") or [] if dig(s, "metadata", "name") == self.name]
        if not found:
            result = self.result_fields()
            result.update(
                exists=False,
                ready=False,
                would_wait_for=[],
                msg="StatefulSet {0} does not exist (yet): a real run would {1}.".format(
                    self.ref,
                    "wait up to {0}s for it to appear".format(int(self.timeout))
                    if self.wait_for_set
                    else "fail unless an earlier task creates it",
                ),
            )
            return result
        self.sts = found[0]
        self._set_target()
        pods = self._list_once(_ns_path("v1", self.namespace, "pods"), [("labelSelector", self._target["selector"])])
        self._on_pods("SYNC", [_strip(p) for p in pods.get("items") or []], self.clock())
        t = self._target
        by_ord = pods_by_ordinal(self.pods.values(), self.name)
        waiting = unready_ordinals(by_ord, t["replicas"], t["update_revision"], t["partition"], t["start"])
        stuck = []
        for n in waiting:
            found_reason = stuck_reason(by_ord.get(n))
            if found_reason:
                stuck.append({"ordinal": n, "pod": dig(by_ord[n], "metadata", "name"), "reason": found_reason[0], "message": found_reason[1]})
        result = self.result_fields()
        result.update(
            exists=True,
            ready=not waiting and t["observed"],
            would_wait_for=waiting,
            stuck=stuck,
            msg="StatefulSet {0}: {1}".format(
                self.ref,
                "every ordinal is Ready, a real run would return at once"
                if not waiting and t["observed"]
                else "a real run would wait up to {0}s for ordinals {1}".format(int(self.timeout), waiting or "(controller catching up)"),
            ),
        )
        return result

    def _list_once(self, path, query):
        try:
            return self.api.list(path, query, timeout=max(1.0, self.remaining()))
        except ApiFailure as err:
            raise StatefulSetWaitError(self._api_failure_message(path, err), **self.result_fields(reason="ApiError"))
        except TransientApiError as err:
            raise StatefulSetWaitError(
                "Could not reach the Kubernetes API to read StatefulSet {0}: {1}. "
                "Check that the API server is up and the kubeconfig/context points at it.".format(self.ref, err),
                **self.result_fields(reason="ApiUnavailable")
            )

    # ------------------------------------------------------------------ results and messages

    def _ordinal_entries(self):
        t = self._target
        if t is None:
            return []
        by_ord = {}
        for name, n in self.ordinal_of.items():
            by_ord[n] = self.pods[name]
        out = []
        for n in range(t["start"], t["start"] + t["replicas"]):
            pod = by_ord.get(n)
            ready = ordinal_ready(pod, t["update_revision"], t["partition"], ordinal=n, start=t["start"])
            name = dig(pod, "metadata", "name") if pod else "{0}-{1}".format(self.name, n)
            since = self.ready_since.get(name) if pod else None
            out.append(
                {
                    "ordinal": n,
                    "pod": name,
                    "ready": ready,
                    "ready_seconds": self.elapsed(since[1]) if ready and since else None,
                    "uid": dig(pod, "metadata", "uid"),
                    "revision": pod_revision(pod) if pod else None,
                    "phase": dig(pod, "status", "phase"),
                    "node": dig(pod, "spec", "nodeName"),
                }
            )
        return out

    def result_fields(self, **extra):
        t = self._target or {}
        result = {
            "changed": False,
            "name": self.name,
            "namespace": self.namespace,
            "replicas": t.get("replicas", self.replicas),
            "ordinals": self._ordinal_entries(),
            "duration": self.elapsed(),
            "update_revision": t.get("update_revision"),
            "partition": t.get("partition"),
            "pod_management_policy": t.get("policy"),
            "api_requests": self.api.requests,
            "reconnects": self.stats["reconnects"],
            "relists": self.stats["relists"],
        }
        result.update(extra)
        return result

    def _missing_message(self):
        return (
            "StatefulSet {0} not found. Check the name and namespace, create it first (for example with "
            "kubernetes.core.k8s), or set wait_for_set: true to wait until it appears.".format(self.ref)
        )

    def _api_failure_message(self, what, err):
        hint = ""
        if err.status in (401, 403):
            hint = (
                " The credentials need get, list and watch on statefulsets (apps), pods, "
                "persistentvolumeclaims and events in namespace {0}.".format(self.namespace)
            )
        return "Reading {0} for StatefulSet {1} failed: HTTP {2}: {3}.{4}".format(what, self.ref, err.status, err.message, hint)

    def _events_of(self, kind, name, uid=None):
        """The last events about one object, as lines (one list request; best effort)."""
        if any(s.down for s in self.streams.values()):
            return ["(events of {0} {1} not read: the API server is unreachable)".format(kind, name)]
        try:
            body = self.api.list(
                _ns_path("v1", self.namespace, "events"),
                [("fieldSelector", "involvedObject.kind={0},involvedObject.name={1}".format(kind, name))],
                timeout=10,
            )
        except (ApiFailure, TransientApiError) as err:
            return ["(events of {0} {1} could not be read: {2})".format(kind, name, err)]
        return last_events(events_for(body.get("items") or [], kind, name, uid), EVENT_LINES)

    def _stuck_error(self, n, pod, reason, message):
        name = dig(pod, "metadata", "name")
        events = self._events_of("Pod", name, dig(pod, "metadata", "uid"))
        if reason.startswith("PersistentVolumeClaim"):
            for claim in pod_claim_names(pod):
                events += last_events(events_for(list(self.claim_events.values()), "PersistentVolumeClaim", claim), EVENT_LINES)
        state = describe_pod(pod)
        hint = HINTS.get(reason, "kubectl describe the pod")
        msg = (
            "StatefulSet {ref}: ordinal {n} (pod {pod}) cannot become Ready: {reason}: {message}. "
            "Pod state: {state}. Last events (newest last): {events}. "
            "Try: {hint}; kubectl -n {ns} describe pod {pod}."
        ).format(
            ref=self.ref, n=n, pod=name, reason=reason, message=_clause(message), state=_clause(state),
            events=_clause(" | ".join(events)) if events else "none", hint=hint, ns=self.namespace,
        )
        return StatefulSetWaitError(
            msg,
            **self.result_fields(ordinal=n, pod=name, reason=reason, message=message, pod_state=state, events=events, hint=hint)
        )

    def _timeout_error(self):
        base = "Timed out after {0}s waiting for StatefulSet {1}".format(int(self.timeout), self.ref)
        disconnected = ""
        if self.last_disconnect and any(s.down for s in self.streams.values()):
            disconnected = " The API server was unreachable at the end: {0}.".format(self.last_disconnect)
        if self._target is None:
            if not self.sts_seen and self.wait_for_set:
                msg = "{0}: it did not appear. Check that the task that creates it ran, and the name and namespace.{1}".format(base, disconnected)
            else:
                msg = "{0}: the StatefulSet could not be read.{1}".format(base, disconnected)
            return StatefulSetWaitError(msg, **self.result_fields(reason="Timeout"))
        t = self._target
        if not self.pods_synced:
            msg = "{0}: its pods (selector {1}) could not be listed.{2}".format(base, self.selector, disconnected)
            return StatefulSetWaitError(msg, **self.result_fields(reason="Timeout"))
        by_ord = pods_by_ordinal(self.pods.values(), self.name)
        n = first_unready_ordinal(by_ord, t["replicas"], t["update_revision"], t["partition"], t["start"])
        ready_count = t["replicas"] - len(unready_ordinals(by_ord, t["replicas"], t["update_revision"], t["partition"], t["start"]))
        if n is None:
            gen = dig(self.sts, "metadata", "generation")
            observed = dig(self.sts, "status", "observedGeneration")
            msg = (
                "{0}: every ordinal is Ready but the StatefulSet controller has not observed generation {1} "
                "(status.observedGeneration {2}). Check that kube-controller-manager runs.{3}"
            ).format(base, gen, observed, disconnected)
            return StatefulSetWaitError(msg, **self.result_fields(reason="Timeout"))
        pod = by_ord.get(n)
        name = dig(pod, "metadata", "name") if pod else "{0}-{1}".format(self.name, n)
        if pod is None:
            state = "the pod does not exist"
            why = (
                "the controller creates it once ordinal {0} is Ready (OrderedReady)".format(n - 1)
                if t["policy"] == "OrderedReady" and n > t["start"]
                else "the controller has not created it"
            )
            events = self._events_of("StatefulSet", self.name)
            detail = "pod {0} does not exist: {1}. Last events of the StatefulSet (newest last): {2}".format(
                name, why, _clause(" | ".join(events)) if events else "none"
            )
        else:
            state = describe_pod(pod)
            events = self._events_of("Pod", name, dig(pod, "metadata", "uid"))
            detail = "pod {0}: {1}".format(name, _clause(state))
            if pod_ready(pod) and t["update_revision"] and pod_revision(pod) != t["update_revision"]:
                detail += (
                    ". It is Ready but runs revision {0}, not the update revision {1}: the rolling update has not "
                    "replaced it yet (partition {2})".format(pod_revision(pod), t["update_revision"], t["partition"])
                )
            detail += ". Last events (newest last): {0}".format(_clause(" | ".join(events)) if events else "none")
        msg = (
            "{base}: {ready}/{replicas} ordinals Ready, waiting for ordinal {n}; {detail}.{disc} "
            "Try: kubectl -n {ns} describe pod {pod}; raise timeout if it is only slow."
        ).format(base=base, ready=ready_count, replicas=t["replicas"], n=n, detail=detail, disc=disconnected, ns=self.namespace, pod=name)
        return StatefulSetWaitError(
            msg, **self.result_fields(reason="Timeout", ordinal=n, pod=name, pod_state=state, events=events)
        )


def build_api(get_client, deadline, clock=time.monotonic):
    """``get_client()`` (kubernetes.core's get_api_client) retried while the API server cannot be reached."""
    delay = BACKOFF_FIRST
    while True:
        try:
            return KubeApi(get_client().client)
        except Exception as err:  # pylint: disable=broad-except
            mapped = classify_api_error(err)
            if not isinstance(mapped, TransientApiError) or clock() + delay >= deadline:
                raise
            time.sleep(delay)  # backoff before reconnecting, not a polling interval
            delay = min(delay * 2, BACKOFF_MAX)
