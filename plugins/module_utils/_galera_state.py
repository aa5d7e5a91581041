# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a Galera member of the pxc role publishes about itself in its run directory (roles/pxc/files/pxc-entrypoint.sh):
the phase file's word and the state line (``ordinal=0 empty=0 uuid=... seqno=12 safe_to_bootstrap=0``)."""

RUN_DIR = "/run/kubess"
# The command that prints both files (what is missing prints nothing), run in the member's container.
READ_COMMAND = ["sh", "-c", "cat {0}/phase {0}/state 2>/dev/null; exit 0".format(RUN_DIR)]
FIELDS = ("ordinal", "empty", "uuid", "seqno", "safe_to_bootstrap")
# The server's own Galera status, as the readiness probe (pxc-readiness.sh) reads it: the monitor user over the local
# socket, its password from the container's environment (KUBESS_MONITOR_PASSWORD) through MYSQL_PWD, so that it never
# leaves the container nor shows in a process list.
STATUS = ("wsrep_local_state_comment", "wsrep_cluster_status", "wsrep_cluster_size", "wsrep_cluster_state_uuid",
          "wsrep_last_committed", "wsrep_ready")
SEPARATOR = "--- kubess server status ---"
# Both in one exec: the published files (in KUBESS_RUN_DIR), then the server's status (nothing when it does not answer).
MEMBER_COMMAND = ["sh", "-c", (
    'cat "${{KUBESS_RUN_DIR:-{0}}}/phase" "${{KUBESS_RUN_DIR:-{0}}}/state" 2>/dev/null; echo "{1}"; '
    'MYSQL_PWD="${{KUBESS_MONITOR_PASSWORD:-}}" timeout 10 "${{KUBESS_CLIENT:-mysql}}" '
    '--user="${{KUBESS_MONITOR_USER:-monitor}}" --host=localhost --batch --skip-column-names '
    '--execute="SHOW GLOBAL STATUS WHERE Variable_name IN ({2})" 2>/dev/null; exit 0').format(
        RUN_DIR, SEPARATOR, ", ".join("'{0}'".format(v) for v in STATUS))]


def to_int(value, default=None):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def parse_published(text):
    """``(phase, state)``: the phase word ('' when none) and the position as a dict (empty, uuid, seqno,
    safe_to_bootstrap), or None when no whole state line was published."""
    phase, state = "", None
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        if "=" not in line:
            phase = line
            continue
        pairs = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if all(key in pairs for key in FIELDS) and to_int(pairs["seqno"]) is not None:
            state = {"empty": pairs["empty"] == "1", "uuid": pairs["uuid"], "seqno": to_int(pairs["seqno"]),
                     "safe_to_bootstrap": pairs["safe_to_bootstrap"] == "1"}
    return phase, state


def parse_member(text):
    """``(phase, published position or None, server status)`` from MEMBER_COMMAND's output; the status maps each of
    STATUS the server answered (lower-case names) to its value, and is empty when the server did not answer."""
    published, _sep, status_text = (text or "").partition(SEPARATOR)
    phase, state = parse_published(published)
    status = {}
    for line in status_text.splitlines():
        name, _tab, value = line.partition("\t")
        if name.strip().lower() in STATUS:
            status[name.strip().lower()] = value.strip()
    return phase, state, status
