"""What signatures cost: sign and verify a channel message, seal and open a private one, and
what a fan-out pays for them — the maintainer verifies each message once, every member
verifies it again — beside the same work without the checks. ``python -m bench.signing``."""

from __future__ import annotations

import time

from core.chat.model.channel import Channel, Entry
from core.chat.model.entries import sign_entry
from core.chat.model.identity import Identity
from core.chat.model.sealed import open_sealed, seal

from .settings import SIGNING_OPS
from .tables import table

TEXT = "a channel message of about sixty characters, as people type"


def _per_op(fn, count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        fn(i)
    return (time.perf_counter() - started) / count


def run(count: int = SIGNING_OPS) -> dict:
    alice, bob = Identity.generate("alice"), Identity.generate("bob")
    entries = [sign_entry(alice, "room", "msg", f"{i:032x}", address="127.0.0.1:4000",
                          text=TEXT, at=1.0e9 + i) for i in range(count)]
    wires = [{"seq": i + 1, **e.to_wire()} for i, e in enumerate(entries)]
    sealed = [seal(alice, bob.key, TEXT, f"{i:032x}", to="bob") for i in range(count)]
    out = {
        "sign": _per_op(lambda i: sign_entry(alice, "room", "msg", f"{i:032x}",
                                             address="127.0.0.1:4000", text=TEXT), count),
        "verify": _per_op(lambda i: entries[i].valid(), count),
        "seal": _per_op(lambda i: seal(alice, bob.key, TEXT, f"{i:032x}", to="bob"), count),
        "open": _per_op(lambda i: open_sealed(bob, alice.key, sealed[i]), count),
        # a member's work per delivered entry: parse and verify it (uncached: each is new)
        "member_checked": _per_op(lambda i: Entry.from_wire(wires[i], "room"), count),
        # the same parse without a signature check (what a delivery cost before)
        "member_unchecked": _per_op(
            lambda i: Entry(wires[i]["seq"], wires[i]["msg_id"], "msg", wires[i]["nick"],
                            wires[i]["text"], float(wires[i]["at"])), count),
    }
    # the maintainer: one check per message, then one delivery per member (unchanged)
    out["maintainer_checked"] = _per_op(
        lambda i: Channel("room").append("msg", "alice", signed=entries[i])
        if entries[i].valid() else None, count)
    out["deliveries_per_core_checked"] = 1.0 / out["member_checked"]
    out["deliveries_per_core_unchecked"] = 1.0 / out["member_unchecked"]
    return out


def lines(r: dict) -> list[str]:
    us = lambda s: f"{s * 1e6:.0f} µs"  # noqa: E731
    return [
        "## Signatures: what they cost",
        "",
        "Per operation, one core (PyNaCl/libsodium, ed25519; `python -m bench.signing`):",
        "",
        *table(["sign", "verify", "seal (crypto_box)", "open",
                "a member's check of one delivered entry", "the same without the check"],
               [[us(r[k]) for k in ("sign", "verify", "seal", "open", "member_checked",
                                    "member_unchecked")]]),
        "",
        f"The maintainer verifies each message once ({us(r['maintainer_checked'])} with the "
        "append) whatever the number of members; the fan-out itself sends the signed "
        "original unchanged. Each member verifies what it shows: at most "
        f"{r['deliveries_per_core_checked']:,.0f} deliveries/s per member core with the "
        f"check, {r['deliveries_per_core_unchecked']:,.0f}/s without — far above what a "
        "member receives, so the maintainer's fan-out rate (the chat table above) is "
        "what bounds a channel.",
        "",
    ]


def section(results: dict, cfg: dict, images: dict) -> list[str]:
    return lines(results["signing"]) if "signing" in results else []


if __name__ == "__main__":
    print("\n".join(lines(run())))
