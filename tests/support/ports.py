"""Loopback ports for tests: one nobody listens on now, or one whose node id lies where a
test wants the node on the ring."""

from __future__ import annotations

import os
import socket

from core.chord.ids import hash_string, in_half_open

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A port on ``host`` that nobody listens on now (the system's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def node_id(address: str) -> int:
    return hash_string(address)


def port_with_id_in(lo: int, hi: int, host: str = HOST, tries: int = 200_000) -> int:
    """A free port whose node id ``hash(host:port)`` lies in (lo, hi] on the ring."""
    ports = list(range(20000, 61000))
    start = (os.getpid() * 7919) % len(ports)  # different test runs probe different ports
    for i in range(min(tries, len(ports))):
        port = ports[(start + i) % len(ports)]
        if in_half_open(node_id(f"{host}:{port}"), lo, hi) and _free(host, port):
            return port
    raise AssertionError(f"no free port with an id in ({lo:x}, {hi:x}]")


def _free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True
