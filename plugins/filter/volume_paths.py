# Copyright (c) kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn the pv_provisioning description of volumes into names and NFS paths.

One source of truth for the names of the PersistentVolumes, the claims they are bound to and the
directories on the NFS server (with the owner each workload runs as): the pv_provisioning role and the site
playbook's NFS play derive them from one volume layout with these filters, so they cannot drift apart.

The documentation of each filter is in the YAML file of the same name beside this one.
"""

from __future__ import annotations

import posixpath
import re
from fractions import Fraction

from ansible.errors import AnsibleFilterError

DEFAULT_EXPORT_ROOT = "/srv/nfs/kubess"
DEFAULT_TEMPLATE = "data"
DEFAULT_STATEFULSET_ACCESS_MODES = ("ReadWriteOnce",)
DEFAULT_SHARED_ACCESS_MODES = ("ReadWriteMany",)
MANAGED_BY = "kubess.stateful"

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


def k8s_quantity(value):
    """Return the canonical form Kubernetes stores for a positive storage quantity.

    ``1024Mi`` becomes ``1Gi``, ``1.5Gi`` becomes ``1536Mi``, ``1000M`` becomes ``1G``: the API server
    rewrites quantities that way, so a manifest written with the canonical form compares equal to what
    the server returns (and a second run reports no change).
    """
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise AnsibleFilterError(
            f"{value!r} is not a storage quantity: expected a positive number with an optional suffix "
            "(Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P, E), e.g. 1Gi or 500Mi"
        )
    suffix = match.group("suffix") or ""
    binary = suffix in _BINARY
    amount = Fraction(match.group("number")) * (_BINARY[suffix] if binary else _DECIMAL[suffix])
    if amount <= 0:
        raise AnsibleFilterError(f"{value!r} is not a positive storage quantity")
    if amount.denominator != 1:
        raise AnsibleFilterError(f"{value!r} is not a whole number of bytes")
    amount = int(amount)
    table = _BINARY if binary else _DECIMAL
    for name, factor in sorted(table.items(), key=lambda kv: kv[1], reverse=True):
        if amount % factor == 0:
            # Kubernetes keeps a binary quantity that is not a multiple of 1Ki in plain bytes.
            return f"{amount // factor}{name}"
    return str(amount)


def _require(entry, key, where):
    if not isinstance(entry, dict):
        raise AnsibleFilterError(f"{where} must be a dictionary, got {type(entry).__name__}")
    if entry.get(key) in (None, ""):
        raise AnsibleFilterError(f"{where} has no {key!r}")
    return entry[key]


def _size(entry, where):
    try:
        return k8s_quantity(_require(entry, "size", where))
    except AnsibleFilterError as exc:
        raise AnsibleFilterError(f"{where}.size: {exc.message}") from None


def _access_modes(entry, default, where):
    modes = entry.get("access_modes")
    if modes in (None, ""):
        return list(default)
    if isinstance(modes, str) or not isinstance(modes, (list, tuple)):
        raise AnsibleFilterError(f"{where}.access_modes must be a list, got {modes!r}")
    return [str(m) for m in modes]


def _replicas(entry, where):
    value = _require(entry, "replicas", where)
    if isinstance(value, bool):
        raise AnsibleFilterError(f"{where}.replicas must be an integer, got {value!r}")
    try:
        replicas = int(str(value))
    except ValueError:
        raise AnsibleFilterError(f"{where}.replicas must be an integer, got {value!r}") from None
    if replicas < 1:
        raise AnsibleFilterError(f"{where}.replicas must be at least 1, got {value!r}")
    return replicas


def _root(export_root):
    root = str(export_root or DEFAULT_EXPORT_ROOT)
    if not root.startswith("/"):
        raise AnsibleFilterError(f"the export root must be an absolute path, got {export_root!r}")
    return posixpath.normpath(root)


def _owner(entry, where):
    """uid, gid and mode of the volume's directory: who the workload runs as (root, 0750 when not said)."""
    out = {}
    for key, default in (("owner", 0), ("group", 0)):
        value = entry.get(key, default)
        if isinstance(value, bool) or not str(value).isdigit():
            raise AnsibleFilterError(f"{where}.{key} must be a numeric id (0 or more), got {value!r}")
        out[key] = int(value)
    mode = str(entry.get("mode") or "0750")
    if not re.match(r"^0?[0-7]{3,4}$", mode):
        raise AnsibleFilterError(f"{where}.mode must be an octal string such as '0750', got {mode!r}")
    out["mode"] = mode if len(mode) == 4 else "0" + mode
    return out


