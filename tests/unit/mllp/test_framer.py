import pytest

from channels.mllp.framer import Frame, Junk, MllpFramer, Oversize, Truncated, frame

MSG1 = b"MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|P|2.5\rPID|1\r"
MSG2 = b"MSH|^~\\&|A|B|C|D|20250101||ADT^A01|2|P|2.5\rPID|2\r"


def feed_in_pieces(framer: MllpFramer, data: bytes, size: int) -> list:
    events = []
    for i in range(0, len(data), size):
        events += framer.feed(data[i:i + size])
    return events


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_frames_split_at_any_boundary(size):
    stream = frame(MSG1) + b"\r\n" + frame(MSG2)
    assert feed_in_pieces(MllpFramer(), stream, size) == [Frame(MSG1), Frame(MSG2)]


def test_whitespace_and_nul_junk_is_counted_silently():
    framer = MllpFramer()
    events = framer.feed(b"\r\n\x00 " + frame(MSG1) + b"\n\x00")
    assert events == [Frame(MSG1)]
    assert framer.junk_bytes == 6


def test_text_junk_is_reported():
    framer = MllpFramer()
    events = framer.feed(b"hello" + frame(MSG1))
    assert events == [Junk(5, b"hello"), Frame(MSG1)]


def test_lone_fs_inside_a_frame_is_data():
    data = b"MSH|x\x1cy\r"
    assert MllpFramer().feed(frame(data)) == [Frame(data)]


def test_oversize_frame_is_reported_with_prefix_and_size_then_resyncs():
    framer = MllpFramer(max_frame_bytes=10_000)
    big = MSG1 + b"X" * 50_000
    events = feed_in_pieces(framer, frame(big) + frame(MSG2), 4000)
    assert len(events) == 2
    assert isinstance(events[0], Oversize)
    assert events[0].size == len(big) and events[0].prefix == big[:4096]
    assert events[1] == Frame(MSG2)
    assert (framer.oversize, framer.frames) == (1, 1)


def test_oversize_detected_in_a_single_chunk():
    framer = MllpFramer(max_frame_bytes=10)
    assert framer.feed(frame(MSG1) + frame(b"short")) == [Oversize(MSG1, len(MSG1)), Frame(b"short")]


def test_new_start_block_inside_a_frame_truncates_the_previous_one():
    framer = MllpFramer()
    events = framer.feed(b"\x0bMSH|partial" + frame(MSG2))
    assert events == [Truncated(b"MSH|partial", 11), Frame(MSG2)]
    assert framer.truncated == 1


def test_start_block_during_oversize_discard_truncates():
    framer = MllpFramer(max_frame_bytes=100)
    events = framer.feed(b"\x0b" + MSG1 + b"Y" * 500)
    assert events == [] and framer.in_frame
    events = framer.feed(b"Y" * 10 + frame(MSG2))
    assert len(events) == 2
    assert isinstance(events[0], Truncated) and events[0].size == len(MSG1) + 510
    assert events[1] == Frame(MSG2)


def test_eof_mid_frame_reports_truncated_and_resets():
    framer = MllpFramer()
    assert framer.feed(b"\x0bMSH|half") == []
    assert framer.in_frame
    assert framer.eof() == [Truncated(b"MSH|half", 8)]
    assert not framer.in_frame and framer.eof() == []


def test_end_marker_split_across_chunks_while_discarding():
    framer = MllpFramer(max_frame_bytes=5)
    assert framer.feed(b"\x0b" + b"Z" * 20 + b"\x1c") == []
    assert framer.feed(b"\r") == [Oversize(b"Z" * 20, 20)]
