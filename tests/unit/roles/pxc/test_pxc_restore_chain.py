"""The point-in-time restore's choice of transactions (chain() of files/pxc-restore.sh), run by bash and the system's
awk on a member's list of archived transactions: where the run after the backup starts, where it ends, and when the
archive cannot be used. The whole restore, with the real mariadb-binlog and server, is in test_pxc_mariadb.py."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

SCRIPT = (Path(__file__).resolve().parents[4] / "roles" / "pxc" / "files" / "pxc-restore.sh").read_text(encoding="utf-8")
CHAIN = re.search(r"^chain\(\) \{\n.*?^\}\n", SCRIPT, re.MULTILINE | re.DOTALL).group(0)

# The backup: its last transaction is number 10; begun at 10:00:00, ended at 10:00:30 (the script widens both by 300 s).
FROM, BEGAN, ENDED = 10, "20261204095500", "20261204100530"
OLD = "20261201T000000Z"  # the generation of a cluster of the same name, torn down before the backup
NEW = "20261204T090000Z"


def tx(seq: int, time: str, generation: str = NEW, file: str = "binlog.000001") -> str:
    """One line of transactions(): GTID, number, time, file, where it begins, where it ends."""
    return f"1-1-{seq} {seq} {time} /backup/binlogs/ns-pxc/pxc-0/{generation}/{file} {seq * 100} {seq * 100 + 99}"


def chain(tmp_path: Path, lines: list[str], to: str = "20261204120000") -> str:
    listed = tmp_path / "transactions"
    listed.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    result = subprocess.run(["bash", "-c", CHAIN + 'chain "$@"', "chain", str(FROM), to, ENDED, BEGAN, str(listed)],
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_the_run_after_the_backups_transaction_up_to_the_time(tmp_path):
    lines = [tx(9, "20261204093000"), tx(10, "20261204095900"), tx(11, "20261204101000"),
             tx(12, "20261204110000", file="binlog.000002"), tx(13, "20261204120000", file="binlog.000002")]
    assert chain(tmp_path, lines).split() == [
        "ok", "2", "1-1-11", "1-1-12", "20261204110000",
        f"/backup/binlogs/ns-pxc/pxc-0/{NEW}/binlog.000001", "1100",
        f"/backup/binlogs/ns-pxc/pxc-0/{NEW}/binlog.000002", "1299"]


def test_the_backups_transaction_of_another_history_under_the_same_name_is_not_the_start(tmp_path):
    # The torn-down cluster also had a number 10, 11 and 12, days before; the backup's history is the later one.
    lines = [tx(n, f"2026120100{n:02d}00", OLD) for n in range(8, 13)]
    lines += [tx(n, t) for n, t in ((9, "20261204093000"), (10, "20261204095900"), (11, "20261204101000"))]
    assert chain(tmp_path, lines).split()[:4] == ["ok", "1", "1-1-11", "1-1-11"]
    assert f"/{NEW}/" in chain(tmp_path, lines)


def test_a_pruned_backup_transaction_starts_the_run_at_the_next_one_committed_once_the_backup_began(tmp_path):
    lines = [tx(11, "20261201000000", OLD), tx(11, "20261204101000"), tx(12, "20261204101500")]
    assert chain(tmp_path, lines).split()[:4] == ["ok", "2", "1-1-11", "1-1-12"]


@pytest.mark.parametrize("lines, expected", [
    # Neither the backup's transaction nor the next one: nothing shows that none was committed after the backup.
    ([tx(12, "20261204101000")], "none"),
    ([], "none"),
    # A number missing after the start.
    ([tx(10, "20261204095900"), tx(11, "20261204101000"), tx(13, "20261204101500")], "gap 12"),
    # Nothing committed between the backup and the time.
    ([tx(10, "20261204095900"), tx(11, "20261204130000")], "ok 0"),
])
def test_when_the_archive_cannot_be_used_or_holds_nothing_to_apply(tmp_path, lines, expected):
    assert chain(tmp_path, lines) == expected


def test_the_run_ends_where_another_history_starts(tmp_path):
    # A cluster made again under the same name after the backup (numbers from 1 again): its transactions are not
    # the backup's cluster's.
    later = "20261204T102900Z"
    lines = [tx(10, "20261204095900"), tx(11, "20261204101000"), tx(1, "20261204103000", later)]
    lines += [tx(n, f"202612041040{n:02d}", later) for n in range(2, 14)]
    result = chain(tmp_path, lines).split()
    assert result[:4] == ["ok", "1", "1-1-11", "1-1-11"] and f"/{NEW}/" in result[5], result


def test_a_backup_that_holds_a_transaction_of_the_time_or_later_is_too_new(tmp_path):
    # Committed while the backup ran (10:00:20), after the time asked for (10:00:10).
    lines = [tx(10, "20261204100020"), tx(11, "20261204100100")]
    assert chain(tmp_path, lines, to="20261204100010") == "late 20261204100020"


MEMBER_FILES = re.search(r"^member_files\(\) \{\n.*?^\}\n", SCRIPT, re.MULTILINE | re.DOTALL).group(0)


def test_only_the_files_written_since_an_hour_before_the_backup_and_the_last_one_before_are_read(tmp_path):
    began = 1_796_378_400  # the backup began 2026-12-04T10:00:00Z
    written = {"20261201T000000Z/binlog.000001": began - 3 * 86400, "20261201T000000Z/binlog.000002": began - 7200,
               "20261204T090000Z/binlog.000001": began - 5400, "20261204T090000Z/binlog.000002": began - 1800,
               "20261204T090000Z/binlog.000003": began + 600}
    for name, when in written.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("events", encoding="utf-8")
        os.utime(tmp_path / name, (when, when))
    result = subprocess.run(["bash", "-c", "shopt -s nullglob\n" + MEMBER_FILES + 'member_files "$@"', "files",
                             str(tmp_path), str(began)], capture_output=True, text=True, check=True)
    assert result.stdout.split() == [str(tmp_path / name) for name in (
        "20261204T090000Z/binlog.000001", "20261204T090000Z/binlog.000002", "20261204T090000Z/binlog.000003")]
    # An archive with nothing older: every file.
    for name in written:
        os.utime(tmp_path / name, (began, began))
    result = subprocess.run(["bash", "-c", "shopt -s nullglob\n" + MEMBER_FILES + 'member_files "$@"', "files",
                             str(tmp_path), str(began)], capture_output=True, text=True, check=True)
    assert len(result.stdout.split()) == 5
