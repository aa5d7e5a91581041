# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""etcd membership of a StatefulSet's members, changed one member at a time (the etcd_member module).

Members are known by their peer URL, ``<scheme>://<set>-<ordinal>.<domain>:<peer port>``: a member added but not
started yet has no name. The plan takes the membership and the set's replicas to the size asked for: members at or
above that size are removed, the highest first, each before the set shrinks past it; missing ones are added as
learners, the lowest first, each promoted once its pod has caught up, before the next is added. A run stopped between
two of these is planned again from what etcd and the set hold then.

etcdctl runs in a Ready member's container (pods/exec), against that member's client URL, with the certificates its
environment names (ETCDCTL_*).
"""

import json
import re
import time

from ansible_collections.kubess.stateful.plugins.module_utils._exceptions import (
    ModuleFailure,
    TransientApiError,
)
from ansible_collections.kubess.stateful.plugins.module_utils._ordinal import (
    describe_pod,
)
from ansible_collections.kubess.stateful.plugins.module_utils._watch import (
    SetAccess,
    UntilDeadline,
    ns_path,
    watch_one,
)

# A container that will not run by itself: promoting its member cannot succeed.
STUCK_REASONS = frozenset(["CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull",
                           "CreateContainerConfigError", "CreateContainerError", "InvalidImageName",
                           "RunContainerError"])
PROMOTE_INTERVAL = 2.0  # seconds between two promotions of a learner that has not caught up yet
# A new member may exit once on its first start and come back (its first WAL on a network file system, its own DNS
# name not yet published): a crash loop stops the promotion from this many restarts on.
CRASH_LOOP_RESTARTS = 3


def quorum(voters):
    """The majority of ``voters`` voting members."""
    return voters // 2 + 1


def parse_members(name, listing):
    """The members of ``etcdctl member list -w json`` as dicts (id, hex, ordinal, url, learner, started), ordered by
    ordinal; a member whose peer URL is not one of the set's raises ValueError."""
    members = []
    pattern = re.compile(r"^https?://" + re.escape(name) + r"-(\d+)\.")
    for member in listing.get("members") or []:
        urls = member.get("peerURLs") or []
        match = pattern.match(urls[0]) if urls else None
        if not match:
            raise ValueError("etcd member {0} (peer URLs {1}) is not a member of StatefulSet {2}: its peer URL is not "
                             "<{2}-ordinal>.<headless Service domain>".format(
                                 member.get("name") or format(int(member.get("ID", 0)), "x"), urls, name))
        members.append(dict(id=int(member["ID"]), hex=format(int(member["ID"]), "x"), ordinal=int(match.group(1)),
                            url=urls[0], learner=bool(member.get("isLearner")), started=bool(member.get("name"))))
    return sorted(members, key=lambda m: m["ordinal"])


def plan(members, replicas, desired):
    """The steps from ``members`` (parse_members) and the set's ``replicas`` to ``desired`` members, each a dict:
    action (remove, scale, add, promote), ordinal, the set's replicas after the step, the members' ordinals after it.
    Going down, each step takes one pod away, the highest first: under OrderedReady the controller deletes a pod only
    when no lower one is unhealthy, and a removed member's pod is (its etcd exits)."""
    steps = []
    current = {m["ordinal"]: m for m in members}
    now = replicas
    top = max([replicas] + [o + 1 for o in current])
    for ordinal in range(top - 1, desired - 1, -1):
        if ordinal in current:
            del current[ordinal]
            now = min(now, ordinal)
            steps.append(dict(action="remove", ordinal=ordinal, replicas=now, members=sorted(current)))
        elif ordinal < now:
            # A pod whose member is gone already (a run stopped after `member remove`).
            now = ordinal
            steps.append(dict(action="scale", ordinal=ordinal, replicas=now, members=sorted(current)))
    for ordinal in range(desired):
        member = current.get(ordinal)
        if member is None:
            current[ordinal] = dict(ordinal=ordinal, learner=True)
            now = max(now, ordinal + 1)
            steps.append(dict(action="add", ordinal=ordinal, replicas=now, members=sorted(current)))
        elif member["learner"]:
            now = max(now, ordinal + 1)
            steps.append(dict(action="promote", ordinal=ordinal, replicas=now, members=sorted(current)))
        elif now < ordinal + 1:
            now = ordinal + 1
            steps.append(dict(action="scale", ordinal=ordinal, replicas=now, members=sorted(current)))
    return steps


