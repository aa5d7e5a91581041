# -*- coding: utf-8 -*-
# Copyright: (c) 2025, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Wait until a StatefulSet's ordinals are Ready: the waiter's state and its decisions.

The watch streams (``_watch``) post what they see to a queue; this waiter alone reads it, keeps the
set, its pods (and, when a pod waits on claims, the namespace's claims and their events) up to date,
and decides after each batch: return, fail fast on a stuck ordinal (``_ordinal.stuck_reason``), fail
on a controller that has not acted for ``controller_stall_timeout`` seconds (``_controller_stall``),
or wait on. The words are ``_wait_report``'s.
"""

import queue
import time

from ansible_collections.kubess.stateful.plugins.module_utils import _wait_report as report
from ansible_collections.kubess.stateful.plugins.module_utils._controller_stall import (
    controller_failing,
    follow,
    is_stalled,
    owed_action,
    stall_deadline,
)
from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import (
    ApiFailure,
    ModuleFailure,
    TransientApiError,
)
from ansible_collections.kubess.stateful.plugins.module_utils._ordinal import (
    describe_pod,
    dig,
    events_for,
    first_unready_ordinal,
    last_events,
    ordinal_ready,
    pod_claim_names,
    pod_ordinal,
    pod_ready,
    pod_unscheduled,
    sort_events,
    stuck_reason,
    unready_ordinals,
    wait_target,
)
from ansible_collections.kubess.stateful.plugins.module_utils._watch import (
    CONNECTED,
    DISCONNECTED,
    FATAL,
    RESYNC,
    SYNC,
    SetAccess,
    WatchStream,
    ns_path,
    strip,
)

EVENT_LINES = 5


def controller_look_interval(stall_timeout):
    """How often, at most, the waiter looks at what the controller owes (a look walks every ordinal): a twentieth of
    the stall threshold, so that a stall is declared at most 5 % late, between 0.5 s and 5 s (5 s with the check off,
    when only the timeout message uses it)."""
    return min(5.0, max(0.5, stall_timeout / 20.0)) if stall_timeout else 5.0


class StatefulSetWaiter(SetAccess):
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
        controller_stall_timeout=60,
        clock=time.monotonic,
        wall_clock=time.time,
        started=None,
    ):
        super().__init__(api, name, namespace, clock)
        self.replicas = replicas
        self.timeout = float(timeout)
        self.wait_for_set = wait_for_set
        self.wait_for_update = wait_for_update
        self.fail_fast = fail_fast
        self.stall_timeout = controller_stall_timeout or 0
        self.look_interval = controller_look_interval(self.stall_timeout)
        self.wall_clock = wall_clock
        self.started = clock() if started is None else started
        self.deadline = self.started + self.timeout
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
        self.down = set()  # keys of the streams whose last attempt to reach the API server failed
        self.selector = None
        self.last_disconnect = None
        self._target = None
        self._ok = set()  # ordinals in range that count as Ready under the current target
        self._dirty = set()  # pod names changed since the last evaluation
        self._claims_changed = False
        self._owed = None  # (the step the controller owes, since when): _controller_stall.follow
        self._looked_at = None  # when the waiter last looked at what the controller owes
        self._changed_at = self.started  # when the last batch of changes came in

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
        self.down.discard(key)
        # The stream gets two callbacks over the queue and the clock, not the waiter: it cannot touch the waiter's state.
        events, clock, deadline = self.events, self.clock, self.deadline

        def post(stream, typ, payload):
            events.put((clock(), stream, typ, payload))

        def remaining():
            return deadline - clock()

        stream = WatchStream(self.api, key, path, query, post, remaining)
        self.streams[key] = stream
        stream.start()

    def _shutdown(self):
        for stream in self.streams.values():
            stream.stop()

    def _sts_path(self):
        return ns_path("apps/v1", self.namespace, "statefulsets")

    def _by_ordinal(self):
        return {n: self.pods[name] for name, n in self.ordinal_of.items()}

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
        if typ == SYNC:
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
                raise ModuleFailure(report.deleted_message(self.ref), **self.result_fields(reason="StatefulSetDeleted"))
            raise ModuleFailure(report.missing_message(self.ref), **self.result_fields(reason="StatefulSetNotFound"))
        self._set_target()
        if self._target is not None and self._target["selector"] != self.selector:
            if not self._target["selector"]:
                raise ModuleFailure(report.empty_selector_message(self.ref), **self.result_fields(reason="InvalidSelector"))
            self.selector = self._target["selector"]
            for name in list(self.pods):
                self._drop_pod(name)
            self.pods_synced = False
            self._start("pods", ns_path("v1", self.namespace, "pods"), [("labelSelector", self.selector)])

    def _on_pods(self, typ, payload, t):
        if typ == SYNC:
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
        if typ == SYNC:
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
        if typ == DISCONNECTED:
            self.stats["reconnects"] += 1
        elif typ == RESYNC:
            self.stats["relists"] += 1
        if self.streams.get(stream.key) is not stream:
            return  # from a stream replaced since
        if typ == FATAL:
            if isinstance(payload, ApiFailure):
                raise ModuleFailure(
                    report.api_failure_message(self.ref, self.namespace, stream.key, payload), **self.result_fields(reason="ApiError")
                )
            raise ModuleFailure(report.watch_failed_message(self.ref, stream.key, payload), **self.result_fields(reason="WatchFailed"))
        if typ in (DISCONNECTED, CONNECTED):
            # What the waiter knows may be stale while a stream is down, and the controller may have lost the API
            # server too: what it owes is counted again from the next look.
            self._owed = None
            if typ == DISCONNECTED:
                self.last_disconnect = payload
                self.down.add(stream.key)
            else:
                self.down.discard(stream.key)
            return
        if typ == RESYNC:
            typ = SYNC
        if stream.key == "sts":
            self._on_sts(typ, payload)
        elif stream.key == "pods":
            self._on_pods(typ, payload, t)
        else:
            self._on_claims(stream.key, typ, payload)

    # ------------------------------------------------------------------ decisions

    def _done(self):
        t = self._target
        return t is not None and t["observed"] and self.pods_synced and len(self._ok) == t["replicas"]

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
        pvcs, events = list(self.pvcs.values()), list(self.claim_events.values())
        for n, name in sorted(candidates):
            pod = self.pods[name]
            self._watch_claims_for(pod)
            found = stuck_reason(pod, pvcs, events)
            if found:
                return (n, pod, found[0], found[1])
        return None

    def _watch_claims_for(self, pod):
        """Watch the namespace's claims and their events: only once a pod waits on claims to be bound."""
        if not pod or "pvcs" in self.streams or not pod_claim_names(pod) or not pod_unscheduled(pod):
            return
        self._start("pvcs", ns_path("v1", self.namespace, "persistentvolumeclaims"), [])
        self._start(
            "pvc-events",
            ns_path("v1", self.namespace, "events"),
            [("fieldSelector", "involvedObject.kind=PersistentVolumeClaim")],
        )

    def _look_at_controller(self, now, force=False):
        """Update what the controller owes and since when; at most every ``look_interval`` seconds unless forced
        or a stall deadline has come. True when it looked."""
        deadline = stall_deadline(self._owed, self.stall_timeout)
        due = (
            force
            or self._looked_at is None
            or now - self._looked_at >= self.look_interval
            or (deadline is not None and now >= deadline)
        )
        if not due:
            return False
        owed = None
        if self.sts is not None and self.pods_synced and not self.down:
            owed = owed_action(self.sts, self._by_ordinal(), self.wait_for_update)
        self._owed = follow(self._owed, owed, now)
        self._looked_at = now
        return True

    def _next_look(self, now):
        """Seconds until the waiter must look at the controller again without an event: its next stall deadline,
        or the end of the look interval when changes came in since the last look; None when nothing is due."""
        times = []
        deadline = stall_deadline(self._owed, self.stall_timeout)
        if deadline is not None:
            times.append(deadline)
        if self._looked_at is not None and self._looked_at < self._changed_at:
            times.append(self._looked_at + self.look_interval)
        return max(0.0, min(times) - now) if times else None

    def _evaluate(self, now):
        if self._done():
            return True
        if self.fail_fast:
            stuck = self._find_stuck()
            if stuck:
                raise self._stuck_error(*stuck)
        else:
            # Claims are still worth watching for the timeout message.
            for name in self._dirty:
                self._watch_claims_for(self.pods.get(name))
        self._dirty = set()
        self._claims_changed = False
        if self._look_at_controller(now) and is_stalled(self._owed, self.stall_timeout, now):
            raise self._stall_error(now)
        return False

    # ------------------------------------------------------------------ entry points

    def wait(self):
        """Block until every ordinal is Ready; return the result dict, or raise ModuleFailure."""
        try:
            self._start("sts", self._sts_path(), [("fieldSelector", "metadata.name=" + self.name)])
            while True:
                now = self.clock()
                remaining = self.deadline - now
                if remaining <= 0:
                    raise self._timeout_error()
                wake = self._next_look(now)
                batch = []
                try:
                    batch.append(self.events.get(timeout=remaining if wake is None else min(remaining, wake)))
                    while True:
                        batch.append(self.events.get_nowait())
                except queue.Empty:
                    pass
                for item in batch:
                    self._apply(item)
                if batch:
                    self._changed_at = self.clock()
                if self._evaluate(self.clock()):
                    return self.result_fields()
        finally:
            self._shutdown()

    def check(self):
        """One look, no waiting (check mode): what the wait would wait for."""
        sts = self._list_once(self._sts_path(), [("fieldSelector", "metadata.name=" + self.name)])
        found = [s for s in sts.get("items") or [] if dig(s, "metadata", "name") == self.name]
        if not found:
            result = self.result_fields()
            result.update(exists=False, ready=False, would_wait_for=[],
                          msg=report.check_missing_message(self.ref, self.timeout, self.wait_for_set))
            return result
        self.sts = found[0]
        self._set_target()
        pods = self._list_once(ns_path("v1", self.namespace, "pods"), [("labelSelector", self._target["selector"])])
        self._on_pods(SYNC, [strip(p) for p in pods.get("items") or []], self.clock())
        t = self._target
        by_ord = self._by_ordinal()
        waiting = unready_ordinals(by_ord, t["replicas"], t["update_revision"], t["partition"], t["start"])
        stuck = []
        for n in waiting:
            found_reason = stuck_reason(by_ord.get(n))
            if found_reason:
                stuck.append({"ordinal": n, "pod": dig(by_ord[n], "metadata", "name"), "reason": found_reason[0], "message": found_reason[1]})
        ready = not waiting and t["observed"]
        result = self.result_fields()
        result.update(exists=True, ready=ready, would_wait_for=waiting, stuck=stuck,
                      msg=report.check_message(self.ref, self.timeout, waiting, ready))
        return result

    def _list_once(self, path, query):
        try:
            return self.api.list(path, query, timeout=max(1.0, self.remaining()))
        except ApiFailure as err:
            raise ModuleFailure(report.api_failure_message(self.ref, self.namespace, path, err), **self.result_fields(reason="ApiError"))
        except TransientApiError as err:
            raise ModuleFailure(report.unreachable_message(self.ref, err), **self.result_fields(reason="ApiUnavailable"))

    # ------------------------------------------------------------------ results and failures

    def _ready_at(self, pod):
        since = self.ready_since.get(dig(pod, "metadata", "name"))
        return self.elapsed(since[1]) if since else None

    def result_fields(self, **extra):
        t = self._target or {}
        result = {
            "changed": False,
            "name": self.name,
            "namespace": self.namespace,
            "replicas": t.get("replicas", self.replicas),
            "ordinals": report.ordinal_entries(self.name, self._target, self._by_ordinal(), self._ready_at),
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

    def _read_events(self, kind, name, uid=None):
        """The events about one object, oldest first, and None; or None and a line saying why they were not read."""
        if self.down:
            return None, report.events_not_read(kind, name)
        try:
            body = self.api.list(
                ns_path("v1", self.namespace, "events"),
                [("fieldSelector", "involvedObject.kind={0},involvedObject.name={1}".format(kind, name))],
                timeout=10,
            )
        except (ApiFailure, TransientApiError) as err:
            return None, report.events_not_read(kind, name, err)
        return events_for(body.get("items") or [], kind, name, uid), None

    def _event_lines(self, kind, name, uid=None):
        """The last events about one object, as lines (one list request; best effort)."""
        events, why_not = self._read_events(kind, name, uid)
        return [why_not] if events is None else last_events(events, EVENT_LINES)

    def _stuck_error(self, n, pod, reason, message):
        name = dig(pod, "metadata", "name")
        events = self._event_lines("Pod", name, dig(pod, "metadata", "uid"))
        if reason.startswith("PersistentVolumeClaim"):
            for claim in pod_claim_names(pod):
                events += last_events(events_for(list(self.claim_events.values()), "PersistentVolumeClaim", claim), EVENT_LINES)
        state = describe_pod(pod)
        msg, hint = report.stuck_message(self.ref, self.namespace, n, name, reason, message, state, events)
        return ModuleFailure(
            msg, **self.result_fields(ordinal=n, pod=name, reason=reason, message=message, pod_state=state, events=events, hint=hint)
        )

    def _first_unready(self):
        """(lowest ordinal not Ready or None, number of ordinals Ready, pods by ordinal) under the current target."""
        t = self._target
        by_ord = self._by_ordinal()
        n = first_unready_ordinal(by_ord, t["replicas"], t["update_revision"], t["partition"], t["start"])
        ready_count = t["replicas"] - len(unready_ordinals(by_ord, t["replicas"], t["update_revision"], t["partition"], t["start"]))
        return n, ready_count, by_ord

    def _set_events(self):
        """The StatefulSet's own events, oldest first, and their last lines (one list request; best effort)."""
        events, why_not = self._read_events("StatefulSet", self.name, dig(self.sts, "metadata", "uid"))
        return (events or []), ([why_not] if events is None else last_events(events, EVENT_LINES))

    def _stall(self, now, set_events):
        """The ``stall`` result field for what the controller owes now, and what to check."""
        stall = report.stall_fields(self._owed, self.started, now, self.wall_clock(), self.stall_timeout)
        failing = controller_failing(sort_events(set_events))
        return stall, report.stall_hint(self.ref, self.namespace, self.name, failing)

    def _stall_error(self, now):
        set_events, events = self._set_events()
        stall, hint = self._stall(now, set_events)
        n, ready_count, by_ord = self._first_unready()
        ordinal = stall["ordinal"] if stall["ordinal"] is not None else n
        pod = stall["pod"]
        if pod is None and ordinal is not None:
            pod = dig(by_ord.get(ordinal), "metadata", "name") or "{0}-{1}".format(self.name, ordinal)
        msg = report.stall_message(self.ref, stall, report.waiting_clause(ready_count, self._target["replicas"], n), events, hint)
        return ModuleFailure(
            msg, **self.result_fields(reason="ControllerStalled", ordinal=ordinal, pod=pod, stall=stall, events=events, hint=hint)
        )

    def _timeout_error(self):
        base = report.timeout_base(self.timeout, self.ref)
        disconnected = report.disconnected_clause(self.last_disconnect if self.down else None)
        if self._target is None:
            msg = report.timeout_no_set_message(base, not self.sts_seen and self.wait_for_set, disconnected)
            return ModuleFailure(msg, **self.result_fields(reason="Timeout"))
        if not self.pods_synced:
            return ModuleFailure(report.timeout_no_pods_message(base, self.selector, disconnected), **self.result_fields(reason="Timeout"))
        now = self.clock()
        self._look_at_controller(now, force=True)
        t = self._target
        n, ready_count, by_ord = self._first_unready()
        pod = by_ord.get(n) if n is not None else None
        set_events = set_lines = None
        if self._owed is not None or (n is not None and pod is None):
            set_events, set_lines = self._set_events()
        extra = {}
        stall = hint = None
        if self._owed is not None:
            stall, hint = self._stall(now, set_events)
            extra["stall"] = stall
        if n is None:
            msg = report.timeout_unobserved_message(
                base, dig(self.sts, "metadata", "generation"), dig(self.sts, "status", "observedGeneration"), disconnected
            )
            return ModuleFailure(msg, **self.result_fields(reason="Timeout", **extra))
        name = dig(pod, "metadata", "name") if pod else "{0}-{1}".format(self.name, n)
        if pod is None:
            state = "the pod does not exist"
            events = set_lines
            set_replicas = dig(self.sts, "spec", "replicas", default=1)
            detail = report.missing_pod_detail(name, n, t, events, set_replicas)
        else:
            state = describe_pod(pod)
            events = self._event_lines("Pod", name, dig(pod, "metadata", "uid"))
            detail = report.pod_detail(name, pod, state, t, pod_ready(pod), events)
        msg = report.timeout_ordinal_message(base, ready_count, t["replicas"], n, detail, disconnected, self.namespace, name)
        msg += report.stall_note(stall, hint)
        return ModuleFailure(msg, **self.result_fields(reason="Timeout", ordinal=n, pod=name, pod_state=state, events=events, **extra))
