"""The wire codec and what a node does with malformed frames from the network."""

import asyncio
import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.chord import Address, Local, PeerUnreachable, Remote, RemoteError
from core.chord.tcp import TcpTransport
from core.chord.wire import MAX_FRAME, FrameError, decode_body, encode, read_frame
from tests.ring import start_node, stop_all

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def feed(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


class TestCodec:
    @given(st.dictionaries(st.text(), json_values, max_size=6))
    def test_codec__round_trips_any_json_object(self, message):
        async def roundtrip():
            return await read_frame(feed(encode(message)))
        assert asyncio.run(roundtrip()) == message

    @given(st.binary(max_size=64))
    def test_decode_body__any_bytes_decode_to_an_object_or_raise_frame_error(self, body):
        try:
            message = decode_body(body)
        except FrameError:
            return
        assert isinstance(message, dict)

    def test_encode__refuses_a_frame_over_the_limit(self):
        with pytest.raises(FrameError, match="exceeds"):
            encode({"text": "x" * (MAX_FRAME + 1)})

    @pytest.mark.parametrize("body, error", [
        (b"\xff\xfe", "UTF-8"), (b"{not json", "JSON"), (b"[1, 2]", "not an object"),
    ])
    def test_decode_body__names_what_is_wrong(self, body, error):
        with pytest.raises(FrameError, match=error):
            decode_body(body)

    async def test_read_frame__length_over_limit_is_refused_before_reading(self):
        with pytest.raises(FrameError, match="exceeds"):
            await read_frame(feed(struct.pack(">I", 2**31)))

    async def test_read_frame__half_a_frame_then_silence_times_out(self):
        reader = asyncio.StreamReader()
        reader.feed_data(struct.pack(">I", 100) + b"{")
        with pytest.raises(FrameError, match="within"):
            await read_frame(reader, body_timeout=0.1)

    async def test_read_frame__clean_end_between_frames_is_none(self):
        assert await read_frame(feed(b"")) is None


BAD_FRAMES = {
    "garbage bytes (an HTTP request)": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "a 2 GiB length prefix": struct.pack(">I", 2**31),
    "invalid UTF-8": struct.pack(">I", 4) + b"\xff\xfe\xfd\xfc",
    "invalid JSON": struct.pack(">I", 9) + b"{'a': 1,}",
    "a frame of the wrong shape": encode({"hello": "world"}),
    "a request with a non-object args": encode({"id": 1, "method": "ping", "args": [1]}),
}


class TestMalformedFrames:
    @pytest.mark.parametrize("name", list(BAD_FRAMES))
    async def test_node__bad_frame_costs_only_that_connection(self, name):
        nodes = [await start_node()]
        nodes.append(await start_node(nodes[0]))
        node = nodes[0]
        try:
            reader, writer = await asyncio.open_connection(node.address.host, node.address.port)
            writer.write(BAD_FRAMES[name])
            await writer.drain()
            # The node closes that connection ...
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            # ... and keeps answering everyone else.
            owner, _ = await nodes[1].find_successor(node.id)
            assert owner.address == node.address
            assert await nodes[1].user_command(node.address, "missing", None) is None
        except RemoteError as e:
            assert "no handler" in str(e)
        finally:
            await stop_all(nodes)

    async def test_node__half_a_frame_then_silence_is_dropped_and_others_served(self):
        node = Local(Address("127.0.0.1", 0), transport=TcpTransport(body_timeout=0.2))
        await node.start()
        node.register_command("echo", lambda payload: payload)
        other = await start_node()
        try:
            reader, writer = await asyncio.open_connection(node.address.host, node.address.port)
            writer.write(struct.pack(">I", 50) + b'{"id": 1,')
            await writer.drain()
            assert await other.user_command(node.address, "echo", "still here") == "still here"
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
        finally:
            await stop_all([node, other])

    async def test_node__unknown_method_is_an_error_reply_not_a_disconnect(self):
        node = await start_node()
        try:
            reader, writer = await asyncio.open_connection(node.address.host, node.address.port)
            writer.write(encode({"id": 7, "method": "no_such_thing", "args": {}}))
            writer.write(encode({"id": 8, "method": "ping", "args": {}}))
            await writer.drain()
            replies = [await read_frame(reader), await read_frame(reader)]
            by_id = {r["id"]: r for r in replies}
            assert "unknown method" in by_id[7]["error"]
            assert by_id[8] == {"id": 8, "result": {}}
            writer.close()
        finally:
            await node.stop()


class TestUserCommands:
    async def test_user_command__round_trips_sync_and_async_handlers(self):
        a = await start_node()
        b = await start_node(a)
        try:
            async def shout(payload):
                await asyncio.sleep(0)
                return {"said": payload["text"].upper()}
            b.register_command("echo", lambda payload: payload)
            b.register_command("shout", shout)
            assert await a.user_command(b.address, "echo", {"x": [1, "ü"]}) == {"x": [1, "ü"]}
            assert await Remote(b.address).user_command("shout", {"text": "hi"}) == {"said": "HI"}
            assert await b.user_command(b.address, "echo", 5) == 5  # to itself, no network
        finally:
            await stop_all([a, b])

    async def test_user_command__handler_exception_reaches_the_caller(self):
        a = await start_node()
        b = await start_node(a)
        try:
            def broken(payload):
                raise ValueError("no such channel: #x")
            b.register_command("broken", broken)
            with pytest.raises(RemoteError, match="no such channel"):
                await a.user_command(b.address, "broken", {})
            b.register_command("echo", lambda p: p)
            assert await a.user_command(b.address, "echo", 1) == 1  # still usable
        finally:
            await stop_all([a, b])

    async def test_user_command__a_reply_that_cannot_go_on_the_wire_is_an_error(self):
        a = await start_node()
        b = await start_node(a)
        try:
            b.register_command("odd", lambda payload: {1, 2})  # a set is not JSON
            with pytest.raises(RemoteError, match="reply could not be sent"):
                await a.user_command(b.address, "odd", None)
            b.register_command("echo", lambda p: p)
            assert await a.user_command(b.address, "echo", "ok") == "ok"
        finally:
            await stop_all([a, b])

    async def test_user_command__dead_address_fails_fast(self):
        a = await start_node()
        b = await start_node(a)
        dead = b.address
        await b.stop()
        try:
            with pytest.raises(PeerUnreachable, match=str(dead.port)):
                await asyncio.wait_for(a.user_command(dead, "echo", 1, timeout=1.0), 5)
        finally:
            await a.stop()

    async def test_user_command__silent_peer_times_out_and_is_suspected(self):
        async def silent(reader, writer):
            await reader.read()  # accepts, reads, never answers
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        silent_address = Address("127.0.0.1", server.sockets[0].getsockname()[1])
        a = await start_node()
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(PeerUnreachable, match="within"):
                await asyncio.wait_for(a.user_command(silent_address, "x", None, timeout=0.3), 5)
            assert loop.time() - started < 4
            assert a.transport.is_suspected(silent_address)
        finally:
            server.close()
            await a.stop()

    async def test_connections__are_reused_across_calls(self):
        a = await start_node()
        b = await start_node(a)
        try:
            b.register_command("echo", lambda p: p)
            for i in range(20):
                assert await a.user_command(b.address, "echo", i) == i
            assert list(a.transport._connections) == [b.address]
        finally:
            await stop_all([a, b])


def test_json_values_strategy_is_json():
    # The property tests above are only as good as their inputs.
    json.dumps({"a": [1, None, "x"]})
