"""A nick's identity key belongs to the IRC client that logs in as it (SASL PLAIN), never
to the next client that types the nick: real IRC frames against a real node with a data
directory, and the session's SASL exchange line by line."""

from __future__ import annotations

import asyncio
import base64
import contextlib

import pytest

from core.chat.service import ChatService
from core.chord import Address, Local
from core.chord.testing import FAST, stop_all, wait_until
from core.datadir import DataDir
from core.irc import IrcGateway, accounts
from core.irc.message import parse
from core.irc.replies import ServerInfo
from core.irc.session import Session

pytestmark = pytest.mark.timeout(120)


def plain(account: str, password: str, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{account}\0{password}".encode()).decode()


class Raw:
    """An IRC client speaking raw lines, for the CAP/SASL exchange."""

    def __init__(self, reader, writer) -> None:
        self.reader, self.writer = reader, writer
        self.lines: list[str] = []

    @classmethod
    async def connect(cls, gateway: IrcGateway) -> Raw:
        return cls(*await asyncio.open_connection(*gateway.address))

    def send(self, *lines: str) -> None:
        for line in lines:
            self.writer.write(line.encode() + b"\r\n")

    async def until(self, *commands: str) -> str:
        """Read lines until one with one of ``commands``; returns that command."""
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), 30)
            assert raw, f"connection closed (got {self.lines[-5:]})"
            line = raw.decode().rstrip("\r\n")
            self.lines.append(line)
            m = parse(line)
            if m.command == "PING":
                self.send(f"PONG :{m.params[0]}")
            if m.command in commands:
                return m.command

    async def login(self, nick: str, password: str | None, account: str | None = None) -> str:
        """CAP LS 302, SASL PLAIN as ``account`` (default: the nick) if a password is
        given, NICK, USER, CAP END: the first of 001 / 433 / 902; and 903/904 if asked."""
        self.send("CAP LS 302", f"NICK {nick}", f"USER {nick.lower()} 0 * :{nick}")
        await self.until("CAP")
        if password is not None:
            self.send("CAP REQ :sasl")
            assert await self.until("CAP") and " ACK " in self.lines[-1]
            self.send("AUTHENTICATE PLAIN")
            await self.until("AUTHENTICATE")
            self.send(f"AUTHENTICATE {plain(account or nick, password)}")
            self.sasl = await self.until("903", "904")
        self.send("CAP END")
        return await self.until("001", "433", "902")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("QUIT :bye")
            self.writer.close()
            await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def node_with_gateway(data_dir: DataDir):
    node = Local(Address("127.0.0.1", 0), None, **FAST)
    service = ChatService(node, lambda e: None, data_dir=data_dir)
    await node.start()
    await service.start()
    gateway = IrcGateway(service, "127.0.0.1", 0)
    await gateway.start()
    try:
        yield service, gateway
    finally:
        await gateway.stop(quit_users=False)
        await service.stop()
        await stop_all([node])


async def served_key(service: ChatService, nick: str) -> str:
    await wait_until(lambda: nick.lower() in service.users, what=f"{nick} served")
    return service.users[nick.lower()].identity.fingerprint


async def gone(service: ChatService, nick: str) -> None:
    await wait_until(lambda: nick.lower() not in service.users, what=f"{nick} gone")


