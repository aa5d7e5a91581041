# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a Galera member of the pxc role publishes about itself in its run directory (roles/pxc/files/pxc-entrypoint.sh):
the phase file's word and the state line (``ordinal=0 empty=0 uuid=... seqno=12 safe_to_bootstrap=0``)."""

RUN_DIR = "/run/kubess"
# The command that prints both files (what is missing prints nothing), run in the member's container.
READ_COMMAND = ["sh", "-c", "cat {0}/phase {0}/state 2>/dev/null; exit 0".format(RUN_DIR)]
FIELDS = ("ordinal", "empty", "uuid", "seqno", "safe_to_bootstrap")


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