def quorum_problem(action, ordinal, members, healthy):
    """Why ``action`` on ``ordinal`` would put the quorum at risk, or None. ``healthy``: the ordinals whose member
    answered a health check (a learner never does)."""
    voters = [m["ordinal"] for m in members if not m["learner"]]
    up = [o for o in voters if o in healthy]
    down = [o for o in voters if o not in healthy]
    if action == "remove":
        if ordinal not in voters:
            return None
        left = len(voters) - 1
        if len([o for o in up if o != ordinal]) < quorum(left):
            return ("removing voting member {0} would leave {1} voting members of which {2} are healthy, fewer than "
                    "their quorum of {3}".format(ordinal, left, len([o for o in up if o != ordinal]), quorum(left)),
                    down)
        return None
    # add, promote: the new member votes once promoted; the cluster must keep a quorum with it counted as healthy.
    after = len(voters) + (0 if ordinal in voters else 1)
    if len(up) + 1 < quorum(after):
        return ("adding member {0} would make {1} voting members of which at most {2} are healthy, fewer than their "
                "quorum of {3}".format(ordinal, after, len(up) + 1, quorum(after)), down)
    return None


class EtcdMembers(SetAccess, UntilDeadline):
    """The etcd membership of StatefulSet ``namespace/name``, read and changed with etcdctl in a member's pod."""

    def __init__(self, api, name, namespace, scheme, client_port, peer_port, domain, container, deadline,
                 clock=time.monotonic, pause=time.sleep):
        super().__init__(api, name, namespace, clock)
        # How the members are reached: etcdctl in ``container``, at <pod>.<domain> on these ports.
        self.scheme, self.client_port, self.peer_port = scheme, client_port, peer_port
        self.domain, self.container = domain, container
        self.deadline, self.pause = deadline, pause
        self.exec_pod = None

    def ref(self):
        return "StatefulSet {0}/{1}".format(self.namespace, self.name)

    def peer_url(self, ordinal):
        return "{0}://{1}-{2}.{3}:{4}".format(self.scheme, self.name, ordinal, self.domain, self.peer_port)

    def read_set(self):
        return self._retry(lambda: self.api.list(ns_path("apps/v1", self.namespace, "statefulsets") + "/" + self.name))

    def pods(self):
        """The set's pods by ordinal."""
        items = self._retry(lambda: self.api.list(ns_path("v1", self.namespace, "pods"))).get("items") or []
        prefix = self.name + "-"
        found = {}
        for pod in items:
            pod_name = (pod.get("metadata") or {}).get("name") or ""
            suffix = pod_name[len(prefix):] if pod_name.startswith(prefix) else ""
            if suffix.isdigit():
                found[int(suffix)] = pod
        return found

    def claims(self):
        items = self._retry(lambda: self.api.list(ns_path("v1", self.namespace, "persistentvolumeclaims"))).get("items") or []
        return {(c.get("metadata") or {}).get("name"): c for c in items}

    def _choose_pod(self, avoid=None):
        """The lowest Ready member pod (other than ``avoid``), where etcdctl runs."""
        for ordinal, pod in sorted(self.pods().items()):
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (pod.get("status") or {}).get("conditions") or [])
            if ready and ordinal != avoid and not (pod.get("metadata") or {}).get("deletionTimestamp"):
                return pod["metadata"]["name"]
        raise ModuleFailure(
            "{0}: no member pod is Ready to run etcdctl in; the membership cannot be read or changed. Nothing was "
            "changed.".format(self.ref()), reason="NoReadyMember")

    def etcdctl(self, *args, avoid=None):
        """etcdctl ``args`` in a Ready member's container: (exit code, stdout, stderr)."""
        if self.exec_pod is None or avoid is not None:
            self.exec_pod = self._choose_pod(avoid)
        command = ["etcdctl", "--endpoints={0}://127.0.0.1:{1}".format(self.scheme, self.client_port),
                   "--command-timeout=15s"] + list(args)
        return self._retry(lambda: self.api.exec_in_pod(self.namespace, self.exec_pod, self.container, command, timeout=60))

    def _etcdctl_ok(self, *args):
        code, out, err = self.etcdctl(*args)
        if code != 0:
            raise ModuleFailure("{0}: `etcdctl {1}` in pod {2} failed (exit code {3}): {4}".format(
                self.ref(), " ".join(args), self.exec_pod, code, (err or out).strip()[-600:]), reason="EtcdctlFailed")
        return out

    def members(self):
        out = self._etcdctl_ok("member", "list", "-w", "json")
        try:
            return parse_members(self.name, json.loads(out))
        except ValueError as err:
            raise ModuleFailure("{0}: {1}. Nothing was changed.".format(self.ref(), err), reason="ForeignMember")

    def healthy(self, members):
        """The ordinals of the members that answer a health check (``endpoint health --cluster``)."""
        _code, out, _err = self.etcdctl("endpoint", "health", "--cluster", "-w", "json")  # non-zero when one is down
        try:
            checks = json.loads(out or "[]")
        except ValueError:
            checks = []
        hosts = {}
        for member in members:
            hosts["{0}-{1}.".format(self.name, member["ordinal"])] = member["ordinal"]
        up = set()
        for check in checks:
            host = (check.get("endpoint") or "").split("//", 1)[-1]
            for prefix, ordinal in hosts.items():
                if host.startswith(prefix) and check.get("health"):
                    up.add(ordinal)
        return up

    def _refuse_if_at_risk(self, action, ordinal, members, healthy):
        problem = quorum_problem(action, ordinal, members, healthy)
        if problem:
            why, down = problem
            raise ModuleFailure(
                "{0}: refused, {1}. Nothing was changed. Unhealthy voting members: {2}; bring them back (or remove "
                "them with etcdctl) first.".format(
                    self.ref(), why, ", ".join("{0}-{1}".format(self.name, o) for o in down) or "none"),
                reason="QuorumAtRisk", ordinal=ordinal, healthy=sorted(healthy))

    def _gate(self, action, ordinal, members):
        healthy = self.healthy(members)
        self._refuse_if_at_risk(action, ordinal, members, healthy)
        return healthy

    def _check_steps(self, steps, members, healthy):
        """Refuse the plan when one of its steps would put the quorum at risk, taking the steps in order on a copy
        of the membership; a member added or promoted counts as healthy after its step (each step waits for it)."""
        now = [dict(m) for m in members]
        up = set(healthy)
        for step in steps:
            action, ordinal = step["action"], step["ordinal"]
            if action == "scale":
                continue
            self._refuse_if_at_risk(action, ordinal, now, up)
            now = [m for m in now if m["ordinal"] != ordinal]
            if action != "remove":
                now.append(dict(ordinal=ordinal, learner=False))
                up.add(ordinal)

    def plan(self, desired, claim_template):
        """Membership, health and the steps to ``desired`` members; a step that would put the quorum at risk, or add a
        member over a claim that another member left behind, is refused."""
        sts = self.read_set()
        replicas = int((sts.get("spec") or {}).get("replicas") or 0)
        members = self.members()
        healthy = self.healthy(members)
        steps = plan(members, replicas, desired)
        self._check_steps(steps, members, healthy)
        claims = self.claims()
        for step in steps:
            claim = "{0}-{1}-{2}".format(claim_template, self.name, step["ordinal"])
            if step["action"] == "add" and claim in claims and step["ordinal"] >= replicas:
                raise ModuleFailure(
                    "{0}: refused to add member {1}-{2}: claim {3} exists, so its volume holds the data of a member "
                    "removed before, which etcd would refuse to start with (a removed member cannot join again). "
                    "Nothing was changed. Delete the claim and empty its volume (its directory on the NFS server), "
                    "or keep etcd_replicas at {4}.".format(self.ref(), self.name, step["ordinal"], claim, replicas),
                    reason="StaleClaim", ordinal=step["ordinal"])
        return dict(replicas=replicas, members=members, healthy=sorted(healthy), steps=steps)

    def _find(self, members, ordinal):
        return next((m for m in members if m["ordinal"] == ordinal), None)

    def add(self, ordinal, check_mode=False):
        members = self.members()
        if self._find(members, ordinal):
            return False
        self._gate("add", ordinal, members)
        if not check_mode:
            self._etcdctl_ok("member", "add", "{0}-{1}".format(self.name, ordinal), "--learner",
                             "--peer-urls=" + self.peer_url(ordinal), "-w", "json")
        return True

    def remove(self, ordinal, check_mode=False):
        members = self.members()
        member = self._find(members, ordinal)
        if member is None:
            return False
        self._gate("remove", ordinal, members)
        if not check_mode:
            if self.exec_pod == "{0}-{1}".format(self.name, ordinal):
                self.etcdctl("version", avoid=ordinal)  # run etcdctl elsewhere than in the member that leaves
            self._etcdctl_ok("member", "remove", member["hex"])
        return True

    def promote(self, ordinal, check_mode=False):
        """Promote the learner ``ordinal`` once it has caught up with the leader, trying again until the deadline;
        a pod that cannot run stops it at once."""
        members = self.members()
        member = self._find(members, ordinal)
        if member is None:
            raise ModuleFailure("{0}: {1}-{2} is not a member, so it cannot be promoted".format(
                self.ref(), self.name, ordinal), reason="NotAMember", ordinal=ordinal)
        if not member["learner"]:
            return False
        self._gate("promote", ordinal, members)
        if check_mode:
            return True
        while True:
            code, out, err = self.etcdctl("member", "promote", member["hex"])
            if code == 0:
                return True
            last = (err or out).strip()[-400:]
            stuck = self._stuck(ordinal)
            if stuck or self.clock() + PROMOTE_INTERVAL >= self.deadline:
                raise ModuleFailure(
                    "{0}: learner {1}-{2} was not promoted: {3}. Last answer of `etcdctl member promote`: {4}".format(
                        self.ref(), self.name, ordinal, stuck or "it had not caught up with the leader before the "
                        "timeout", last), reason="NotPromoted", ordinal=ordinal, pod="{0}-{1}".format(self.name, ordinal))
            self.pause(PROMOTE_INTERVAL)  # the learner's log catching up is not an event the API reports

    def settle(self, replicas):
        """Wait until the set's pods at or above ``replicas`` are gone, the highest first (the controller deletes
        them once the set has shrunk): the ordinals waited for."""
        path = ns_path("v1", self.namespace, "pods")
        above = sorted((o for o in self.pods() if o >= replicas), reverse=True)
        for ordinal in above:
            name = "{0}-{1}".format(self.name, ordinal)
            gone, last = watch_one(self.api, "pod " + name, path, name, self.deadline, lambda obj: obj is None,
                                   self.clock)
            if not gone:
                raise ModuleFailure(
                    "{0}: pod {1} is still there after the set shrank to {2}: {3}. Under OrderedReady the controller "
                    "deletes a pod only when every lower one is Ready; kubectl -n {4} describe pod {1}.".format(
                        self.ref(), name, replicas, describe_pod(last), self.namespace),
                    reason="PodNotGone", ordinal=ordinal, pod=name)
        return above

    def _stuck(self, ordinal):
        """Why the learner's pod cannot run, or ''."""
        try:
            pod = self.pods().get(ordinal)
        except TransientApiError:
            return ""
        if pod is None:
            return ""
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff" and int(status.get("restartCount") or 0) < CRASH_LOOP_RESTARTS:
                continue
            if waiting.get("reason") in STUCK_REASONS:
                message = (waiting.get("message") or "").strip()[-300:]
                return "its pod's container {0} is {1}: {2}".format(status.get("name"), waiting["reason"], message)
        return ""