async def test_sasl__the_nicks_key_goes_only_to_the_client_that_logs_in_as_it(tmp_path):
    data_dir = DataDir(tmp_path)
    async with node_with_gateway(data_dir) as (service, gateway):
        # the first login of a new nick sets its password (trust on first use)
        alice = await Raw.connect(gateway)
        assert await alice.login("alice", "pw-alice") == "001" and alice.sasl == "903"
        assert any(parse(x).command == "900" for x in alice.lines)
        key = await served_key(service, "alice")
        assert (tmp_path / "users" / "alice" / accounts.PASSWORD_FILE).exists()
        await alice.close()
        await gone(service, "alice")

        # a second client typing the nick without SASL: refused, no key
        mallory = await Raw.connect(gateway)
        assert await mallory.login("alice", None) == "433"
        assert "alice" not in service.users
        # a wrong password: 904, and then the nick is refused all the same
        assert await mallory.login("alice", "guess") == "433" and mallory.sasl == "904"
        # logged in as another nick: the nick stays locked
        assert await mallory.login("alice", "pw-m", account="mallory") == "902"
        await mallory.close()

        # the owner of the password gets the same key on every reconnect
        for _ in range(2):
            again = await Raw.connect(gateway)
            assert await again.login("alice", "pw-alice") == "001" and again.sasl == "903"
            assert await served_key(service, "alice") == key
            await again.close()
            await gone(service, "alice")

        # clients that never log in share nothing: each gets a fresh key kept nowhere
        keys = []
        for _ in range(2):
            bob = await Raw.connect(gateway)
            assert await bob.login("bob", None) == "001"
            keys.append(await served_key(service, "bob"))
            await bob.close()
            await gone(service, "bob")
        assert keys[0] != keys[1]
        assert not (tmp_path / "users" / "bob").exists()


async def test_sasl__a_nick_with_a_key_but_no_password_waits_for_the_owner(tmp_path):
    data_dir = DataDir(tmp_path)
    from core.chat.users.keyring import open_user
    keys = open_user(data_dir, "owner")     # the node owner's own nick, not running now
    owner_key = keys.identity.fingerprint
    keys.release()
    async with node_with_gateway(data_dir) as (service, gateway):
        c = await Raw.connect(gateway)
        assert await c.login("owner", None) == "433"            # no ephemeral look-alike
        assert await c.login("owner", "first-come") == "433" and c.sasl == "904"
        await c.close()
        accounts.set_password(data_dir, "owner", "owners-say-so")
        c = await Raw.connect(gateway)
        assert await c.login("owner", "owners-say-so") == "001"
        assert await served_key(service, "owner") == owner_key
        await c.close()


def session_lines(*lines: str, sasl: bool = True) -> tuple[Session, list[str], list]:
    out: list = []
    s = Session(ServerInfo("srv", sasl=sasl), out.append)
    actions = []
    for line in lines:
        actions += s.receive(line)
    return s, [f"{m.command} {' '.join(m.params)}" for m in out], actions


def test_session__sasl_exchange_chunks_mechanisms_abort_and_no_sasl_without_a_data_dir():
    _, out, _ = session_lines("CAP LS 302", sasl=False)
    assert out == ["CAP * LS batch echo-message message-tags multi-prefix server-time "
                   "userhost-in-names"]  # no sasl
    _, out, _ = session_lines("CAP LS 302", "CAP LS", "CAP REQ :sasl", "CAP LIST")
    both = ("batch draft/chathistory echo-message message-tags multi-prefix {} server-time "
            "userhost-in-names")
    assert out == [f"CAP * LS {both.format('sasl=PLAIN')}", f"CAP * LS {both.format('sasl')}",
                   "CAP * ACK sasl", "CAP * LIST sasl"]
    _, out, _ = session_lines("CAP LS", "CAP REQ :sasl", "AUTHENTICATE EXTERNAL")
    assert out[-2:] == ["908 * PLAIN are available SASL mechanisms",
                        "904 * SASL authentication failed"]
    _, out, _ = session_lines("CAP LS", "CAP REQ :sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE *")
    assert out[-2:] == ["AUTHENTICATE +", "906 * SASL authentication aborted"]
    # a long password in 400-byte chunks, the last one shorter
    payload = plain("alice", "x" * 500)
    chunks = [payload[i:i + 400] for i in range(0, len(payload), 400)]
    s, out, actions = session_lines("CAP LS", "CAP REQ :sasl", "AUTHENTICATE PLAIN",
                                    *(f"AUTHENTICATE {c}" for c in chunks))
    assert len(actions) == 1 and actions[0].account == "alice"
    assert actions[0].password == "x" * 500 and "x" * 20 not in repr(actions[0])
    s.logged_in("alice")
    s.receive("NICK alice")
    s.receive("USER a 0 * :A")
    assert s.receive("CAP END")[0].account == "alice"
    _, out, _ = session_lines("CAP LS", "CAP REQ :sasl", "AUTHENTICATE PLAIN",
                              f"AUTHENTICATE {plain('alice', 'pw', authzid='root')}")
    assert out[-1] == "904 * SASL authentication failed"
    _, out, _ = session_lines("CAP LS", "CAP REQ :sasl", "AUTHENTICATE PLAIN",
                              "AUTHENTICATE " + "A" * 401)
    assert out[-1] == "905 * SASL message too long"