def _directory(root, where, entry, namespace, claim):
    """The volume's directory: ``<root>/<namespace>/<claim>``, or a shared claim's own ``directory`` under the root
    (the same directory for claims of several namespaces, e.g. the backups a restore in a new namespace reads)."""
    given = entry.get("directory")
    if given in (None, ""):
        return posixpath.join(root, namespace, claim)
    text = str(given)
    if entry.get("statefulset"):
        raise AnsibleFilterError(f"{where}.directory is for a shared claim only, not a StatefulSet's volumes")
    parts = text.split("/")
    if text.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise AnsibleFilterError(f"{where}.directory must be a relative path under the export root without empty, "
                                 f"'.' or '..' parts, got {given!r}")
    return posixpath.join(root, text)


def _record(root, where, entry, namespace, claim, storage_class, **fields):
    return {
        "pv": f"{namespace}-{claim}",
        "pvc": claim,
        "namespace": namespace,
        "path": _directory(root, where, entry, namespace, claim),
        "size": _size(entry, where),
        "storage_class": str(entry.get("storage_class") or storage_class or ""),
        **_owner(entry, where),
        **fields,
    }


def nfs_volume_paths(volumes, export_root=DEFAULT_EXPORT_ROOT, storage_class=""):
    """One record per volume: the PV, the claim bound to it and its directory under the export root.

    ``volumes`` is the layout: each entry either names a ``statefulset`` (one volume per ordinal, for the claim
    ``<template>-<statefulset>-<ordinal>``) or a ``claim`` shared by several pods. Records follow the layout's
    order, by ordinal within a StatefulSet.
    """
    root = _root(export_root)
    records = []
    for index, entry in enumerate(volumes or []):
        where = f"volumes[{index}]"
        if not isinstance(entry, dict):
            raise AnsibleFilterError(f"{where} must be a dictionary, got {type(entry).__name__}")
        if bool(entry.get("statefulset")) == bool(entry.get("claim")):
            raise AnsibleFilterError(f"{where} must name either a statefulset or a claim, got {entry!r}")
        namespace = str(_require(entry, "namespace", where))
        if entry.get("claim"):
            claim = str(entry["claim"])
            records.append(_record(root, where, entry, namespace, claim, storage_class,
                                   access_modes=_access_modes(entry, DEFAULT_SHARED_ACCESS_MODES, where),
                                   kind="shared", statefulset=None, ordinal=None, volume=claim))
            continue
        name = str(entry["statefulset"])
        template = str(entry.get("template") or DEFAULT_TEMPLATE)
        modes = _access_modes(entry, DEFAULT_STATEFULSET_ACCESS_MODES, where)
        for ordinal in range(_replicas(entry, where)):
            records.append(_record(root, where, entry, namespace, f"{template}-{name}-{ordinal}", storage_class,
                                   access_modes=modes, kind="statefulset", statefulset=name, ordinal=ordinal,
                                   volume=None))
    return records


def volume_layout_problems(volumes, storage_class="", static=True):
    """What is wrong with each entry of a volume layout, one message per problem ("entry <n> (<what>): ...").

    The names are checked with the rules of plugins/test/k8s_names.py; in static mode every entry needs a storage
    class, since the PersistentVolume and the claim meet through it.
    """
    from ansible_collections.kubess.stateful.plugins.test.k8s_names import RULES

    if not isinstance(volumes, list):
        return [f"must be a list of volumes, got {type(volumes).__name__}"]
    problems = []
    for index, entry in enumerate(volumes):
        what = f"entry {index}"
        if isinstance(entry, dict):
            what += f" ({'StatefulSet ' + str(entry['statefulset']) if entry.get('statefulset') else 'claim ' + str(entry.get('claim'))})"
        try:
            nfs_volume_paths([entry], DEFAULT_EXPORT_ROOT, storage_class)
        except AnsibleFilterError as exc:
            problems.append(f"{what}: {exc.message.replace('volumes[0].', '', 1).replace('volumes[0]', 'it', 1)}")
            continue
        checks = [("namespace", RULES["dns_label"](entry["namespace"]))]
        if entry.get("statefulset"):
            checks += [("statefulset", RULES["dns_label"](entry["statefulset"], max_length=52)),
                       ("template", RULES["dns_label"](entry.get("template") or DEFAULT_TEMPLATE))]
        else:
            checks.append(("claim", RULES["dns_label"](entry["claim"])))
        if entry.get("storage_class") or storage_class:
            checks.append(("storage_class", RULES["dns_subdomain"](entry.get("storage_class") or storage_class)))
        elif static:
            checks.append(("storage_class", "must be set: a static PersistentVolume meets its claim through it"))
        problems += [f"{what}: {key} {problem}" for key, problem in checks if problem]
    return problems


