"""The names of the backups each role stores on a backup volume that clusters in other namespaces may share: every
cluster's prefix is its own, so one cluster's retention never deletes, and its point-in-time restore never replays,
another's. And the name of the backup a cluster was made from, which its StatefulSet keeps."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from role_vars import render  # noqa: E402 pylint: disable=wrong-import-position

ROLES = ["etcd", "pxc", "mysql_replication"]


@pytest.mark.parametrize("role", ROLES)
def test_clusters_whose_namespace_and_name_join_alike_get_prefixes_of_their_own(role):
    # With '-' between them, shop-eu/db and shop/eu-db both gave shop-eu-db.
    prefixes = [render(role, f"{role}__backup_prefix", {f"{role}_namespace": namespace, f"{role}_name": name})
                for namespace, name in (("shop-eu", "db"), ("shop", "eu-db"))]
    assert prefixes == ["shop-eu_db", "shop_eu-db"]


@pytest.mark.parametrize("role, source", [("etcd", "kubess_etcd-20201231T000000Z.db"),
                                          ("pxc", "kubess_pxc-20201231T000000Z.mbstream.gz to 2021-01-01T00:00:00Z"),
                                          ("mysql_replication", "kubess_mysql-20201231T000000Z.xbstream.gz")])
def test_a_run_without_a_restore_keeps_the_backup_the_cluster_was_made_from(role, source):
    # Server-side apply would remove an annotation the manifest no longer lists: the run after a restore would
    # report a change, and the same restore command later would be refused over the cluster it made.
    made_from = {"metadata": {"name": "x", "annotations": {"kubess.io/restored-from": source}}}
    for existing, annotations in (([made_from], {"kubess.io/restored-from": source}), ([], {})):
        (made,) = [m for m in render(role, f"{role}__manifests", {},
                                     facts={f"{role}__cluster": {"statefulset": existing, "nodes": []}})
                   if m["kind"] == "StatefulSet"]
        assert annotations.items() <= (made["metadata"].get("annotations") or {}).items()
        assert annotations or "kubess.io/restored-from" not in (made["metadata"].get("annotations") or {})
