"""The runtime serving IRC (``--irc``): Ready only once the gateway listens, and a port in
use refused at the start with nothing left running."""

from __future__ import annotations

import socket

import pytest

from core import events as ev
from core.chord import Address
from core.runtime import Options, Runtime, StartupError
from tests.support.ports import free_port
from tests.support.runtime import Collector, options

HOST = "127.0.0.1"


def with_irc(base: Options, port: int) -> Options:
    return base._replace(irc=Address(HOST, port))


class ConnectOnReady(Collector):
    """Connects to the IRC port the moment Ready is posted. ``post`` runs on the core
    thread, so nothing of the start goes on meanwhile: a gateway opened after the Ready
    refuses the connection every time, not now and then."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.client: socket.socket | None = None
        self.refused: OSError | None = None

    def post(self, event) -> None:
        super().post(event)
        if isinstance(event, ev.Ready):
            try:
                self.client = socket.create_connection((HOST, self.port), timeout=10)
            except OSError as e:
                self.refused = e


def read_until(client: socket.socket, numeric: str) -> list[str]:
    """The lines the server sent up to the first with ``numeric`` (the socket's timeout is
    the deadline)."""
    data = b""
    while f" {numeric} ".encode() not in data:
        chunk = client.recv(4096)
        assert chunk, f"closed before {numeric}: {data!r}"
        data += chunk
    return data.decode().splitlines()


def test_runtime__the_irc_port_accepts_as_soon_as_ready_is_posted():
    port = free_port()
    events = ConnectOnReady(port)
    runtime = Runtime(with_irc(options("ann"), port), events.post)
    try:
        runtime.start().result(20)
        assert events.refused is None, f"Ready came before the gateway listened: {events.refused}"
        with events.client as client:
            client.sendall(b"NICK ida\r\nUSER ida 0 * :Ida\r\n")
            assert read_until(client, "001")
    finally:
        runtime.shutdown().result(30)


def test_runtime__irc_port_in_use_is_a_startup_error_and_nothing_stays():
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        base = options("ann")
        runtime = Runtime(with_irc(base, port), Collector().post)
        with pytest.raises(StartupError) as e:
            runtime.start().result(20)
        assert f"{HOST}:{port}" in e.value.message and e.value.code == 2
        assert not runtime.node.running and runtime.gateway is None
        runtime.shutdown().result(10)
        assert runtime.join(10)
    again = Runtime(base, Collector().post)   # the nick's lock was given back
    try:
        assert again.start().result(20).nick == "ann"
    finally:
        again.shutdown().result(30)
