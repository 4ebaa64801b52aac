"""The ring's verbs: each declared once, with its handler; what a node calls, it serves."""

from __future__ import annotations

import ast
import inspect

import pytest

from core.chord import Address, RemoteError, protocol, recursive
from core.chord.node import Local
from core.chord.protocol import RingProtocol, serves
from core.chord.recursive import RouteProtocol
from core.chord.routing import Routing
from core.chord.sim import SimNetwork, run
from core.chord.transport import LATER


def called_verbs(module) -> set[str]:
    """The verbs a module names where it calls or messages another node."""
    verbs = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("_call", "call", "send") and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)):
            verbs.add(node.args[1].value)
    return verbs


def served_by_a_node() -> frozenset[str]:
    async def main():
        node = Local(Address("10.0.0.1", 4000), transport=SimNetwork().transport())
        return type(node.protocol).SERVED
    return run(main())


def alone() -> RingProtocol:
    me = Address("10.0.0.1", 4000)
    return RingProtocol(SimNetwork().transport(), Routing(me, 3))


class TestVerbs:
    def test_verbs__every_verb_called_is_served_and_every_served_verb_called(self):
        served = served_by_a_node()
        assert served == RouteProtocol.SERVED
        assert called_verbs(protocol) | called_verbs(recursive) == served
        assert called_verbs(recursive) == {"route", "routed"} == served - RingProtocol.SERVED

    @pytest.mark.parametrize("calls", [RingProtocol, RouteProtocol])
    def test_verbs__immediate_ones_are_plain_functions_the_others_coroutines(self, calls):
        verbs = calls.VERBS
        assert set(verbs) == calls.SERVED
        assert {v for v, verb in verbs.items() if verb.immediate} == calls.IMMEDIATE
        for verb, (handler, immediate) in verbs.items():
            assert handler.__name__ == f"rpc_{verb}"
            assert inspect.iscoroutinefunction(handler) != immediate, verb

    def test_serves__refuses_a_handler_of_the_wrong_kind_or_name(self):
        with pytest.raises(TypeError, match="plain function"):
            serves(immediate=True)(_async_rpc_x)
        with pytest.raises(TypeError, match="coroutine"):
            serves()(_sync_rpc_y)
        with pytest.raises(TypeError, match="rpc_<verb>"):
            serves(immediate=True)(_not_a_handler)

    def test_serves__a_subclass_adds_verbs_and_the_base_keeps_its_own(self):
        class Echoing(RingProtocol):
            @serves(immediate=True)
            def rpc_echo(self, text: str) -> dict:
                return {"text": text}

        assert Echoing.SERVED == RingProtocol.SERVED | {"echo"}
        assert "echo" in Echoing.IMMEDIATE and "echo" not in RingProtocol.SERVED
        calls = Echoing(SimNetwork().transport(), Routing(Address("10.0.0.1", 4000), 3))
        assert calls.serve_now("echo", {"text": "hi"}) == {"text": "hi"}


class TestServe:
    def test_serve_now__answers_immediate_verbs_and_leaves_the_rest_for_later(self):
        async def main():
            calls = alone()
            assert calls.serve_now("ping", {}) == {}
            assert calls.serve_now("state", {}) == await calls.serve("state", {})
            assert calls.serve_now("notify", {"node": "10.0.0.2:4000"}) is LATER
            assert calls.serve_now("no_such_verb", {}) is LATER
        run(main())

    def test_serve__an_unknown_verb_or_a_protocol_that_only_calls_is_refused(self):
        async def main():
            with pytest.raises(RemoteError, match="unknown method"):
                await alone().serve("no_such_verb", {})
            calling_only = RingProtocol(SimNetwork().transport())
            with pytest.raises(RemoteError, match="unknown method"):
                await calling_only.serve("ping", {})
            assert calling_only.serve_now("ping", {}) is LATER
        run(main())


async def _async_rpc_x(self) -> None:
    pass


_async_rpc_x.__name__ = "rpc_x"


def _sync_rpc_y(self) -> None:
    pass


_sync_rpc_y.__name__ = "rpc_y"


def _not_a_handler(self) -> None:
    pass
