"""When the wordpress role reads the cluster again in its own run of the site playbook, and when it reuses what the
site's first play read: again only while the database Secret was missing or incomplete then (on a first run the pxc
role makes it after that play)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from role_vars import render  # noqa: E402 pylint: disable=wrong-import-position

WHOLE = {"wordpress-database": "d", "wordpress-user": "u", "wordpress-password": "p"}


@pytest.mark.parametrize("read, again", [
    ({"reusable": True, "db_secret": [{"data": WHOLE}]}, False),
    ({"reusable": True, "db_secret": []}, True),
    ({"reusable": True, "db_secret": [{"data": {"wordpress-user": "u", "wordpress-password": "p"}}]}, True),
    ({"reusable": False, "db_secret": [{"data": WHOLE}]}, True),
    ({"reusable": True, "key": "read for other input", "db_secret": [{"data": WHOLE}]}, True),
])
def test_the_role_reads_again_unless_the_first_play_found_the_database_secret_whole(read, again):
    cluster = dict({"key": "{{ wordpress__cluster_key }}"}, **read)
    assert render("wordpress", "wordpress__read_cluster", {}, facts={"wordpress__cluster": cluster}) is again


def test_a_role_run_alone_reads():
    assert render("wordpress", "wordpress__read_cluster", {}) is True
