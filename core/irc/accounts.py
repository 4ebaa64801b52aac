"""Which IRC client may speak with a nick's persistent identity key: the one that logs in.

A nick's key (``identity.key`` in its folder of the data directory) goes to an IRC client
only after SASL PLAIN with the nick's IRC password, kept as a salted scrypt hash in the
same folder (``irc-password``, mode 0600, one line ``chordchat-irc-scrypt-v1 n r p salt
hash``). The password is set by the node's owner (``chordchat --set-irc-password NICK``)
or, for a nick that has neither a key nor a password in the data directory yet, by the
first client that logs in with it (trust on first use). A nick that has a key but no
password (the owner's own nick, or one from before SASL) can only be logged into once
the owner sets a password. See docs/irc.md, "SASL".

The gateway's IRC operators are the node owner's too: ``chordchat --set-irc-oper NAME``
keeps NAME and its password's scrypt hash in the data directory (``irc-opers``, mode 0600,
one line ``NAME chordchat-irc-scrypt-v1 n r p salt hash`` per operator), and OPER checks
against it (``oper_login``).

Blocking (scrypt takes tens of milliseconds on purpose): the gateway runs ``login`` and
``oper_login`` in a thread.
"""

from __future__ import annotations

import argparse
import collections
import getpass
import hashlib
import hmac
import os
import re
import sys
from pathlib import Path

from core.chat.users.keyfile import KEY_FILE
from core.datadir import DataDir, DataDirError, make_private_dir, valid_nick, write_atomic

from .actions import NO_SUCH_OPER

PASSWORD_FILE = "irc-password"
FORMAT = "chordchat-irc-scrypt-v1"
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}   # 16 MiB and ~50 ms per try
MAX_PASSWORD = 300
OPERS_FILE = "irc-opers"
OPER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
WRONG_PASSWORD = "wrong password"


FAILURES_PER_HOST = 5       # failed logins from one IP within WINDOW: then 904, unchecked
FAILURES_PER_ACCOUNT = 10   # failed logins as one account (from any IP) within WINDOW: same
WINDOW = 60.0               # seconds
MAX_KEPT = 10_000           # IPs and accounts remembered (the least recently failed dropped)


class Attempts:
    """Failed SASL logins per client IP and per account in the last ``window`` seconds:
    past ``per_host`` or ``per_account`` of them a login is refused without running
    scrypt (each check costs ~50 ms and 16 MiB). Pure: the caller passes the time."""

    def __init__(self, per_host: int = FAILURES_PER_HOST,
                 per_account: int = FAILURES_PER_ACCOUNT, window: float = WINDOW) -> None:
        self.per_host = per_host
        self.per_account = per_account
        self.window = window
        self._failed: collections.OrderedDict[tuple[str, str], collections.deque] = \
            collections.OrderedDict()
        self.refused = 0   # logins refused unchecked

    def _recent(self, key: tuple[str, str], now: float) -> int:
        times = self._failed.get(key)
        if times is None:
            return 0
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failed[key]
            return 0
        return len(times)

    def check(self, host: str, account: str, now: float) -> str | None:
        """None if a login from ``host`` as ``account`` may be checked now; else why not."""
        if self._recent(("host", host), now) >= self.per_host:
            why = f"{self.per_host} failed logins from {host} in {self.window:g} s"
        elif self._recent(("account", account.lower()), now) >= self.per_account:
            why = f"{self.per_account} failed logins as {account} in {self.window:g} s"
        else:
            return None
        self.refused += 1
        return why

    def failed(self, host: str, account: str, now: float) -> None:
        for key in (("host", host), ("account", account.lower())):
            times = self._failed.setdefault(key, collections.deque())
            times.append(now)
            self._failed.move_to_end(key)
        while len(self._failed) > MAX_KEPT:
            self._failed.popitem(last=False)


class AccountError(Exception):
    """A password file that cannot be read or written; the message names it."""


