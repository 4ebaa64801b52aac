"""Reading frames off a stream: whole frames, the end of a stream, and a body that stalls."""

from __future__ import annotations

import asyncio

import pytest

from core.chord import wire


def stream(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


class TestReadFrame:
    def test_read_frame__whole_frames_then_a_clean_end(self):
        async def main():
            reader = stream(wire.encode({"a": 1}) + wire.encode({"b": [2]}))
            assert await wire.read_frame(reader, 1.0) == {"a": 1}
            assert await wire.read_frame(reader, 1.0) == {"b": [2]}
            assert await wire.read_frame(reader, 1.0) is None

        asyncio.run(main())

    def test_read_frame__a_body_that_stops_coming_times_out(self):
        async def main():
            frame = wire.encode({"text": "x" * 100})
            reader = stream(frame[:20], eof=False)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(wire.FrameError, match="not received within 0.2 s"):
                await wire.read_frame(reader, 0.2)
            assert 0.15 < loop.time() - started < 2.0

        asyncio.run(main())

    def test_read_frame__a_body_cut_short_is_an_error(self):
        async def main():
            frame = wire.encode({"text": "x" * 100})
            with pytest.raises(wire.FrameError, match="inside a frame"):
                await wire.read_frame(stream(frame[:20]), 1.0)
            with pytest.raises(wire.FrameError, match="inside a length prefix"):
                await wire.read_frame(stream(frame[:2]), 1.0)

        asyncio.run(main())

    def test_read_frame__a_body_that_arrives_in_pieces_within_the_timeout(self):
        async def main():
            frame = wire.encode({"text": "y" * 1000})
            reader = stream(frame[:10], eof=False)

            async def trickle():
                for i in range(10, len(frame), 100):
                    await asyncio.sleep(0.01)  # paces the pieces, not a wait
                    reader.feed_data(frame[i:i + 100])

            feeder = asyncio.ensure_future(trickle())
            assert await wire.read_frame(reader, 2.0) == {"text": "y" * 1000}
            await feeder

        asyncio.run(main())

    def test_read_frame__no_timeout_means_wait(self):
        async def main():
            frame = wire.encode({"k": "v"})
            reader = stream(frame[:6], eof=False)
            asyncio.get_running_loop().call_later(0.05, reader.feed_data, frame[6:])
            assert await wire.read_frame(reader, None) == {"k": "v"}

        asyncio.run(main())


class TestFrames:
    def test_frames__cut_whole_bodies_out_of_any_split_of_the_stream(self):
        stream = b"".join(wire.encode({"n": i, "text": "ü" * i}) for i in range(20))
        for step in (1, 3, 7, 64, len(stream)):
            frames = wire.Frames()
            bodies = []
            for at in range(0, len(stream), step):
                bodies += frames.feed(stream[at:at + step])
            assert [wire.decode_body(b)["n"] for b in bodies] == list(range(20))
            assert not frames.partial

    def test_frames__a_length_over_the_limit_is_refused(self):
        with pytest.raises(wire.FrameError, match="exceeds"):
            wire.Frames().feed((wire.MAX_FRAME + 1).to_bytes(4, "big"))

    def test_codec__integers_beyond_64_bits_survive_the_fast_codec(self):
        message = {"big": 2**100, "small": -(2**63) - 1, "text": "1234567890123456789012"}
        assert wire.decode_body(wire.encode(message)[4:]) == message