def nfs_directories(volumes, export_root=DEFAULT_EXPORT_ROOT):
    """The NFS server's directories for the layout: path relative to the export root, owner, group, mode."""
    root = _root(export_root)
    out = {}
    for record in nfs_volume_paths(volumes, root):
        directory = {"path": posixpath.relpath(record["path"], root), "owner": record["owner"],
                     "group": record["group"], "mode": record["mode"]}
        seen = out.setdefault(directory["path"], directory)
        if seen != directory:
            raise AnsibleFilterError(f"the directory {directory['path']} is shared by volumes that want different "
                                     f"owners or modes: {seen} and {directory}")
    return list(out.values())


def _by_key(objects, *keys):
    index = {}
    for obj in objects or []:
        meta = obj.get("metadata") or {}
        index[tuple(meta.get(k) for k in keys)] = obj
    return index


def _pv_conflicts(record, pv, nfs_server):
    name = record["pv"]
    problems = []
    meta = pv.get("metadata") or {}
    spec = pv.get("spec") or {}
    if (meta.get("labels") or {}).get("app.kubernetes.io/managed-by") != MANAGED_BY:
        problems.append(
            f"PersistentVolume {name} exists but is not managed by {MANAGED_BY} "
            f"(label app.kubernetes.io/managed-by={MANAGED_BY} missing): it is left alone; "
            "remove it or give the volume another name"
        )
        return problems
    nfs = spec.get("nfs")
    if not nfs:
        problems.append(f"PersistentVolume {name} exists with a volume source other than NFS")
    else:
        if nfs.get("server") != nfs_server:
            problems.append(
                f"PersistentVolume {name} points at NFS server {nfs.get('server')!r}, "
                f"pv_provisioning_nfs_server is {nfs_server!r} (the volume source cannot be changed)"
            )
        if posixpath.normpath(str(nfs.get("path", ""))) != record["path"]:
            problems.append(
                f"PersistentVolume {name} has NFS path {nfs.get('path')!r}, wanted {record['path']!r} "
                "(the volume source cannot be changed; check pv_provisioning_nfs_export_root)"
            )
    if spec.get("storageClassName", "") != record["storage_class"]:
        problems.append(
            f"PersistentVolume {name} has storageClassName {spec.get('storageClassName')!r}, "
            f"the volume layout says {record['storage_class']!r} (the storage class of the claims)"
        )
    if spec.get("volumeMode", "Filesystem") != "Filesystem":
        problems.append(f"PersistentVolume {name} has volumeMode {spec.get('volumeMode')!r}, wanted 'Filesystem'")
    ref = spec.get("claimRef") or {}
    if ref and (ref.get("namespace"), ref.get("name")) != (record["namespace"], record["pvc"]):
        problems.append(
            f"PersistentVolume {name} is reserved for claim {ref.get('namespace')}/{ref.get('name')}, "
            f"not {record['namespace']}/{record['pvc']}"
        )
    return problems


def _pvc_conflicts(record, pvc, static):
    where = f"PersistentVolumeClaim {record['namespace']}/{record['pvc']}"
    spec = pvc.get("spec") or {}
    problems = []
    if spec.get("storageClassName") != record["storage_class"]:
        problems.append(
            f"{where} exists with storageClassName {spec.get('storageClassName')!r}, "
            f"the volume layout says {record['storage_class']!r} (a claim's class cannot be changed)"
        )
    if static and spec.get("volumeName") and spec.get("volumeName") != record["pv"]:
        problems.append(
            f"{where} is bound to PersistentVolume {spec.get('volumeName')!r}, not to {record['pv']!r} "
            "made for it"
        )
    if record["kind"] == "shared":
        if sorted(spec.get("accessModes") or []) != sorted(record["access_modes"]):
            problems.append(
                f"{where} exists with access modes {spec.get('accessModes')}, wanted {record['access_modes']} "
                "(a claim's access modes cannot be changed)"
            )
        requested = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        if requested is not None:
            try:
                same = k8s_quantity(requested) == record["size"]
            except AnsibleFilterError:
                same = False
            if not same and static:
                problems.append(
                    f"{where} requests {requested}, wanted {record['size']} "
                    "(a claim on a static NFS volume cannot be resized)"
                )
    return problems


