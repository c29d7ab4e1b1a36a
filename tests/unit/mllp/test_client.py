from channels.mllp.client import send_files, split_messages
from tests.unit.hl7.samples import oru
from tests.unit.mllp.helpers import RecordingHandler


def test_split_messages_handles_lf_crlf_and_several_messages():
    data = (oru("F1", segment_end="\n") + "\n" + oru("F2", segment_end="\r\n")).encode()
    messages = split_messages(data)
    assert len(messages) == 2
    assert messages[0] == oru("F1").encode() and messages[1] == oru("F2").encode()


def test_split_messages_keeps_lf_inside_fields():
    data = oru("F1", segment_end="\n").replace("OBX|1|ED", "NTE|1||ligne 1\nligne 2\nOBX|1|ED").encode()
    [message] = split_messages(data)
    assert b"ligne 1\nligne 2\rOBX" in message


async def test_send_files_prints_one_line_per_message_and_counts_non_aa(make_server, tmp_path):
    class Picky(RecordingHandler):
        async def handle_frame(self, raw, peer):
            self.code = "AE" if b"|F2|" in raw else "AA"
            return await super().handle_frame(raw, peer)

    handler = Picky()
    server = await make_server(handler)
    first = tmp_path / "a.hl7"
    first.write_bytes((oru("F1", segment_end="\n") + oru("F2", segment_end="\n")).encode())
    second = tmp_path / "b.hl7"
    second.write_bytes(oru("F3", charset="8859/1", segment_end="\r\n").encode("latin-1"))
    lines = []
    failures = await send_files("127.0.0.1", server.port, [first, second], timeout=5, out=lines.append)
    assert failures == 1
    assert lines[0] == 'a.hl7#1 MSH-10=F1 MSA-1=AA MSA-2=F1 MSA-3="reçu"'
    assert lines[1].startswith('a.hl7#2 MSH-10=F2 MSA-1=AE MSA-2=F2 MSA-3="reçu" ERR=207')
    assert lines[2] == 'b.hl7#1 MSH-10=F3 MSA-1=AA MSA-2=F3 MSA-3="reçu"'
    assert len(handler.frames) == 3


async def test_send_files_reports_unreachable_peer(tmp_path):
    path = tmp_path / "a.hl7"
    path.write_bytes(oru("F1").encode())
    lines = []
    assert await send_files("127.0.0.1", 1, [path], timeout=2, out=lines.append) == 1
    assert lines[0].startswith("a.hl7#1 ERROR")
