# -*- coding: utf-8 -*-
# Copyright: (c) 2025, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The transport of statefulset_wait: counted GET requests, and list-then-watch streams in threads.

``KubeApi`` sends lists and watches over the dynamic client kubernetes.core builds. A ``WatchStream``
lists one collection, then watches it from that resourceVersion until the deadline, each watch asked
to last until then, so the number of requests does not grow with the length of the wait. A dropped
watch resumes from the last resourceVersion it saw, with backoff; a watch answered 410 Gone lists
again. A stream knows nothing of the waiter: it reports what it sees through the ``post`` callback.
"""

import json
import queue
import random
import threading
import time
import traceback
from http.client import HTTPException

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import (
    ApiFailure,
    TransientApiError,
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
    from urllib3.exceptions import HTTPError as Urllib3Error
except ImportError:  # urllib3 comes with the kubernetes library; without it nothing is sent anyway

    class Urllib3Error(Exception):
        pass


# HTTP statuses worth retrying: the API server restarts, is overloaded, or its watch cache lags.
TRANSIENT_STATUSES = frozenset([0, 408, 429, 500, 502, 503, 504])
CONNECT_TIMEOUT = 10
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 2.0

# What a stream posts: (stream, type, payload).
SYNC = "SYNC"  # payload: every item, after the first list
RESYNC = "RESYNC"  # payload: every item, after a list made again because a watch was answered 410 Gone
DISCONNECTED = "DISCONNECTED"  # payload: the error as text; the stream retries with backoff
CONNECTED = "CONNECTED"  # the API server answered again after DISCONNECTED
FATAL = "FATAL"  # payload: the exception; the stream has ended
# ... and ADDED, MODIFIED, DELETED as the API names them (payload: the object).


class WatchExpired(Exception):
    """The resourceVersion to watch from is too old (410 Gone): list again."""


def ns_path(group_version, namespace, plural):
    """The API path of a collection: in ``namespace``, or the cluster's when ``namespace`` is None."""
    root = "/api/v1" if group_version == "v1" else "/apis/" + group_version
    if namespace is None:
        return "{0}/{1}".format(root, plural)
    return "{0}/namespaces/{1}/{2}".format(root, namespace, plural)


def _api_error_message(err):
    try:
        body = json.loads(err.body) if err.body else {}
        if isinstance(body, dict) and body.get("message"):
            return body["message"]
    except (TypeError, ValueError):
        pass
    return "{0}".format(err.reason or err.body or "")


def classify_api_error(err):
    """The transport's exception for an exception raised by a request (kubernetes client or urllib3), or None."""
    if isinstance(err, DynamicApiError) or (hasattr(err, "status") and hasattr(err, "reason") and hasattr(err, "body")):
        status = getattr(err, "status", None)
        if status == 410:
            return WatchExpired(_api_error_message(err))
        if status is None or status in TRANSIENT_STATUSES:
            return TransientApiError("HTTP {0}: {1}".format(status, _api_error_message(err)))
        return ApiFailure(status, _api_error_message(err))
    if isinstance(err, (Urllib3Error, HTTPException, OSError)):
        return TransientApiError("{0}: {1}".format(type(err).__name__, err))
    return None


def _reraise_classified(err):
    mapped = classify_api_error(err)
    if mapped is None:
        raise err
    raise mapped from err


class SetAccess:  # pylint: disable=too-few-public-methods
    """What every worker on the StatefulSet ``namespace/name`` holds: the API, the set's name and namespace, and the
    clock its deadlines are read on."""

    def __init__(self, api, name, namespace, clock=time.monotonic):
        self.api = api
        self.name = name
        self.namespace = namespace
        self.clock = clock


class UntilDeadline:  # pylint: disable=too-few-public-methods
    """A worker with a ``deadline`` on its ``clock``: ``_retry(call)`` is ``retry(call)`` until that deadline."""

    deadline = None
    clock = None

    def _retry(self, call, gone_ok=False):
        return retry(call, self.deadline, self.clock, gone_ok=gone_ok)


