"""The command line: ``chordchat --nick N [--listen H:P] [--advertise H:P] [--bootstrap H:P]
[--data-dir DIR] [--headless [--json]]``, or ``chordchat --set-irc-password NICK
[--data-dir DIR]``, or ``chordchat --set-irc-oper NAME [--data-dir DIR]``."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import socket
import sys

from core.chat.model.commands import CommandError, check_nick
from core.chord import Address, AddressError
from core.irc import is_loopback, valid_server_name
from core.runtime import Options

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chordchat", description="A serverless terminal chat over a Chord ring.",
        epilog="Type 'help' once running for the chat commands. Tuning flags are for tests "
               "and demos; the defaults suit normal use.")
    parser.add_argument("--nick", required=True,
                        help="your nickname: 1-32 of A-Z a-z 0-9 _ -, starting with a letter")
    parser.add_argument("--version", action="version",
                        version=f"chordchat {version()} (Python {sys.version.split()[0]})")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="the address this node listens on (its id is the hash of it); "
                             "port 0 picks a free port. Default: loopback on a free port "
                             "(127.0.0.1:0); with --advertise H:P every address on port P "
                             "(0.0.0.0:P); with a --bootstrap on another host, this host's "
                             "address toward it, on a free port. The address chosen is "
                             "shown once the node is ready")
    parser.add_argument("--advertise", metavar="HOST:PORT",
                        help="the address other nodes dial (the node id is its hash), for a "
                             "node listening on 0.0.0.0 or [::] or behind a port mapping; a "
                             "wildcard listen without it learns its address from the bootstrap, "
                             "or from a known peer of an earlier run")
    parser.add_argument("--bootstrap", metavar="HOST:PORT",
                        help="any node of an existing ring to join through; omit to start one")
    parser.add_argument("--client", action="store_true",
                        help="this node cannot be reached from outside (a NAT, a firewall): "
                             "use the ring through a relay, a full member it dials, without "
                             "joining it (docs/nat.md)")
    parser.add_argument("--relay", metavar="HOST:PORT", action="append", default=[],
                        help="with --client: a relay to try first (again for more); else "
                             "the nodes after this node's id, then the bootstrap")
    parser.add_argument("--relay-clients", type=int, default=32, metavar="N",
                        help="as a full member, relay for at most N client nodes "
                             "(0: none; default 32)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where each nick's identity key, pinned keys, history and "
                             "outbox are kept, one folder per nick (default "
                             "$XDG_DATA_HOME/chordchat, else ~/.local/share/chordchat)")
    parser.add_argument("--headless", action="store_true",
                        help="no full-screen UI: commands on stdin, events on stdout")
    parser.add_argument("--json", action="store_true",
                        help="with --headless: one JSON object per event line")
    parser.add_argument("--irc", metavar="HOST:PORT",
                        help="serve IRC clients here, each one a chat user of this node "
                             "(loopback unless --irc-password is given)")
    parser.add_argument("--irc-password", metavar="PW",
                        help="the password (PASS) IRC clients must give")
    parser.add_argument("--irc-name", metavar="NAME",
                        help="the server name the IRC gateway gives itself (default: the "
                             "node's short id and .chordchat)")
    parser.add_argument("--set-irc-password", metavar="NICK",
                        help="set the password with which an IRC client logs in (SASL) as "
                             "NICK and gets its identity key, read from stdin, in --data-dir; "
                             "then exit (nothing else is needed)")
    parser.add_argument("--set-irc-oper", metavar="NAME",
                        help="make NAME an IRC operator of this node's gateway (OPER NAME "
                             "PASSWORD), the password read from stdin, in --data-dir; then "
                             "exit (nothing else is needed)")
    tuning = parser.add_argument_group("tuning (tests and demos)")
    tuning.add_argument("--ring-interval", type=float, metavar="S",
                        help="stabilize every S seconds; fix fingers and check the "
                             "predecessor every 2*S, probe remembered peers of another ring "
                             "every 10*S (default 0.5)")
    tuning.add_argument("--timeout", type=float, metavar="S",
                        help="timeout of each call to another node (default 3)")
    tuning.add_argument("--successors", type=int, metavar="N",
                        help="length of the successor list (default 8)")
    tuning.add_argument("--replicas", type=int, default=3, metavar="N",
                        help="successors holding a copy of what a node maintains (default 3)")
    tuning.add_argument("--maintenance-interval", type=float, metavar="S",
                        help="how often the chat rebalances and re-replicates (default 1)")
    tuning.add_argument("--prune-grace", type=float, metavar="S",
                        help="a channel member unreachable this long is removed (default 10)")
    tuning.add_argument("--retry-for", type=float, metavar="S",
                        help="how long a request or send is retried before it fails (default 20)")
    tuning.add_argument("--quiet", action="store_true",
                        help="with --headless: leave out log and ring-status lines")
    tuning.add_argument("--log-file", metavar="PATH",
                        help="write the debug log to PATH (default: the info log goes to "
                             "$CHORDCHAT_LOG, else $XDG_CACHE_HOME/chordchat/NICK-PORT.log, "
                             "else ~/.cache/chordchat/NICK-PORT.log; never to the terminal)")
    return parser


def version() -> str:
    """This program's version, as installed (``setup.cfg``)."""
    try:
        return importlib.metadata.version("chordchat")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def default_listen(advertise: Address | None, bootstrap: Address | None) -> Address:
    """Where a node listens without --listen: every address on the advertised port; else,
    joining a node on another host, this host's address toward it (the kernel's route to
    it; nothing is sent); else loopback. On a free port (0) but for the advertised one."""
    if advertise is not None:
        return Address("::" if ":" in advertise.host else "0.0.0.0", advertise.port)
    if bootstrap is not None and not is_loopback(bootstrap.host):
        family = socket.AF_INET6 if ":" in bootstrap.host else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((bootstrap.host, bootstrap.port))
                return Address(probe.getsockname()[0], 0)
        except OSError:
            pass   # no route (or a name that does not resolve): the start will say so
    return Address("127.0.0.1", 0)


