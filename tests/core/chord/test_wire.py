"""The wire codec, frames cut out of a byte stream, and what a node does with malformed,
stalled or cut frames from the network."""

import asyncio
import json
import logging
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.chord import Address, Local, PeerUnreachable, Remote, RemoteError
from core.chord.tcp import TcpTransport
from core.chord.testing import start_node, stop_all, wait_until
from core.chord.wire import MAX_FRAME, FrameError, Frames, decode_body, encode

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


async def read_reply(reader: asyncio.StreamReader) -> dict:
    """One frame off a raw connection to a node (the test is the client)."""
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    return decode_body(await reader.readexactly(length))


def ping(rid: int) -> bytes:
    return encode({"id": rid, "method": "ping", "args": {}})


def cut_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "inside a frame" in r.getMessage()]


class TestCodec:
    @given(st.dictionaries(st.text(), json_values, max_size=6))
    def test_codec__round_trips_any_json_object(self, message):
        frames = Frames()
        assert [decode_body(body) for body in frames.feed(encode(message))] == [message]
        assert not frames.partial

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

    def test_frames__length_over_limit_is_refused_before_its_body_comes(self):
        with pytest.raises(FrameError, match="exceeds"):
            Frames().feed(struct.pack(">I", 2**31))

    def test_frames__half_a_frame_is_held_until_the_rest_comes(self):
        frame = encode({"text": "x" * 100})
        frames = Frames()
        assert frames.feed(frame[:2]) == [] and frames.partial      # inside the length
        assert frames.feed(frame[2:20]) == [] and frames.partial    # inside the body
        assert [decode_body(b) for b in frames.feed(frame[20:])] == [{"text": "x" * 100}]
        assert not frames.partial

    def test_frames__nothing_is_partial_between_frames(self):
        frames = Frames()
        assert not frames.partial
        assert len(frames.feed(encode({"a": 1}) + encode({"b": [2]}))) == 2
        assert not frames.partial


class TestFrames:
    def test_frames__cut_whole_bodies_out_of_any_split_of_the_stream(self):
        stream = b"".join(encode({"n": i, "text": "ü" * i}) for i in range(20))
        for step in (1, 3, 7, 64, len(stream)):
            frames = Frames()
            bodies = []
            for at in range(0, len(stream), step):
                bodies += frames.feed(stream[at:at + step])
            assert [decode_body(b)["n"] for b in bodies] == list(range(20))
            assert not frames.partial

    def test_frames__a_length_over_the_limit_is_refused(self):
        with pytest.raises(FrameError, match="exceeds"):
            Frames().feed((MAX_FRAME + 1).to_bytes(4, "big"))

    def test_codec__integers_beyond_64_bits_survive_the_fast_codec(self):
        message = {"big": 2**100, "small": -(2**63) - 1, "text": "1234567890123456789012"}
        assert decode_body(encode(message)[4:]) == message


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
            replies = [await read_reply(reader), await read_reply(reader)]
            by_id = {r["id"]: r for r in replies}
            assert "unknown method" in by_id[7]["error"]
            assert by_id[8] == {"id": 8, "result": {}}
            writer.close()
        finally:
            await node.stop()


    async def test_node__whole_frames_in_one_write_then_a_clean_end(self, caplog):
        caplog.set_level(logging.WARNING, logger="core.chord.tcp")
        node = await start_node()
        try:
            reader, writer = await asyncio.open_connection(node.address.host, node.address.port)
            writer.write(ping(1) + ping(2))
            await writer.drain()
            assert [await read_reply(reader), await read_reply(reader)] == [
                {"id": 1, "result": {}}, {"id": 2, "result": {}}]
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 5) == b""   # the node closes too
            writer.close()
            assert not cut_warnings(caplog)
        finally:
            await node.stop()

    async def test_node__a_stalled_body_is_dropped_after_the_body_timeout_not_before(self):
        node = Local(Address("127.0.0.1", 0), transport=TcpTransport(body_timeout=0.3))
        await node.start()
        try:
            reader, writer = await asyncio.open_connection(node.address.host, node.address.port)
            loop = asyncio.get_running_loop()
            started = loop.time()
            writer.write(encode({"id": 1, "method": "ping", "args": {"x": "x" * 100}})[:20])
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert 0.25 < loop.time() - started < 4.0
            writer.close()
        finally:
            await node.stop()

    @pytest.mark.parametrize("cut", [2, 20], ids=["inside the length", "inside the body"])
    async def test_node__a_frame_cut_short_by_the_peer_is_logged_and_others_served(
            self, caplog, cut):
        caplog.set_level(logging.WARNING, logger="core.chord.tcp")
        node = await start_node()
        node.register_command("echo", lambda payload: payload)
        other = await start_node()
        try:
            reader, writer = await asyncio.open_connection(node.address.host, node.address.port)
            writer.write(encode({"id": 1, "method": "ping", "args": {"x": "x" * 100}})[:cut])
            await writer.drain()
            writer.write_eof()
            await wait_until(lambda: cut_warnings(caplog), 5, what="the cut frame logged")
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            assert await other.user_command(node.address, "echo", "still here") == "still here"
        finally:
            await stop_all([node, other])

    async def test_node__a_frame_in_pieces_within_the_body_timeout_is_answered_and_kept(self):
        node = Local(Address("127.0.0.1", 0), transport=TcpTransport(body_timeout=1.0))
        await node.start()
        node.register_command("echo", lambda payload: payload)
        try:
            reader, writer = await asyncio.open_connection(node.address.host, node.address.port)
            frame = encode({"id": 1, "method": "user", "args": {"type": "echo",
                                                                "payload": "y" * 1000}})
            for at in range(0, len(frame), 250):
                writer.write(frame[at:at + 250])
                await writer.drain()
                await asyncio.sleep(0.02)   # paces the pieces, not a wait
            assert await asyncio.wait_for(read_reply(reader), 5) == {"id": 1,
                                                                     "result": "y" * 1000}
            await asyncio.sleep(1.2)   # past the body timeout: its timer ended with the frame
            writer.write(ping(2))
            await writer.drain()
            assert await asyncio.wait_for(read_reply(reader), 5) == {"id": 2, "result": {}}
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
            assert a.transport.connected() == [b.address]
        finally:
            await stop_all([a, b])


@given(json_values)
def test_json_values_strategy_is_json(value):
    # The property tests above are only as good as their inputs: each one is strict JSON
    # (no NaN or infinity) and comes back from it equal, of the same type.
    again = json.loads(json.dumps(value, allow_nan=False))
    assert again == value and type(again) is type(value)


async def test_tcp__a_connect_attempt_outliving_its_callers_logs_no_traceback():
    # a peer whose SYNs go unanswered (here: a listener whose accept queue is full): the
    # caller gives up at its own deadline, the shared attempt at the transport's; nobody
    # is left to take its TimeoutError, and asyncio must not log "never retrieved"
    import gc
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):   # fill the accept queue (never accepted)
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    loop = asyncio.get_running_loop()
    logged: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: logged.append(context))
    transport = TcpTransport(timeout=0.3)
    try:
        with pytest.raises(PeerUnreachable):
            await transport.call(Address("127.0.0.1", port), "ping", {}, timeout=0.05)
        await asyncio.sleep(0.6)   # past the attempt's own deadline
        gc.collect()
        await asyncio.sleep(0)
        assert [c.get("message") for c in logged] == []
    finally:
        loop.set_exception_handler(None)
        await transport.close()
        for s in [listener, *fillers]:
            s.close()
