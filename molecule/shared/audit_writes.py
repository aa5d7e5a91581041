#!/usr/bin/env python
"""Print, as JSON, the writes that the collection's Kubernetes client made since a point in time.

Used by the molecule scenarios to prove that a run wrote nothing (check mode, refused input): it lists every
create/update/patch/delete request the API server audited since --since whose user agent is the collection's
client (the Kubernetes Python client that kubernetes.core, its lookup and kubess.stateful's module use), in any
namespace and on any cluster-scoped object, leaving out only server-side dry runs (what check mode sends).
The control plane, the simulated kubelets and kubectl have other user agents.

    audit_writes.py --log AUDIT_LOG --since EPOCH [--agent PREFIX]
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
# The user agent of the Kubernetes Python client ("OpenAPI-Generator/<version>/python").
CLIENT_AGENT = "OpenAPI-Generator/"


def epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def writes(lines, since: float, agent: str = CLIENT_AGENT) -> list[dict]:
    """The client's writes (not dry runs) in the audit log lines, received at or after ``since``."""
    out = []
    for line in lines:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("stage") != "ResponseComplete" or ev.get("verb") not in WRITE_VERBS:
            continue
        if epoch(ev["requestReceivedTimestamp"]) < since or "dryRun=All" in ev.get("requestURI", ""):
            continue
        if not ev.get("userAgent", "").startswith(agent):
            continue
        out.append({"verb": ev["verb"], "uri": ev.get("requestURI"), "agent": ev.get("userAgent")})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--since", type=float, required=True)
    parser.add_argument("--agent", default=CLIENT_AGENT, help="user agent prefix of the client whose writes count")
    args = parser.parse_args()
    with open(args.log, encoding="utf-8") as fh:
        print(json.dumps(writes(fh, args.since, args.agent)))


if __name__ == "__main__":
    main()