def parse_options(argv: list[str] | None = None) -> tuple[Options, argparse.Namespace]:
    """Parse the command line into ``Options``; raises ValueError with a clear message."""
    args = _parser().parse_args(argv)
    if args.json and not args.headless:
        raise ValueError("--json needs --headless")
    try:
        check_nick(args.nick)
    except CommandError as e:
        raise ValueError(str(e)) from None
    try:
        bootstrap = Address.parse(args.bootstrap) if args.bootstrap else None
    except AddressError as e:
        raise ValueError(f"--bootstrap: {e}") from None
    try:
        advertised = Address.parse(args.advertise) if args.advertise else None
    except AddressError as e:
        raise ValueError(f"--advertise: {e}") from None
    try:
        listen = (Address.parse(args.listen, allow_any_port=True) if args.listen
                  else default_listen(advertised, bootstrap))
    except AddressError as e:
        raise ValueError(f"--listen: {e}") from None
    irc = None
    if args.irc:
        try:
            irc = Address.parse(args.irc, allow_any_port=True)
        except AddressError as e:
            raise ValueError(f"--irc: {e}") from None
        if not is_loopback(irc.host) and not args.irc_password:
            raise ValueError(f"--irc {args.irc} is not a loopback address: give --irc-password")
    elif args.irc_password:
        raise ValueError("--irc-password needs --irc")
    if args.irc_name is not None:
        if not args.irc:
            raise ValueError("--irc-name needs --irc")
        if not valid_server_name(args.irc_name):
            raise ValueError(f"--irc-name {args.irc_name!r}: a server name is letters, digits, "
                             "'-' and '.', with at least one '.' (at most 63 characters)")
    chord: dict = {}
    advertise = advertised
    if advertise is not None:
        if advertise.is_wildcard:
            raise ValueError(f"--advertise {advertise}: other nodes cannot dial a wildcard "
                             "address; name this host's address")
        chord["advertise"] = advertise
    # a wildcard listen with neither: the runtime learns the address from a known peer of
    # an earlier run, or refuses to start naming --advertise (exit 2)
    if args.ring_interval is not None:
        chord.update(stabilize_interval=args.ring_interval,
                     fix_fingers_interval=2 * args.ring_interval,
                     check_predecessor_interval=2 * args.ring_interval,
                     probe_interval=10 * args.ring_interval)
    if args.timeout is not None:
        chord["timeout"] = args.timeout
    if args.successors is not None:
        chord["successors"] = args.successors
    chat: dict = {}
    for name in ("maintenance_interval", "prune_grace", "retry_for"):
        value = getattr(args, name)
        if value is not None:
            chat[name] = value
    for name, value in (("--ring-interval", args.ring_interval), ("--timeout", args.timeout),
                        ("--maintenance-interval", args.maintenance_interval),
                        ("--prune-grace", args.prune_grace), ("--retry-for", args.retry_for)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds")
    if args.replicas < 0 or (args.successors is not None and args.successors < 1):
        raise ValueError("--replicas must be at least 0 and --successors at least 1")
    try:
        relays = tuple(Address.parse(r) for r in args.relay)
    except AddressError as e:
        raise ValueError(f"--relay: {e}") from None
    if relays and not args.client:
        raise ValueError("--relay needs --client (a full member is reached directly)")
    if args.client and bootstrap is None and not relays:
        raise ValueError("--client needs --bootstrap or --relay: a client cannot start a ring")
    if args.relay_clients < 0:
        raise ValueError("--relay-clients must be at least 0")
    return Options(args.nick, listen, bootstrap, chord, args.replicas, chat, irc,
                   args.irc_password, irc_name=args.irc_name, data_dir=args.data_dir,
                   client=args.client, relays=relays, relay_clients=args.relay_clients), args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a == "--set-irc-password" or a.startswith("--set-irc-password=") for a in argv):
        # the node owner's say-so: which IRC password logs in as a nick (docs/irc.md, SASL)
        from core.irc.accounts import set_password_main
        return set_password_main(argv)
    if any(a == "--set-irc-oper" or a.startswith("--set-irc-oper=") for a in argv):
        # the node owner's say-so: who may be an IRC operator of its gateway (docs/irc.md)
        from core.irc.accounts import set_oper_main
        return set_oper_main(argv)
    try:
        options, args = parse_options(argv)
    except ValueError as e:
        print(f"chordchat: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.log_file:
        logging.basicConfig(filename=args.log_file, level=logging.DEBUG,
                            format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
    from tui.logfile import setup_logging
    setup_logging(options)   # every log line and traceback to the file, never to the terminal
    if args.headless:
        from core import headless
        return headless.run(options, as_json=args.json, quiet_logs=args.quiet)
    from tui.app import run_ui  # only here: headless runs need no urwid
    return run_ui(options)


if __name__ == "__main__":
    sys.exit(main())