class KubeApi:
    """Requests over the dynamic client kubernetes.core builds, each counted: reads (lists, watches, logs),
    discovery, writes (PATCH, DELETE) and pods/exec."""

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
            _reraise_classified(err)

    def resource_path(self, api_version, kind, namespace):
        """The path of the collection of ``kind`` (of ``api_version``), named as discovery serves it: in ``namespace``
        when the kind is namespaced, the cluster's collection when it is not (``namespace`` is then not used)."""
        with self._lock:
            self.requests += 1
        try:
            resource = self._client.resources.get(api_version=api_version, kind=kind)
        except Exception as err:  # pylint: disable=broad-except
            if type(err).__name__ == "ResourceNotFoundError":
                raise ApiFailure(404, "the API serves no {0} of {1}".format(kind, api_version)) from None
            _reraise_classified(err)
        if not resource.namespaced:
            return ns_path(api_version, None, resource.name)
        return ns_path(api_version, namespace, resource.name)

    def list(self, path, query=(), timeout=30):
        """The list at ``path`` as a dict (items, metadata.resourceVersion)."""
        return json.loads(self.text(path, query, timeout))

    def text(self, path, query=(), timeout=30):
        """The body at ``path`` as text (a pod's log)."""
        resp = self._get(path, list(query), (CONNECT_TIMEOUT, timeout))
        try:
            data = resp.data
        except Exception as err:  # pylint: disable=broad-except
            _reraise_classified(err)
        return data.decode("utf-8") if isinstance(data, bytes) else data

    def send(self, method, path, body=None, query=(), content_type=None, timeout=30):
        """A write (PATCH, DELETE): the answer as a dict."""
        with self._lock:
            self.requests += 1
        params = dict(query_params=list(query), serialize=False, _request_timeout=(CONNECT_TIMEOUT, timeout))
        if content_type:
            params["content_type"] = content_type
        try:
            data = self._client.request(method, path, body=body, **params).data
        except Exception as err:  # pylint: disable=broad-except
            _reraise_classified(err)
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data) if data else {}

    def exec_in_pod(self, namespace, pod, container, command, timeout=60):
        """Run ``command`` (a list) in a container of a pod, through the pods/exec subresource: ``(exit code, stdout,
        stderr)``. A command still running at ``timeout`` seconds is left and reported as a TransientApiError."""
        from kubernetes.client import CoreV1Api  # pylint: disable=import-outside-toplevel
        from kubernetes.stream import stream  # pylint: disable=import-outside-toplevel

        with self._lock:
            self.requests += 1
        try:
            resp = stream(CoreV1Api(self._client.client).connect_get_namespaced_pod_exec, pod, namespace,
                          command=command, container=container, stdin=False, stdout=True, stderr=True, tty=False,
                          _preload_content=False)
            resp.run_forever(timeout=timeout)
            if resp.is_open():
                resp.close()
                raise TransientApiError("{0} in pod {1}/{2} still ran after {3} s".format(command[0], namespace, pod, timeout))
            out, errs = resp.read_channel(1), resp.read_channel(2)
            code = resp.returncode
        except TransientApiError:
            raise
        except Exception as err:  # pylint: disable=broad-except
            _reraise_classified(err)
        return code, out, errs

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
        _reraise_classified(err)
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


def strip(obj):
    """Drop what the waiter never reads (managedFields can be most of a pod) to keep memory flat."""
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            meta.pop("managedFields", None)
    return obj


def _watch_error(obj):
    """The exception for a watch event of type ERROR (a Status object)."""
    code = obj.get("code")
    if code == 410:
        return WatchExpired(obj.get("message"))
    if code in TRANSIENT_STATUSES:
        return TransientApiError("watch error {0}: {1}".format(code, obj.get("message")))
    return ApiFailure(code, obj.get("message"))


