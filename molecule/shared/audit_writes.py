#!/usr/bin/env python
"""Print, as JSON, the write requests the API server audited since a point in time.

Used by the molecule scenarios to prove that a run wrote nothing (check mode, rejected input): it lists
create/update/patch/delete requests on objects in the given namespaces, or on cluster-scoped objects whose
name starts with one of the given prefixes, made by API clients (the control plane's controllers, the
scheduler and the simulated kubelets are left out), excluding server-side dry runs.

    audit_writes.py --log AUDIT_LOG --since EPOCH --namespace NS [--namespace NS] [--name-prefix P]
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
CONTROL_PLANE_AGENTS = ("kube-controller-manager/", "kube-scheduler/", "kwok/", "metrics-server/", "kube-apiserver/")


def epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--since", type=float, required=True)
    parser.add_argument("--namespace", action="append", default=[])
    parser.add_argument("--name-prefix", action="append", default=[])
    args = parser.parse_args()

    writes = []
    with open(args.log, encoding="utf-8") as fh:
        for line in fh:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("stage") != "ResponseComplete" or ev.get("verb") not in WRITE_VERBS:
                continue
            if epoch(ev["requestReceivedTimestamp"]) < args.since:
                continue
            if "dryRun=All" in ev.get("requestURI", ""):
                continue
            user = ev.get("user", {}).get("username", "")
            agent = ev.get("userAgent", "")
            if user.startswith("system:") or agent.startswith(CONTROL_PLANE_AGENTS):
                continue
            ref = ev.get("objectRef", {})
            ns, name = ref.get("namespace"), ref.get("name", "")
            if ref.get("resource") == "namespaces":
                ns = name
            mine = (ns in args.namespace) or (not ns and any(name.startswith(p) for p in args.name_prefix))
            if mine:
                writes.append({"verb": ev["verb"], "uri": ev.get("requestURI"), "agent": agent})
    print(json.dumps(writes))


if __name__ == "__main__":
    main()
