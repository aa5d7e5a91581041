"""A summary of the deployed stack that a person can read at a glance, and a picture of it.

    python tools/demo_summary.py REPORT.json [--dot stack.dot] [--svg stack.svg]

REPORT.json is what kubess.stateful.stack_info returned (playbooks/stack_info.yml with kubess_stack_info_file). Prints,
for each StatefulSet, its ordinals and when each became Ready (and seconds after ordinal 0 did), each claim -> volume
-> NFS server:path, the Deployments and the autoscalers' current and desired replicas, and the members' own view
when the report has it. --dot writes the picture as Graphviz (nodes, pods by ordinal, claims, volumes, NFS paths);
--svg renders it with Graphviz's `dot`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from datetime import datetime


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def backup_lines(backup: dict | None) -> list[str]:
    if not backup:
        return []
    schedule = (f"every {backup['schedule']} ({backup['time_zone']})" if backup["cronjob"] else "on demand only")
    done = backup["last_succeeded"]
    last = (f"last snapshot {done['file'] or '(file not known)'} at {done['completed']}" if done
            else "no snapshot yet")
    failed = backup["last"] and backup["last"]["outcome"] == "failed"
    return [f"  backups {schedule}; {last}" + (f"; the newest Job failed: {backup['last']['job']}" if failed else "")]


def archive_lines(archive: list | None) -> list[str]:
    """One line per member's binary log archive container (stack_info's binlog_archive)."""
    lines = []
    for member in archive or []:
        copying = (f"copying from {member['file']} on, into {member['directory']}" if member["file"]
                   else f"not copying: {member['last_line'] or 'no log yet'}")
        state = "Ready" if member["ready"] else "NOT Ready"
        restarts = f", {member['restarts']} restarts" if member["restarts"] else ""
        lines.append(f"  binlog archive of {member['pod']}: {state}{restarts}; {copying}")
    return lines


def text(report: dict) -> list[str]:
    lines = ["-- StatefulSets (ordinals, when each became Ready, revision)"]
    for sts in report["statefulsets"]:
        lines.append(f"{sts['name']} ({sts['kind']}): {sts['ready_replicas']}/{sts['replicas']} Ready, "
                     f"{sts['pod_management_policy']}, revision {sts['update_revision']}")
        first = _when(sts["ordinals"][0]["ready_since"]) if sts["ordinals"] else None
        for entry in sts["ordinals"]:
            name = f"{sts['name']}-{entry['ordinal']}"
            if entry["pod"] is None:
                state = "no pod" + ("" if entry["in_set"] else " (above the set: claim kept)")
            elif entry["ready"]:
                when = _when(entry["ready_since"])
                after = f"+{(when - first).total_seconds():.0f}s" if first and when else ""
                state = f"Ready at {when:%H:%M:%S} {after:>6}  on {entry['node']}"
            else:
                state = f"NOT Ready ({entry['waiting'] or entry['phase']}) on {entry['node'] or '-'}"
            stale = "" if entry["updated"] or entry["pod"] is None else "  (old revision)"
            lines.append(f"  {name:<12} {state}{stale}")
        for member in (sts.get("etcd") or {}).get("members") or []:
            flags = [f for f, on in (("leader", member["leader"]), ("learner", member["learner"]),
                                     ("healthy", member["healthy"])) if on]
            lines.append(f"  etcd member {member['name']} {member['id']}: {', '.join(flags) or 'unhealthy'}")
        if (sts.get("etcd") or {}).get("error"):
            lines.append(f"  etcd members not read: {sts['etcd']['error']}")
        for member in (sts.get("galera") or {}).get("members") or []:
            where = f"uuid {member['uuid']} seqno {member['seqno']}" if member["uuid"] else member["error"] or "-"
            state = (f"{member['state']}, {member['cluster_status']} component of {member['cluster_size']}"
                     if member["state"] else f"server not answering (phase {member['phase'] or '-'})")
            lines.append(f"  galera member {member['name']}: {state}; {where}")
        lines.extend(backup_lines(sts.get("backup")))
        lines.extend(archive_lines(sts.get("binlog_archive")))
    for dep in report["deployments"]:
        lines.append(f"{dep['name']} (Deployment): {dep['ready_replicas']}/{dep['replicas']} Ready")
    lines.append("")
    lines.append("-- Volumes (claim -> volume -> NFS)")
    for sts in report["statefulsets"]:
        for entry in sts["ordinals"]:
            for claim in entry["claims"]:
                lines.append(f"  {claim['name']:<24} {claim['phase'] or 'no claim':<8} -> {claim['volume'] or '-':<32} "
                             f"-> {claim['nfs'] or '-'}")
    lines.append("")
    lines.append("-- Autoscaling")
    for hpa in report["autoscalers"]:
        cpu = hpa["cpu_utilization"]
        current = "-" if cpu["current"] is None else f"{cpu['current']}%"
        target = "-" if cpu["target"] is None else f"{cpu['target']}%"
        lines.append(f"  {hpa['name']} ({hpa['target']}): current {hpa['current_replicas']} / desired "
                     f"{hpa['desired_replicas']} replicas (min {hpa['min_replicas']}, max {hpa['max_replicas']}; "
                     f"CPU {current} of target {target})")
    if not report["autoscalers"]:
        lines.append("  (no HorizontalPodAutoscaler)")
    return lines


def _q(value: str) -> str:
    """A Graphviz string: quotes escaped; a literal backslash-n in labels is Graphviz's line break."""
    return '"' + str(value).replace('"', '\\"') + '"'