class WatchStream(threading.Thread):
    """List then watch one collection until the deadline, in a thread.

    ``post(stream, type, payload)`` receives what the stream sees (see SYNC, RESYNC, DISCONNECTED, CONNECTED,
    FATAL and the watch event types above); ``remaining()`` tells the seconds left until the deadline.
    """

    def __init__(self, api, key, path, query, post, remaining):
        super().__init__(name="watch-" + key)
        self.daemon = True
        self.api, self.key, self.path, self.query = api, key, path, list(query)
        self._post_to, self._remaining = post, remaining
        self.halt = threading.Event()
        self._resp = None

    def stop(self):
        self.halt.set()
        _close(self._resp)

    def _post(self, typ, payload=None):
        if not self.halt.is_set():
            self._post_to(self, typ, payload)

    def run(self):
        try:
            self._run()
        except Exception as err:  # pylint: disable=broad-except
            self._post(FATAL, err)

    def _run(self):
        rv = None
        backoff = BACKOFF_FIRST
        listed_once = False
        down = False
        while not self.halt.is_set():
            remaining = self._remaining()
            if remaining <= 0:
                return
            seen = 0
            try:
                if rv is None:
                    body = self.api.list(self.path, self.query, timeout=max(1.0, remaining))
                    if down:
                        down = False
                        self._post(CONNECTED)
                    rv = dig_rv(body)
                    self._post(RESYNC if listed_once else SYNC, [strip(item) for item in body.get("items") or []])
                    listed_once = True
                    seen += 1
                    remaining = self._remaining()
                    if remaining <= 0:
                        return
                if self.halt.is_set():
                    return
                self._resp = self.api.watch(self.path, self.query, rv, remaining + 1, remaining + 30)
                if down:
                    down = False
                    self._post(CONNECTED)
                for event in iter_watch_events(self._resp):
                    if self.halt.is_set():
                        return
                    typ = event.get("type")
                    obj = event.get("object") or {}
                    if typ == "ERROR":
                        raise _watch_error(obj)
                    rv = dig_rv(obj) or rv
                    seen += 1
                    if typ != "BOOKMARK":
                        self._post(typ, strip(obj))
                # The server ended the watch (its timeout, or it is shutting down): watch again from rv.
                if not seen and remaining - self._remaining() < 1.0 and self._remaining() > 2:
                    raise TransientApiError("the watch closed at once")
                backoff = BACKOFF_FIRST
            except WatchExpired:
                rv = None
            except TransientApiError as err:
                if self.halt.is_set():
                    return
                down = True
                self._post(DISCONNECTED, str(err))
                delay = min(backoff, max(0.0, self._remaining())) * (0.8 + 0.4 * random.random())
                backoff = min(backoff * 2, BACKOFF_MAX)
                self.halt.wait(delay)
            finally:
                resp, self._resp = self._resp, None
                _close(resp)


def dig_rv(obj):
    """metadata.resourceVersion of an object or a list, or None."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta.get("resourceVersion") if isinstance(meta, dict) else None


def retry(call, deadline, clock=time.monotonic, pause=time.sleep, gone_ok=False):
    """``call()`` again, with backoff, while the API server cannot be reached (TransientApiError), until ``deadline``.

    With ``gone_ok``, an answer of 404 (the object is not there, or no longer) is None rather than an ApiFailure: a
    read of what may not exist, or a delete of what may already be gone."""
    delay = BACKOFF_FIRST
    while True:
        try:
            return call()
        except TransientApiError:
            if clock() + delay >= deadline:
                raise
            pause(delay)  # backoff before reconnecting, not a polling interval
            delay = min(delay * 2, BACKOFF_MAX)
        except ApiFailure as err:
            if gone_ok and err.status == 404:
                return None
            raise


def watch_one(api, key, path, name, deadline, done, clock=time.monotonic):
    """Watch the object ``name`` in the collection ``path`` until ``done(obj)`` is true (``obj`` is None once the object
    is gone), and return ``(True, obj)``; at ``deadline`` return ``(False, the last object seen)``. A dropped watch is
    resumed by WatchStream; a fatal one raises."""
    events = queue.Queue()
    stream = WatchStream(api, key, path, [("fieldSelector", "metadata.name=" + name)],
                         lambda _stream, typ, payload: events.put((typ, payload)), lambda: deadline - clock())
    last = None
    stream.start()
    try:
        while True:
            left = deadline - clock()
            if left <= 0:
                return False, last
            try:
                typ, payload = events.get(timeout=left)
            except queue.Empty:
                return False, last
            if typ == FATAL:
                raise payload
            if typ in (SYNC, RESYNC):
                obj = payload[0] if payload else None
            elif typ in ("ADDED", "MODIFIED"):
                obj = payload
            elif typ == "DELETED":
                obj = None
            else:
                continue
            if done(obj):
                return True, obj
            last = obj
    finally:
        stream.stop()
        stream.join(5)


def build_api(get_client, deadline, clock=time.monotonic, pause=time.sleep):
    """``get_client()`` (kubernetes.core's get_api_client) retried while the API server cannot be reached."""
    delay = BACKOFF_FIRST
    while True:
        try:
            return KubeApi(get_client().client)
        except Exception as err:  # pylint: disable=broad-except
            mapped = classify_api_error(err)
            if not isinstance(mapped, TransientApiError) or clock() + delay >= deadline:
                raise
            pause(delay)  # backoff before reconnecting, not a polling interval
            delay = min(delay * 2, BACKOFF_MAX)
