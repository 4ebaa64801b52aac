"""``--irc`` and ``--irc-password`` on the command line, and a headless node serving IRC."""

from __future__ import annotations

import asyncio

import pytest

from core.chord import Address
from core.irc.actions import NO_SUCH_OPER
from tests.support.irc import Client
from tests.support.ports import HOST, free_port
from tests.support.procs import Cluster, kind
from tui.__main__ import parse_options

BASE = ["--nick", "anna", "--listen", "127.0.0.1:0"]


def test_cli__irc_on_loopback():
    options, _ = parse_options([*BASE, "--irc", "127.0.0.1:6667"])
    assert (options.irc, options.irc_password) == (Address("127.0.0.1", 6667), None)


def test_cli__no_irc_by_default():
    options, _ = parse_options(BASE)
    assert options.irc is None


def test_cli__irc_off_loopback_needs_a_password():
    with pytest.raises(ValueError, match="--irc-password"):
        parse_options([*BASE, "--irc", "0.0.0.0:6667"])
    options, _ = parse_options([*BASE, "--irc", "0.0.0.0:6667", "--irc-password", "pw"])
    assert options.irc_password == "pw"


@pytest.mark.parametrize("argv, message", [
    (["--irc-password", "pw"], "--irc-password needs --irc"),
    (["--irc", "nonsense"], "--irc"),
])
def test_cli__irc_mistakes(argv, message):
    with pytest.raises(ValueError, match=message):
        parse_options([*BASE, *argv])


def test_cli__irc_name():
    options, _ = parse_options([*BASE, "--irc", "127.0.0.1:6667", "--irc-name", "irc.home.lan"])
    assert options.irc_name == "irc.home.lan"
    assert parse_options([*BASE, "--irc", "127.0.0.1:6667"])[0].irc_name is None


@pytest.mark.parametrize("argv, message", [
    (["--irc-name", "irc.home.lan"], "--irc-name needs --irc"),
    (["--irc", "127.0.0.1:6667", "--irc-name", "nodot"], "--irc-name"),
    (["--irc", "127.0.0.1:6667", "--irc-name", "a b.c"], "--irc-name"),
    (["--irc", "127.0.0.1:6667", "--irc-name", "x!y.z"], "--irc-name"),
])
def test_cli__irc_name_mistakes(argv, message):
    with pytest.raises(ValueError, match=message):
        parse_options([*BASE, *argv])


class _Gateway:
    """Where a node process serves IRC, in the shape ``Client.connect`` takes."""

    def __init__(self, port: int) -> None:
        self.gateway = self
        self.address = (HOST, port)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_cli__a_headless_user_and_an_irc_client_of_its_node_talk(tmp_path):
    port = free_port()
    with Cluster(tmp_path) as cluster:
        hank = await asyncio.to_thread(cluster.start, "hank", args=("--irc", f"{HOST}:{port}"))
        irc = await Client().connect(_Gateway(port), "ida")
        try:
            await irc.wait("welcome")
            irc.conn.join("#porch")
            await irc.wait("endofnames")
            hank.send("join porch")
            await irc.wait("join", nick="hank", target="#porch")
            hank.send("send porch hello ida")
            await irc.wait("pubmsg", nick="hank", text="hello ida")
            irc.conn.privmsg("#porch", "hello hank")
            await asyncio.to_thread(hank.wait_for, kind("channel", text="hello hank"))
            irc.conn.privmsg("hank", "psst")
            await asyncio.to_thread(hank.wait_for, kind("private", text="psst"))
            hank.send("msg ida psst back")
            await irc.wait("privmsg", nick="hank", text="psst back")
            assert await asyncio.to_thread(hank.stop) == 0
            await irc.wait_line("ERROR")   # the node closes its IRC connections on exit
        finally:
            irc.close()


def test_cli__the_owner_makes_an_irc_operator_from_stdin(tmp_path, monkeypatch, capsys):
    """``--set-irc-oper NAME`` keeps NAME and a salted hash of the password from stdin in
    the data directory (mode 0600); OPER is checked against it; a second NAME is added
    beside the first, and the same NAME again replaces its password."""
    import io
    import stat

    from core.datadir import DataDir
    from core.irc import accounts
    from tui.__main__ import main
    data_dir = DataDir(tmp_path)
    for name, word in (("boss", "first-word"), ("Helper", "helper-word"),
                       ("boss", "second-word")):
        monkeypatch.setattr("sys.stdin", io.StringIO(f"{word}\n"))
        assert main(["--set-irc-oper", name, "--data-dir", str(tmp_path)]) == 0
    path = tmp_path / accounts.OPERS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "word" not in path.read_text()
    assert accounts.oper_login(data_dir, "boss", "second-word") is None
    assert accounts.oper_login(data_dir, "BOSS", "first-word") == accounts.WRONG_PASSWORD
    assert accounts.oper_login(data_dir, "helper", "helper-word") is None
    assert accounts.oper_login(data_dir, "nobody", "x") == NO_SUCH_OPER
    assert accounts.oper_login(None, "boss", "second-word") == NO_SUCH_OPER
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    assert main(["--set-irc-oper", "bad name!", "--data-dir", str(tmp_path)]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["--set-irc-oper", "boss", "--data-dir", str(tmp_path)]) == 2
    assert "1 to 300 characters" in capsys.readouterr().err
    assert accounts.oper_login(data_dir, "boss", "second-word") is None


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_cli__an_invitation_reaches_a_headless_user_and_an_irc_client_of_another_node(
        tmp_path):
    """hank (headless, node 1) invites bo (headless, node 2) and ida (an IRC client of node
    2) into his invite-only channel: bo prints the invitation, ida gets INVITE, both get in."""
    port = free_port()
    with Cluster(tmp_path) as cluster:
        hank = await asyncio.to_thread(cluster.start, "hank")
        bo = await asyncio.to_thread(cluster.start, "bo", hank,
                                     args=("--irc", f"{HOST}:{port}"))
        irc = await Client().connect(_Gateway(port), "ida")
        try:
            await irc.wait("welcome")
            hank.send("join door")
            await asyncio.to_thread(hank.wait_for, kind("joined", channel="door"))
            hank.send("mode #door +i")
            await asyncio.to_thread(hank.wait_for, kind("modes", change="+i"))
            irc.conn.join("#door")
            await irc.wait("inviteonlychan")
            hank.send("invite ida #door")
            invite = await irc.wait_line("INVITE")
            assert invite.params == ("ida", "#door") and invite.prefix.startswith("hank!")
            hank.send("invite bo #door")
            await asyncio.to_thread(bo.wait_for, kind("invited", channel="door", nick="hank"))
            irc.conn.join("#door")
            await irc.wait("endofnames")
            bo.send("join door")
            await asyncio.to_thread(bo.wait_for, kind("joined", channel="door"))
        finally:
            irc.close()