def _hash(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=2 * 128 * r * n + (1 << 20), dklen=32)


def hashed(password: str) -> str:
    """The password file's line for ``password``, with a fresh salt."""
    salt = os.urandom(16)
    s = SCRYPT
    return (f"{FORMAT} {s['n']} {s['r']} {s['p']} {salt.hex()} "
            f"{_hash(password, salt, **s).hex()}\n")


def matches(line: str, password: str) -> bool:
    """Whether ``password`` is the one the password file's ``line`` was made from."""
    try:
        form, n, r, p, salt, digest = line.split()
        if form != FORMAT:
            return False
        n_, r_, p_ = int(n), int(r), int(p)
        if not (2 <= n_ <= 2 ** 20 and 1 <= r_ <= 32 and 1 <= p_ <= 16):
            return False
        return hmac.compare_digest(_hash(password, bytes.fromhex(salt), n_, r_, p_),
                                   bytes.fromhex(digest))
    except ValueError:
        return False


def reserved(data_dir: DataDir | None, nick: str) -> bool:
    """Whether ``nick`` belongs to someone on this node: it has a key or an IRC password
    in the data directory. Such a nick is refused to a client that did not log in."""
    if data_dir is None:
        return False
    folder = data_dir.user_path(nick)
    return (folder / KEY_FILE).exists() or (folder / PASSWORD_FILE).exists()


def set_password(data_dir: DataDir, nick: str, password: str, *, replace: bool = True) -> bool:
    """Keep ``password``'s hash as ``nick``'s IRC password; with ``replace`` false only if
    it has none yet (returns False if it had one)."""
    try:
        path = data_dir.user_dir(nick) / PASSWORD_FILE
        return write_atomic(path, hashed(password).encode("ascii"), replace=replace)
    except (DataDirError, ValueError) as e:
        raise AccountError(f"cannot keep the IRC password of {nick}: {e}") from None


def login(data_dir: DataDir | None, nick: str, password: str) -> str | None:
    """Check an IRC client's login as ``nick``: None if it may use the nick's key, else
    why not. A nick with neither key nor password gets ``password`` as its password."""
    if data_dir is None:
        return "this node keeps no identities (no data directory)"
    if not valid_nick(nick):
        return f"{nick!r} is not a nick"
    if not password or len(password) > MAX_PASSWORD:
        return f"the password must have 1 to {MAX_PASSWORD} characters"
    folder = data_dir.user_path(nick)
    path = folder / PASSWORD_FILE
    if not path.exists():
        if (folder / KEY_FILE).exists():
            return (f"{nick} has a key on this node but no IRC password: the node's owner "
                    "sets one (chordchat --set-irc-password)")
        try:
            if set_password(data_dir, nick, password, replace=False):
                return None        # trust on first use
        except AccountError as e:
            return str(e)
    try:
        with open(path, encoding="ascii") as f:
            line = f.read(1024)
    except (OSError, ValueError) as e:
        return f"cannot read {path}: {getattr(e, 'strerror', None) or e}"
    return None if matches(line, password) else WRONG_PASSWORD


def _oper_lines(data_dir: DataDir) -> dict[str, str]:
    """The operators file: name (lower case) -> its hash line; {} if there is none."""
    path = data_dir.path / OPERS_FILE
    try:
        with open(path, encoding="ascii") as f:
            text = f.read(1 << 20)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise AccountError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    kept = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if OPER_NAME.fullmatch(name) and rest:
            kept[name.lower()] = rest
    return kept


