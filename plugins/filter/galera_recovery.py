# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the Galera members published about themselves (phase, position), and the bootstrap decision they will
reach, by the rules of roles/pxc/files/pxc-entrypoint.sh, for a report that acts on nothing. The documentation is
in galera_recovery.yml beside this file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.kubess.stateful.plugins.module_utils._galera_state import parse_published as _published
from ansible_collections.kubess.stateful.plugins.module_utils._galera_state import to_int as _int


def _container_state(pod):
    """Why a pod's member cannot answer, from the pod's own status (empty when it runs)."""
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "the pod is being deleted"
    if status.get("phase") != "Running":
        return f"the pod is {status.get('phase') or 'not scheduled'}"
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting")
        if waiting:
            return f"container {container.get('name')} is waiting ({waiting.get('reason') or 'no reason'})"
    return ""


def _member(ordinal, name, pod, published):
    member = {"ordinal": ordinal, "pod": name, "node": None, "ready": False, "phase": None, "empty": None,
              "uuid": None, "seqno": None, "safe_to_bootstrap": None, "unread": ""}
    if not pod:
        member["unread"] = "no pod"
        return member
    member["node"] = (pod.get("spec") or {}).get("nodeName")
    member["ready"] = any(c.get("type") == "Ready" and c.get("status") == "True"
                          for c in (pod.get("status") or {}).get("conditions") or [])
    why = _container_state(pod)
    phase, state = _published(published.get(name))
    member["phase"] = phase or None
    if state:
        member.update(state)
    elif why:
        member["unread"] = why
    elif name not in published:
        member["unread"] = "its published state could not be read"
    else:
        member["unread"] = f"no position published yet (phase: {phase or 'starting'})"
    return member


def _rank(member):
    """Order of the full-outage election: safe_to_bootstrap first, then the highest seqno, then the lowest ordinal."""
    return (not member["safe_to_bootstrap"], -member["seqno"], member["ordinal"])


def _decide(members, force, initialized, name):
    # A Ready member is Synced (its readiness probe says so): the cluster runs, whatever could be read of it.
    running = [m for m in members if m["phase"] == "server" or m["ready"]]
    known = [m for m in members if m["seqno"] is not None]
    holders = [m for m in known if not m["empty"]]
    missing = [m for m in members if m["seqno"] is None and m not in running]
    if running:
        pods = ", ".join(m["pod"] for m in running)
        return {"action": "join", "member": running[0]["pod"],
                "text": f"the cluster runs ({pods}): the other members join it; nothing to decide"}
    if force >= 0:
        chosen = f"{name}-{force}"
        text = f"pxc_force_bootstrap_ordinal is {force}: {chosen} bootstraps, the others join it"
        ahead = [m for m in holders if m["ordinal"] != force
                 and m["seqno"] > max([h["seqno"] for h in holders if h["ordinal"] == force] or [-1])]
        if ahead:
            best = max(ahead, key=lambda m: m["seqno"])
            text += (f"; {best['pod']} is further (seqno {best['seqno']}): what it holds beyond is lost when it "
                     f"joins. Set pxc_force_bootstrap_ordinal back to -1 once the cluster runs")
        return {"action": "bootstrap", "member": chosen, "text": text}
    claimants = sorted((m for m in holders if m["safe_to_bootstrap"]), key=_rank)
    if claimants:
        first = claimants[0]
        text = f"{first['pod']} has safe_to_bootstrap: 1 (seqno {first['seqno']}) and bootstraps"
        if len(claimants) > 1:
            others = ", ".join(f"{m['pod']} (seqno {m['seqno']})" for m in claimants[1:])
            text += f"; {others} claim(s) it too and wait(s) for it: the most advanced claimant goes first"
        if missing:
            text += (f"; once {', '.join(m['pod'] for m in missing)} answer(s) or after its grace, in case another "
                     f"member claims it too")
        return {"action": "bootstrap", "member": first["pod"], "text": text}
    first_install = not initialized and not holders
    if first_install:
        return {"action": "bootstrap", "member": f"{name}-0",
                "text": f"no member holds data and the cluster was never initialised: {name}-0 starts a new cluster"}
    if missing:
        waiting = "; ".join(f"{m['pod']} ({m['unread']})" for m in missing)
        text = f"no member runs; waiting for the position of every member, missing: {waiting}"
        if holders:
            best = sorted(holders, key=_rank)[0]
            text += (f". Of those that answered, {best['pod']} is the most advanced (seqno {best['seqno']}): to "
                     f"bootstrap without the others, run the role with -e pxc_force_bootstrap_ordinal="
                     f"{best['ordinal']} (what a missing member holds beyond is lost), then again with -1")
        return {"action": "wait", "member": None, "text": text}
    if not holders:
        return {"action": "wait", "member": None,
                "text": "no member holds data although the cluster was initialised: the members refuse to start an "
                        "empty cluster over lost volumes; set pxc_force_bootstrap_ordinal to do so"}
    best = sorted(holders, key=_rank)[0]
    return {"action": "bootstrap", "member": best["pod"],
            "text": f"{best['pod']} is the most advanced member (seqno {best['seqno']}) and bootstraps; the others "
                    f"join it"}


def _line(member):
    head = member["pod"]
    where = f" on {member['node']}" if member["node"] else ""
    if member["seqno"] is None:
        return f"{head}{where}: {member['phase'] or 'no phase'}; position unknown: {member['unread']}"
    data = "empty data directory" if member["empty"] else f"uuid {member['uuid']} seqno {member['seqno']}"
    return (f"{head}{where}: {member['phase'] or 'no phase'}{', Ready' if member['ready'] else ''}; {data}, "
            f"safe_to_bootstrap {int(bool(member['safe_to_bootstrap']))}")


def galera_recovery(pods, published, replicas, bootstrap=None, name="pxc"):
    """Each member's published phase and position, and the decision the members will reach."""
    if not isinstance(pods, list) or not isinstance(published, dict):
        raise AnsibleFilterError("galera_recovery takes the pods (a list) and what each published (a mapping)")
    count = _int(replicas)
    if count is None or count < 1:
        raise AnsibleFilterError(f"galera_recovery: replicas must be a positive number, got {replicas!r}")
    bootstrap = bootstrap or {}
    force = _int(bootstrap.get("force-bootstrap-ordinal"), -1)
    initialized = str(bootstrap.get("cluster-initialized", "false")).strip() == "true"
    by_name = {(p.get("metadata") or {}).get("name"): p for p in pods}
    members = [_member(i, f"{name}-{i}", by_name.get(f"{name}-{i}"), published) for i in range(count)]
    decision = _decide(members, force, initialized, name)
    return {"members": members, "decision": decision,
            "lines": [_line(m) for m in members] + [f"decision: {decision['text']}"]}


class FilterModule:
    """kubess.stateful Galera recovery report."""

    def filters(self):
        return {"galera_recovery": galera_recovery}
