"""The names of the backups each role stores on a backup volume that clusters in other namespaces may share: every
cluster's prefix is its own, so one cluster's retention never deletes, and its point-in-time restore never replays,
another's."""

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