def set_oper(data_dir: DataDir, name: str, password: str) -> None:
    """Make ``name`` an IRC operator of this node's gateway with ``password`` (replacing
    its password if it is one already)."""
    if not OPER_NAME.fullmatch(name):
        raise AccountError(f"{name!r} is not an operator name (1 to 32 letters, digits, "
                           "'_', '-', '.')")
    try:
        make_private_dir(data_dir.path)
        opers = _oper_lines(data_dir)
        opers[name.lower()] = hashed(password)
        text = "".join(f"{n} {line.strip()}\n" for n, line in sorted(opers.items()))
        write_atomic(data_dir.path / OPERS_FILE, text.encode("ascii"))
    except DataDirError as e:
        raise AccountError(f"cannot keep the IRC operator {name}: {e}") from None


def oper_login(data_dir: DataDir | None, name: str, password: str) -> str | None:
    """Check OPER ``name`` ``password``: None if it makes the client an operator, else why
    not (``NO_SUCH_OPER``, ``WRONG_PASSWORD`` or an unreadable file)."""
    if data_dir is None or not OPER_NAME.fullmatch(name):
        return NO_SUCH_OPER
    if not password or len(password) > MAX_PASSWORD:
        return WRONG_PASSWORD
    try:
        line = _oper_lines(data_dir).get(name.lower())
    except AccountError as e:
        return str(e)
    if line is None:
        return NO_SUCH_OPER
    return None if matches(line, password) else WRONG_PASSWORD


def _read_new_password(prompt: str) -> str | None:
    """A new password from stdin (asked twice on a terminal); None (said why) if unfit."""
    if sys.stdin.isatty():
        password = getpass.getpass(prompt)
        if getpass.getpass("again: ") != password:
            print("chordchat: error: the passwords differ", file=sys.stderr)
            return None
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password or len(password) > MAX_PASSWORD:
        print(f"chordchat: error: the password must have 1 to {MAX_PASSWORD} characters",
              file=sys.stderr)
        return None
    return password


def set_oper_main(argv: list[str]) -> int:
    """``chordchat --set-irc-oper NAME [--data-dir DIR]``: NAME's password from stdin
    (asked twice on a terminal); exit code 0, or 2 with the reason."""
    return _set_secret(argv, "--set-irc-oper", "NAME", OPER_NAME.fullmatch,
                       "an operator name (1 to 32 letters, digits, '_', '-', '.')",
                       "IRC operator password for {}: ", set_oper,
                       lambda name, data_dir: f"{name} is an IRC operator of the gateway "
                                              f"of {data_dir.path}")


def set_password_main(argv: list[str]) -> int:
    """``chordchat --set-irc-password NICK [--data-dir DIR]``: the new password from
    stdin (asked twice on a terminal); exit code 0, or 2 with the reason."""
    return _set_secret(argv, "--set-irc-password", "NICK", valid_nick, "a nick",
                       "IRC password for {}: ", set_password,
                       lambda nick, data_dir: f"the IRC password of {nick} is set in "
                                              f"{data_dir.user_path(nick)}")


def _set_secret(argv: list[str], flag: str, metavar: str, valid, kind: str, prompt: str,
                store, done) -> int:
    """``chordchat FLAG NAME [--data-dir DIR]``: ``NAME`` checked by ``valid`` (else "is
    not ``kind``"), a new password from stdin (``prompt``) kept by ``store``, ``done``'s
    line printed: exit code 0, or 2 with the reason."""
    parser = argparse.ArgumentParser(prog=f"chordchat {flag}")
    parser.add_argument(flag, metavar=metavar, required=True, dest="name")
    parser.add_argument("--data-dir", metavar="DIR")
    args, _ = parser.parse_known_args(argv)
    if not valid(args.name):
        print(f"chordchat: error: {args.name!r} is not {kind}", file=sys.stderr)
        return 2
    password = _read_new_password(prompt.format(args.name))
    if password is None:
        return 2
    data_dir = DataDir(Path(args.data_dir)) if args.data_dir else DataDir.default()
    try:
        store(data_dir, args.name, password)
    except AccountError as e:
        print(f"chordchat: error: {e}", file=sys.stderr)
        return 2
    print(done(args.name, data_dir))
    return 0
