"""The pxc role's binlog-archive script (files/pxc-binlog-archive.sh), run by bash against a stand-in client and
mariadb-binlog: where each attempt goes on from (which file, which generation directory), whatever the archive and
the member hold. The real mariadb-binlog streaming from a real member is in test_pxc_mariadb.py."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROLE = Path(__file__).resolve().parents[4] / "roles" / "pxc"
# The client answers SHOW BINARY LOGS from $STUB_DIR/logs (a warning first, as a client may print one).
CLIENT = """#!/bin/sh
echo "Warning: a warning the client printed" >&2
cat "$STUB_DIR/logs"
"""
# mariadb-binlog: the first event of a file (--stop-position) is the first line of an archived file, or
# $STUB_DIR/start.<name> for the member's; a stream (--raw) is recorded, then ends as when the member goes away.
BINLOG = """#!/bin/bash
last=${*: -1}
case " $* " in
  *" --raw "*)
    for arg; do case $arg in --result-file=*) into=${arg#--result-file=} ;; esac; done
    printf '%s %s\\n' "$into" "$last" >>"$STUB_DIR/fetches"
    exit 1 ;;
  *" --read-from-remote-server "*) cat "$STUB_DIR/start.$last" ;;
  *) head -n 1 "$last" ;;
esac
"""
OLD_START = "#261201  3:50:54 server id 1  end_log_pos 256  Start: binlog v 4 created 261201  3:50:54 at startup"
NEW_START = "#261204  4:22:11 server id 1  end_log_pos 256  Start: binlog v 4 created 261204  4:22:11 at startup"
GENERATION = "20261201T035054Z"


def archive_once(tmp_path: Path, archived: dict[str, str], member: dict[str, tuple[int, str]]) -> tuple[list, str]:
    """One attempt of the script: ``archived`` maps paths under the member's archive directory to their contents,
    ``member`` each binary log file of the member to its size and first event. Returns the fetches asked for
    (directory, first file) and the script's log."""
    bin_dir, stub, archive = tmp_path / "bin", tmp_path / "stub", tmp_path / "backup" / "ns-pxc" / "pxc-0"
    for directory in (bin_dir, stub, archive):
        directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("mariadb", CLIENT), ("mariadb-binlog", BINLOG)):
        (bin_dir / name).write_text(text, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    for relative, text in archived.items():
        (archive / relative).parent.mkdir(parents=True, exist_ok=True)
        (archive / relative).write_text(text, encoding="utf-8")
    (stub / "logs").write_text("".join(f"{name}\t{size_start[0]}\n" for name, size_start in member.items()),
                               encoding="utf-8")
    for name, size_start in member.items():
        (stub / f"start.{name}").write_text(size_start[1] + "\n", encoding="utf-8")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_DIR=str(stub), KUBESS_BACKUP_USER="mariabackup",
               KUBESS_BACKUP_PASSWORD="s3cret-backup-pw", KUBESS_BINLOG_DIR=str(archive), KUBESS_BINLOG_RETRY="600")
    proc = subprocess.Popen(["bash", str(ROLE / "files" / "pxc-binlog-archive.sh")], env=env,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    # A script that never ends its attempt is killed: the test then fails on its exit status, it does not hang.
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        # The attempt is over when the stand-in stream has ended; the script then waits KUBESS_BINLOG_RETRY.
        for line in proc.stderr:
            lines.append(line)
            if "stopped (exit code" in line or "cannot" in line:
                break
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        watchdog.cancel()
        proc.kill()
    fetches = [line.split() for line in (stub / "fetches").read_text(encoding="utf-8").splitlines()] \
        if (stub / "fetches").exists() else []
    return [(Path(into).name, name) for into, name in fetches], "".join(lines)


def body(start: str, size: int) -> str:
    """An archived file's contents: its first event, padded to ``size`` bytes."""
    return (start + "\n").ljust(size, "x")


def test_an_empty_archive_starts_a_generation_from_the_members_first_file(tmp_path):
    before = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    fetches, log = archive_once(tmp_path, {}, {"binlog.000003": (500, NEW_START), "binlog.000004": (300, NEW_START)})
    ((generation, name),) = fetches
    assert name == "binlog.000003" and generation >= before, log
    assert "Warning" not in log


def test_a_whole_archived_file_is_not_fetched_again_the_next_one_is(tmp_path):
    fetches, log = archive_once(tmp_path, {f"{GENERATION}/binlog.000002": body(OLD_START, 500)},
                                {"binlog.000002": (500, OLD_START), "binlog.000003": (120, OLD_START)})
    assert fetches == [(GENERATION, "binlog.000003")]


def test_a_file_the_member_still_writes_or_an_incomplete_one_is_fetched_again_whole(tmp_path):
    fetches, log = archive_once(tmp_path, {f"{GENERATION}/binlog.000002": body(OLD_START, 300)},
                                {"binlog.000002": (500, OLD_START)})
    assert fetches == [(GENERATION, "binlog.000002")]
    fetches, log = archive_once(tmp_path / "cut", {f"{GENERATION}/binlog.000002": "\x00\x01"},
                                {"binlog.000002": (500, OLD_START), "binlog.000003": (120, OLD_START)})
    assert fetches == [(GENERATION, "binlog.000002")] and "incomplete in the archive" in log


@pytest.mark.parametrize("member, reason", [
    ({"binlog.000001": (400, NEW_START), "binlog.000002": (900, NEW_START)}, "is not the one archived"),
    ({"binlog.000001": (400, NEW_START)}, "is no longer on the member"),
], ids=["same-name-another-file", "gone"])
def test_a_member_whose_log_began_again_gets_a_new_generation_and_nothing_is_overwritten(tmp_path, member, reason):
    archived = {f"{GENERATION}/binlog.000001": body(OLD_START, 700), f"{GENERATION}/binlog.000002": body(OLD_START, 500)}
    fetches, log = archive_once(tmp_path, archived, member)
    ((generation, name),) = fetches
    assert reason in log and generation > GENERATION and name == "binlog.000001"
    archive = tmp_path / "backup" / "ns-pxc" / "pxc-0" / GENERATION
    assert {p.name: p.read_text(encoding="utf-8") for p in archive.iterdir()} == archived_names(archived)


def archived_names(archived: dict[str, str]) -> dict[str, str]:
    return {Path(relative).name: text for relative, text in archived.items()}


def test_an_empty_newest_generation_is_used_again(tmp_path):
    archived = {f"{GENERATION}/binlog.000002": body(OLD_START, 500)}
    (tmp_path / "backup" / "ns-pxc" / "pxc-0" / "20261202T000000Z").mkdir(parents=True)
    fetches, log = archive_once(tmp_path, archived, {"binlog.000001": (400, NEW_START)})
    assert fetches == [("20261202T000000Z", "binlog.000001")]
    assert sorted(p.name for p in (tmp_path / "backup" / "ns-pxc" / "pxc-0").iterdir()) == \
        [GENERATION, "20261202T000000Z"]


def test_the_password_reaches_the_programs_only_through_the_environment(tmp_path):
    fetches, log = archive_once(tmp_path, {}, {"binlog.000001": (400, NEW_START)})
    assert len(fetches) == 1
    assert "s3cret-backup-pw" not in log
    script = (ROLE / "files" / "pxc-binlog-archive.sh").read_text(encoding="utf-8")
    assert "--password" not in script and "export MYSQL_PWD=" in script
