"""The door files each message under its patient's IPP and INS, which the journal keeps only as keyed digests."""

from __future__ import annotations

from router.hl7.msh import first_segment
from router.identity import searchable_identifiers
from router.ingest import Ingest
from channels.embedded import EmbeddedBus
from channels.journal import SqliteJournal

INS = "279035121518989"
PID = (f"PID|||IPP-4455^^^CHU-TEST^PI~{INS}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS~"
       "ZZ9^^^OTHER^AN||DURAND^Helene||19790305|F")


def adt(control_id: str, pid: str = PID) -> bytes:
    return (f"MSH|^~\\&|DXCARE|CHU-TEST|LIAISON|CHU-TEST|20261206093000||ADT^A01^ADT_A01|{control_id}|P|2.5\r"
            f"EVN|A01|20261206093000\r{pid}\rPV1||I|CARDIO\r").encode("ascii")


def test_ipp_and_ins_are_read_from_pid_3_other_identifiers_are_not():
    pid = first_segment(adt("X").decode().replace("\n", "\r"), "PID")
    assert searchable_identifiers(pid) == (("ipp", "IPP-4455"), ("ins", INS))
    by_oid = first_segment(f"PID|||{INS}^^^X&1.2.250.1.213.1.4.10&ISO^NH", "PID")
    assert searchable_identifiers(by_oid) == (("ins", INS),)
    assert searchable_identifiers(first_segment("PID|||", "PID")) == ()


async def test_a_message_taken_at_the_door_is_found_by_ipp_and_ins(tmp_path):
    journal = SqliteJournal(tmp_path / "journal.sqlite", key=bytes(range(32)))
    bus = EmbeddedBus(tmp_path / "bus.sqlite", poll_interval=0.05)
    await journal.open()
    await bus.connect()
    try:
        ingest = Ingest(journal, bus, channel="his")
        ack = await ingest.handle_frame(adt("DOOR-1"), "127.0.0.1:4000")
        refused = await ingest.handle_frame(adt("DOOR-2").replace(b"ADT^A01^ADT_A01", b"ADT^A99^ADT_A01"),
                                            "127.0.0.1:4000")
        await ingest.drain()
        assert b"MSA|AA|DOOR-1" in ack and b"MSA|AR|DOOR-2" in refused
        found = [r.control_id for r in await journal.search(ipp="IPP-4455")]
        assert found[1] == "DOOR-1" and found[0].startswith("DOOR-2#refused")   # refused ones too
        assert [r.control_id for r in await journal.search(ins=INS)] == found
        assert await journal.search(ipp="ZZ9") == []
    finally:
        await bus.close()
        await journal.close()
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("journal.sqlite*"))
    assert b"IPP-4455" not in stored and INS.encode() not in stored
