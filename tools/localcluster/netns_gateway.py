"""TCP gateway from a network namespace to services on this machine's loopback.

The real node of the local cluster lives in its own network namespace. The control plane and the NFS server
listen on the machine's loopback only, which that namespace cannot reach. This process opens its listening
sockets inside the node's namespace (at an address the node sees as "the control plane / NFS server") and
connects every accepted connection to the matching loopback service, from the machine's own namespace: the
listeners exist only inside the namespace, nothing new listens on the machine.

    netns_gateway.py --netns /run/netns/kubess-node --pid-file FILE \
        --forward 10.213.1.1:6443=127.0.0.1:6443 --forward 10.213.1.1:2049=127.0.0.1:2049

Inputs: --netns (a namespace file, as `ip netns add` makes), one --forward LISTEN=TARGET per service (IPv4
address:port each), --pid-file (written once every listener is open, removed on exit). SIGTERM or SIGINT
closes the listeners and the open connections, then exits 0.
"""

import argparse
import asyncio
import ctypes
import os
import signal
import socket
import sys

CLONE_NEWNET = 0x40000000
CHUNK = 256 * 1024


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: " + os.strerror(err))


def _address(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected ADDRESS:PORT, got %r" % text)
    socket.inet_aton(host)
    return host, int(port)


def _forward(text):
    listen, sep, target = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("expected LISTEN=TARGET, got %r" % text)
    return _address(listen), _address(target)


def open_listeners(netns, forwards):
    """Listening sockets bound inside NETNS; the calling thread is back in its own namespace on return."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    listeners = []
    try:
        _setns(target)
        try:
            for (host, port), upstream in forwards:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
                sock.listen(128)
                sock.setblocking(False)
                listeners.append((sock, upstream))
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(target)
    return listeners


async def _pipe(reader, writer):
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


def _nodelay(writer):
    # asyncio turns Nagle off only for sockets made with proto IPPROTO_TCP, which an accepted socket of a
    # listener made with proto 0 is not. An NFS reply then waits for the client's delayed ACK (40 ms).
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _serve_one(client_reader, client_writer, upstream):
    try:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
    except OSError:
        client_writer.close()
        return
    _nodelay(client_writer)
    _nodelay(up_writer)
    try:
        await asyncio.gather(_pipe(client_reader, up_writer), _pipe(up_reader, client_writer))
    finally:
        up_writer.close()
        client_writer.close()


async def run(listeners, pid_file):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers = []
    for sock, upstream in listeners:
        servers.append(await asyncio.start_server(
            lambda r, w, up=upstream: _serve_one(r, w, up), sock=sock))
    with open(pid_file, "w", encoding="ascii") as handle:
        handle.write("%d\n" % os.getpid())
    try:
        await stop.wait()
    finally:
        for server in servers:
            server.close()
        os.unlink(pid_file)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--netns", required=True)
    parser.add_argument("--forward", action="append", type=_forward, required=True)
    parser.add_argument("--pid-file", required=True)
    args = parser.parse_args(argv)
    try:
        listeners = open_listeners(args.netns, args.forward)
    except OSError as exc:
        print("netns_gateway: cannot listen in %s: %s" % (args.netns, exc), file=sys.stderr)
        return 1
    asyncio.run(run(listeners, args.pid_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
