"""Print, as JSON, the writes that the API audit log recorded from one kind of client since a moment.

usage: python3 audit_writes.py AUDIT_LOG SINCE_EPOCH_SECONDS USER_AGENT_PREFIX NAMESPACE

Only writes that concern the stack in NAMESPACE count: in it, or to PersistentVolumes and Nodes (cluster-wide).
A write is a request with verb create, update, patch, delete or deletecollection that completed; access reviews a
client asks about itself and server-side dry runs (dryRun=All, what check mode sends) are not writes. Lines still being written (the last one may be cut) are skipped.
"""

import json
import sys
from datetime import datetime

WRITES = {"create", "update", "patch", "delete", "deletecollection"}
REVIEWS = {"selfsubjectaccessreviews", "selfsubjectrulesreviews"}


CLUSTER_WIDE = {"persistentvolumes", "nodes"}


def main(path, since, agent, namespace):
    found = []
    with open(path, encoding="utf-8") as log:
        for line in log:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("stage") != "ResponseComplete" or event.get("verb") not in WRITES:
                continue
            if not event.get("userAgent", "").startswith(agent):
                continue
            if "dryRun=All" in event.get("requestURI", ""):
                continue
            ref = event.get("objectRef", {})
            if ref.get("resource") in REVIEWS:
                continue
            if ref.get("namespace") != namespace and ref.get("resource") not in CLUSTER_WIDE \
                    and not (ref.get("resource") == "namespaces" and ref.get("name") == namespace):
                continue
            when = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
            if when >= since:
                found.append("{0} {1}".format(event["verb"], event["requestURI"]))
    print(json.dumps(found))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4])