def dot(report: dict) -> str:
    """The stack as a Graphviz graph: one box per node holding its pods, each pod -> its claims -> NFS paths."""
    out = ["digraph kubess {", "  rankdir=LR; fontname=Helvetica; node [fontname=Helvetica fontsize=10];",
           "  edge [color=gray40];"]
    by_node: dict[str, list[str]] = {}
    servers: dict[str, list[tuple[str, str]]] = {}
    for sts in report["statefulsets"]:
        for entry in sts["ordinals"]:
            pod_id = f"pod:{sts['name']}-{entry['ordinal']}"
            if entry["pod"] is not None:
                colour = "palegreen" if entry["ready"] else "lightsalmon"
                label = f"{sts['name']}-{entry['ordinal']}\\n{sts['kind']}" + ("" if entry["ready"] else "\\nnot Ready")
                by_node.setdefault(entry["node"] or "(not scheduled)", []).append(
                    f"    {_q(pod_id)} [label={_q(label)} shape=box style=\"rounded,filled\" fillcolor={colour}];")
            for claim in entry["claims"]:
                claim_id = f"pvc:{claim['name']}"
                fill = "lightblue" if claim["phase"] == "Bound" else "lightgray"
                label = claim["name"] + "\\n" + (claim["volume"] or "unbound")
                out.append(f"  {_q(claim_id)} [label={_q(label)} shape=cylinder style=filled fillcolor={fill}];")
                if entry["pod"] is not None:
                    out.append(f"  {_q(pod_id)} -> {_q(claim_id)};")
                if claim["nfs"]:
                    server, path = claim["nfs"].split(":", 1)
                    servers.setdefault(server, []).append((claim_id, path))
    for index, (node, pods) in enumerate(sorted(by_node.items())):
        out.append(f"  subgraph cluster_node_{index} {{ label={_q('node ' + node)}; style=rounded; color=gray50;")
        out.extend(pods)
        out.append("  }")
    for index, (server, paths) in enumerate(sorted(servers.items())):
        out.append(f"  subgraph cluster_nfs_{index} {{ label={_q('NFS server ' + server)}; style=dashed;")
        for claim_id, path in paths:
            out.append(f"    {_q('nfs:' + server + path)} [label={_q(path)} shape=folder];")
        out.append("  }")
        for claim_id, path in paths:
            out.append(f"  {_q(claim_id)} -> {_q('nfs:' + server + path)};")
    for dep in report["deployments"]:
        label = f"{dep['name']} Deployment\\n{dep['ready_replicas']}/{dep['replicas']} Ready"
        out.append(f"  {_q('Deployment/' + dep['name'])} [label={_q(label)} shape=box3d];")
    for hpa in report["autoscalers"]:
        label = (f"{hpa['name']} autoscaler\\nreplicas {hpa['current_replicas']} -> {hpa['desired_replicas']} "
                 f"({hpa['min_replicas']}..{hpa['max_replicas']})\\nCPU {hpa['cpu_utilization']['current']}% "
                 f"of {hpa['cpu_utilization']['target']}%")
        out.append(f"  {_q('hpa:' + hpa['name'])} [label={_q(label)} shape=note];")
        out.append(f"  {_q('hpa:' + hpa['name'])} -> {_q(hpa['target'])} [style=dashed label=scales];")
    out.append("}")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="the JSON written by playbooks/stack_info.yml")
    parser.add_argument("--dot", help="write the picture as Graphviz here")
    parser.add_argument("--svg", help="render the picture to this SVG file with Graphviz's dot")
    args = parser.parse_args()
    with open(args.report, encoding="utf-8") as fh:
        report = json.load(fh)
    print("\n".join(text(report)))
    graph = dot(report)
    if args.dot:
        with open(args.dot, "w", encoding="utf-8") as fh:
            fh.write(graph)
    if args.svg:
        tool = shutil.which("dot")
        if tool is None:
            print("Graphviz's dot is not installed: no picture", file=sys.stderr)
            return 1
        subprocess.run([tool, "-Tsvg", "-o", args.svg], input=graph, text=True, check=True)
        print(f"\nPicture: {args.svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
