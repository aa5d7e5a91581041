"""The point-in-time restore's reading and choice of transactions (transactions(), chain() and member_files() of
files/pxc-restore.sh), run by bash and the system's awk: each whole transaction of a decoded binary log with where
it begins and ends (fixtures/decoded-binlog.txt is the real mariadb-binlog's text of a MariaDB 10.11 binary log);
where the run after the backup starts and ends, and when a member's archive cannot be used; which files are read.
The whole restore, with the real mariadb-binlog and server, is in test_pxc_mariadb.py."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

SCRIPT = (Path(__file__).resolve().parents[4] / "roles" / "pxc" / "files" / "pxc-restore.sh").read_text(encoding="utf-8")
CHAIN = re.search(r"^chain\(\) \{\n.*?^\}\n", SCRIPT, re.MULTILINE | re.DOTALL).group(0)

# The backup: its last transaction is number 10; begun at 10:00:00, ended at 10:00:30 (the script gives chain() the
# beginning an hour earlier, the end 300 s later).
FROM, BEGAN, ENDED = 10, "20261204090000", "20261204100530"
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
        "ok", "2", "1", "1-1-11", "1-1-12", "20261204110000",
        f"/backup/binlogs/ns-pxc/pxc-0/{NEW}/binlog.000001", "1100",
        f"/backup/binlogs/ns-pxc/pxc-0/{NEW}/binlog.000002", "1299"]


def test_the_backups_transaction_of_another_history_under_the_same_name_is_not_the_start(tmp_path):
    # The torn-down cluster also had a number 10, 11 and 12, days before; the backup's history is the later one.
    lines = [tx(n, f"2026120100{n:02d}00", OLD) for n in range(8, 13)]
    lines += [tx(n, t) for n, t in ((9, "20261204093000"), (10, "20261204095900"), (11, "20261204101000"))]
    assert chain(tmp_path, lines).split()[:5] == ["ok", "1", "0", "1-1-11", "1-1-11"]
    assert f"/{NEW}/" in chain(tmp_path, lines)


def test_a_pruned_backup_transaction_starts_the_run_at_the_next_one_committed_once_the_backup_began(tmp_path):
    lines = [tx(11, "20261201000000", OLD), tx(11, "20261204101000"), tx(12, "20261204101500")]
    assert chain(tmp_path, lines).split()[:5] == ["ok", "2", "0", "1-1-11", "1-1-12"]


@pytest.mark.parametrize("lines, expected", [
    # Neither the backup's transaction nor the next one: nothing shows that none was committed after the backup.
    ([tx(12, "20261204101000")], "none"),
    ([], "none"),
    # A number missing after the start.
    ([tx(10, "20261204095900"), tx(11, "20261204101000"), tx(13, "20261204101500")], "gap 12"),
    # Nothing committed between the backup and the time, and the archive goes on past it.
    ([tx(10, "20261204095900"), tx(11, "20261204130000")], "ok 0 1"),
    # A number missing, although the next one is after the time: the missing one may be before it.
    ([tx(10, "20261204095900"), tx(11, "20261204101000"), tx(13, "20261204123000")], "gap 12"),
    # The only file read is the last of a torn-down cluster that also reached 10 and beyond, days before: its
    # transactions after 10 were begun before the backup, so they are not the backup's cluster's.
    ([tx(n, f"2026120100{n:02d}00", OLD) for n in range(8, 15)], "none"),
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
    assert result[:5] == ["ok", "1", "0", "1-1-11", "1-1-11"] and f"/{NEW}/" in result[6], result


def test_a_backup_that_holds_a_transaction_of_the_time_or_later_is_too_new(tmp_path):
    # Committed while the backup ran (10:00:20), after the time asked for (10:00:10).
    lines = [tx(10, "20261204100020"), tx(11, "20261204100100")]
    assert chain(tmp_path, lines, to="20261204100010") == "late 20261204100020"


def test_with_the_backups_transaction_pruned_a_time_before_the_backup_ended_is_refused(tmp_path):
    # Its own transaction not found, the backup may hold transactions up to its end (10:05:30, with the margin).
    lines = [tx(11, "20261204100010"), tx(12, "20261204101000")]
    assert chain(tmp_path, lines, to="20261204100100") == "late 20261204100530"
    assert chain(tmp_path, lines, to="20261204100600").split()[:3] == ["ok", "1", "1"]


def test_a_run_that_ends_before_the_time_says_so(tmp_path):
    # The archive stops (its container down, say) before the time: the run is used, and not said to reach it.
    assert chain(tmp_path, [tx(10, "20261204095900"), tx(11, "20261204101000")]).split()[:3] == ["ok", "1", "0"]


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


TRANSACTIONS = re.search(r"^transactions\(\) \{\n.*?^\}\n", SCRIPT, re.MULTILINE | re.DOTALL).group(0)
DECODED = (Path(__file__).parent / "fixtures" / "decoded-binlog.txt").read_text(encoding="utf-8")
# (GTID, where it begins, where it ends) of every transaction of the domain 1 in the fixture: DDL (1, 2, 4, 6), a
# transaction on InnoDB ending in its Xid (3), on MyISAM and Aria ending in a query COMMIT (5, 7), CREATE TABLE ...
# SELECT, a DDL with rows, ending in its Xid (8), CREATE USER and GRANT (11, 12), a procedure (13); 2-1-1, of
# another domain, is not listed.
WHOLE = [("1-1-1", "325", "448"), ("1-1-2", "448", "621"), ("1-1-3", "621", "831"), ("1-1-4", "831", "997"),
         ("1-1-5", "997", "1238"), ("1-1-6", "1238", "1402"), ("1-1-7", "1402", "1643"), ("1-1-8", "1643", "2033"),
         ("1-1-9", "2033", "2274"), ("1-1-10", "2274", "2484"), ("1-1-11", "2694", "2834"),
         ("1-1-12", "2834", "2983"), ("1-1-13", "2983", "3407"), ("1-1-14", "3407", "3590"),
         ("1-1-15", "3590", "3800")]


def transactions(tmp_path: Path, text: str) -> list[tuple[str, str, str]]:
    decoder = tmp_path / "mariadb-binlog"
    decoder.write_text('#!/bin/sh\ncat "$DECODED_TEXT"\n', encoding="utf-8")
    decoder.chmod(0o755)
    (tmp_path / "decoded.txt").write_text(text, encoding="utf-8")
    result = subprocess.run(["bash", "-c", TRANSACTIONS + 'binlog_tool=$1 domain=1; shift; transactions "$@"', "tx",
                             str(decoder), "/archive/binlog.000001"], capture_output=True, text=True, check=True,
                            env=dict(os.environ, DECODED_TEXT=str(tmp_path / "decoded.txt")))
    rows = [line.split() for line in result.stdout.splitlines()]
    assert all(row[1:4] == [row[0].split("-")[2], "20261204080701", "/archive/binlog.000001"] for row in rows), rows
    return [(row[0], row[4], row[5]) for row in rows]


def test_every_whole_transaction_of_the_domain_with_where_it_begins_and_ends(tmp_path):
    assert transactions(tmp_path, DECODED) == WHOLE


@pytest.mark.parametrize("cut_before, whole", [
    ("end_log_pos 3800 CRC32 0xacb9a134", 14),  # the last transaction's Xid not there yet
    ("end_log_pos 2033 CRC32 0xba2a1a8c", 7),  # CREATE TABLE ... SELECT cut after its CREATE, before its rows' Xid
    ("end_log_pos 1238 CRC32 0x4c021dc2", 4),  # a MyISAM insert cut before its query COMMIT
])
def test_a_file_cut_short_ends_with_its_last_whole_transaction(tmp_path, cut_before, whole):
    cut = DECODED[:DECODED.index(cut_before)]
    cut = cut[:cut.rindex("\n# at ") + 1]
    assert transactions(tmp_path, cut) == WHOLE[:whole]
