"""The gateway that carries the real node's traffic to services on this machine's loopback.

Runs as root: it makes a network namespace of its own (not the node's), starts
tools/localcluster/netns_gateway.py with a listener inside it, and talks through that listener from inside the
namespace to a server on 127.0.0.1, as the node's kubelet and NFS client do.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GATEWAY = REPO / "tools" / "localcluster" / "netns_gateway.py"
LISTEN = "10.254.77.1"
DEADLINE = 30.0
REQUESTS_PER_ROUND = 6
ROUNDS = 40
WORK = 0.0005


def wait_for(what: str, cond):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


class RecordServer:
    """Answers each length-prefixed record with its own small write, as an RPC server answers pipelined calls."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _addr = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    @staticmethod
    def answer(conn: socket.socket):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as an RPC server does
        with conn:
            try:
                while True:
                    (size,) = struct.unpack(">I", recv_exactly(conn, 4))
                    body = recv_exactly(conn, size)
                    time.sleep(WORK)  # each call takes the server a moment, so the replies leave one by one
                    conn.sendall(struct.pack(">I", 8) + body[:8])
            except (ConnectionError, OSError):
                return


@pytest.fixture
def gateway(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the gateway test makes a network namespace: run it as root (make node-tests)")
    netns = f"kubess-gwtest-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    server = RecordServer()
    pid_file = tmp_path / "gateway.pid"
    proc = None
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", netns, "addr", "add", f"{LISTEN}/32", "dev", "lo"], check=True)
        proc = subprocess.Popen(
            [sys.executable, str(GATEWAY), "--netns", f"/run/netns/{netns}", "--pid-file", str(pid_file),
             "--forward", f"{LISTEN}:{server.port}=127.0.0.1:{server.port}"])
        wait_for("the gateway's pid file", pid_file.exists)
        yield netns, server.port
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=DEADLINE) == 0
            assert not pid_file.exists()
        server.listener.close()
        subprocess.run(["ip", "netns", "del", netns], check=True)


def client_in(netns: str, port: int) -> str:
    """Pipelines REQUESTS_PER_ROUND records per round, as the NFS client does for one large write, and prints
    the median time a round takes in milliseconds."""
    code = f"""
import socket, statistics, struct, time
sock = socket.create_connection(("{LISTEN}", {port}))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rounds = []
for r in range({ROUNDS}):
    start = time.monotonic()
    for i in range({REQUESTS_PER_ROUND}):
        sock.sendall(struct.pack(">I", 3072) + struct.pack(">Q", r * 100 + i) + bytes(3064))
    for i in range({REQUESTS_PER_ROUND}):
        got = b""
        while len(got) < 12:
            got += sock.recv(12 - len(got))
        assert struct.unpack(">IQ", got) == (8, r * 100 + i), got
    rounds.append(time.monotonic() - start)
print(statistics.median(rounds) * 1000)
"""
    result = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_pipelined_replies_are_not_held_back(gateway):
    """Each reply leaves the gateway at once. With Nagle on the gateway's side of the node's connection, every
    reply after the first of a round waited for the client's delayed ACK (about 40 ms per round): a MariaDB data
    directory took 7 minutes to initialise over NFS through the gateway, 10 seconds without it."""
    netns, port = gateway
    median_ms = float(client_in(netns, port))
    assert median_ms < 20, f"a round of {REQUESTS_PER_ROUND} pipelined requests took {median_ms:.1f} ms (median)"