def nfs_volume_check(records, pvs=None, pvcs=None, nfs_server="", static=True):
    """Compare the wanted volumes with what the cluster already holds.

    Returns ``conflicts`` (messages about existing objects that cannot be made to match without deleting
    them), ``released`` (names of our PersistentVolumes whose claim was deleted: phase Released, claimRef
    still naming the old claim's uid), ``existing_pvs`` and ``missing_pvs`` (names).
    """
    pv_index = _by_key(pvs, "name")
    pvc_index = _by_key(pvcs, "namespace", "name")
    conflicts, released, existing, missing = [], [], [], []
    owners = {}
    for record in records or []:
        owner = f"{record['kind']} {record['statefulset'] or record['volume']} in {record['namespace']}"
        for what in (f"PersistentVolume {record['pv']}",
                     f"PersistentVolumeClaim {record['namespace']}/{record['pvc']}"):
            if what in owners:
                conflicts.append(f"{what} is wanted twice: by {owners[what]} and by {owner}")
            owners.setdefault(what, owner)
        pvc = pvc_index.get((record["namespace"], record["pvc"]))
        if pvc is not None:
            conflicts.extend(_pvc_conflicts(record, pvc, static))
        if not static:
            continue
        pv = pv_index.get((record["pv"],))
        if pv is None:
            missing.append(record["pv"])
            continue
        existing.append(record["pv"])
        problems = _pv_conflicts(record, pv, nfs_server)
        conflicts.extend(problems)
        if problems:
            continue
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        phase = (pv.get("status") or {}).get("phase")
        if phase == "Released" and ref.get("uid"):
            current = pvc_index.get((record["namespace"], record["pvc"]))
            if current is None or (current.get("metadata") or {}).get("uid") != ref.get("uid"):
                released.append(record["pv"])
    return {"conflicts": conflicts, "released": released, "existing_pvs": existing, "missing_pvs": missing}


def directories_to_fix(directories, existing, export_root, parent_owner=0, parent_group=0, parent_mode="0755"):
    """The directories (``{path, owner, group, mode}``, relative to ``export_root``) that do not exist yet or have
    another owner, group or mode than ``existing`` (the ``files`` that ansible.builtin.find returns) shows.

    A volume's directory may sit below others (``<namespace>/<claim>``): those parents come first, owned by
    ``parent_owner``/``parent_group`` with ``parent_mode``, which must let every workload's uid and the anonymous uid
    of a root-squashed mount traverse them (the mount itself looks the path up as that user). Left to the file module,
    a parent would get the owner and mode of the first volume made below it, and shut the others out."""
    root = posixpath.normpath(str(export_root))
    found = {posixpath.normpath(str(f.get("path"))): f for f in existing or []}
    volumes = [dict(entry, path=str(entry["path"]).strip("/")) for entry in directories or []]
    own = {entry["path"] for entry in volumes}
    parents = []
    for entry in volumes:
        parts = entry["path"].split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if path not in own and path not in [p["path"] for p in parents]:
                parents.append({"path": path, "owner": int(parent_owner), "group": int(parent_group),
                                "mode": str(parent_mode)})
    todo = []
    for entry in parents + volumes:
        have = found.get(posixpath.join(root, entry["path"]))
        if (have is None or int(have.get("uid", -1)) != int(entry["owner"])
                or int(have.get("gid", -1)) != int(entry["group"])
                or int(str(have.get("mode", "0")), 8) != int(str(entry["mode"]), 8)):
            todo.append(entry)
    return todo


class FilterModule:
    """kubess.stateful volume filters."""

    def filters(self):
        return {
            "nfs_volume_paths": nfs_volume_paths,
            "nfs_directories": nfs_directories,
            "volume_layout_problems": volume_layout_problems,
            "directories_to_fix": directories_to_fix,
            "nfs_volume_check": nfs_volume_check,
            "k8s_quantity": k8s_quantity,
        }