def test_accounts__the_password_is_kept_salted_and_checked():
    line = accounts.hashed("pw")
    assert "pw" not in line.split()[4:] and line != accounts.hashed("pw")
    assert accounts.matches(line, "pw") and not accounts.matches(line, "pW")
    assert not accounts.matches("garbage", "pw")


def test_cli__the_owner_sets_a_nicks_irc_password_from_stdin(tmp_path, monkeypatch, capsys):
    import io

    from tui.__main__ import main
    monkeypatch.setattr("sys.stdin", io.StringIO("owners-word\n"))
    assert main(["--set-irc-password", "alice", "--data-dir", str(tmp_path)]) == 0
    assert accounts.login(DataDir(tmp_path), "alice", "owners-word") is None
    assert accounts.login(DataDir(tmp_path), "alice", "other") == "wrong password"
    assert main(["--set-irc-password", "9bad", "--data-dir", str(tmp_path)]) == 2


async def test_sasl__failed_logins_are_limited_per_ip_and_per_account_without_scrypt(
        tmp_path, monkeypatch):
    """Past 5 failures from one IP (or 10 as one account) a minute, a login is answered
    904 without its password being checked; other IPs and accounts are served, and the
    window passing lets the owner in again."""
    checked = []
    real = accounts.login
    monkeypatch.setattr(accounts, "login", lambda *a: checked.append(a[1]) or real(*a))

    async def client(ip: str) -> Raw:
        return Raw(*await asyncio.open_connection(*gateway.address, local_addr=(ip, 0)))

    async def attempt(ip: str, nick: str, password: str) -> str:
        c = await client(ip)
        try:
            await c.login(nick, password)
            return c.sasl
        finally:
            await c.close()
            await gone(service, nick)

    async with node_with_gateway(DataDir(tmp_path)) as (service, gateway):
        gateway.attempts = accounts.Attempts(window=2.0)   # the limits as shipped, 2 s
        assert await attempt("127.0.0.1", "alice", "pw-alice") == "903"   # sets it
        for i in range(5):
            assert await attempt("127.0.0.1", "alice", f"guess {i}") == "904"
        checked.clear()
        # the sixth from that IP: 904 without scrypt, even with the right password
        assert await attempt("127.0.0.1", "alice", "pw-alice") == "904"
        assert await attempt("127.0.0.1", "bob", "pw-bob") == "904"
        assert checked == [] and gateway.attempts.refused == 2
        # another IP is served, for the same account too
        assert await attempt("127.0.0.2", "alice", "pw-alice") == "903"
        # 10 failures as alice from several IPs: then alice is refused from anywhere
        for ip in ("127.0.0.3", "127.0.0.4"):
            for i in range(5):
                assert await attempt(ip, "alice", f"guess {ip} {i}") == "904"
        checked.clear()
        assert await attempt("127.0.0.5", "alice", "pw-alice") == "904"
        assert checked == []
        assert await attempt("127.0.0.5", "carol", "pw-carol") == "903"   # others are not
        # the window passes: the owner logs in again
        await asyncio.sleep(2.1)
        assert await attempt("127.0.0.1", "alice", "pw-alice") == "903"
