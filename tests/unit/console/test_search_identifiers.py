"""The console's search by IPP, INS, document id and recipient (keyed digests in the journal), page and API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from router.ports import MessageState, Outcome, OutcomeStatus, ReceivedMessage

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
INS = "279035121518989"


async def receive(console, control_id: str, ipp: str, *, at: datetime, ins: str = "") -> str:
    key, _ = await console.journal.record_received(ReceivedMessage(
        raw=f"MSH|^~\\&|DXCARE|CHU-TEST|LIAISON|CHU-TEST|20261206093000||ORU^R01|{control_id}|P|2.5\r".encode(),
        channel="his", sending_application="DXCARE", sending_facility="CHU-TEST", control_id=control_id,
        message_type="ORU^R01", received_at=at, identifiers=(("ipp", ipp),) + ((("ins", ins),) if ins else ())))
    return key


async def fill(console) -> list[str]:
    keys = [await receive(console, f"SRCH-{i}", "IPP-A" if i % 2 else "IPP-B", at=T0 + timedelta(minutes=i),
                          ins=INS if i == 3 else "") for i in range(6)]
    await console.journal.record_outcome(Outcome("1.2.3^DOC-9", "dr.who@test.mssante.fr", OutcomeStatus.ACCEPTED,
                                                 "250", T0, keys[4]))
    await console.journal.set_state(keys[5], MessageState.DELIVERED, step="delivered")
    return keys


def found(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [m["key"] for m in response.json()["messages"]]


async def test_api_finds_messages_by_each_identifier_with_keyset_pages(console):
    keys = await fill(console)
    async with console.logged_in("operator") as client:
        assert found(await client.get("/api/messages", params={"ipp": "IPP-A"})) == [keys[5], keys[3], keys[1]]
        assert found(await client.get("/api/messages", params={"ins": INS})) == [keys[3]]
        assert found(await client.get("/api/messages", params={"document_id": "DOC-9"})) == [keys[4]]
        assert found(await client.get("/api/messages", params={"recipient": "dr.who@test.mssante.fr"})) == [keys[4]]
        assert found(await client.get("/api/messages", params={"ipp": "IPP-A", "state": "delivered"})) == [keys[5]]
        window = {"ipp": "IPP-A", "since": (T0 + timedelta(minutes=1)).isoformat(),
                  "until": (T0 + timedelta(minutes=5)).isoformat()}
        assert found(await client.get("/api/messages", params=window)) == [keys[3], keys[1]]
        first = (await client.get("/api/messages", params={"ipp": "IPP-B", "limit": 2})).json()
        rest = await client.get("/api/messages", params={"ipp": "IPP-B", "limit": 2, "before": first["next"]})
        assert [m["key"] for m in first["messages"]] + found(rest) == [keys[4], keys[2], keys[0]]
        assert rest.json()["next"] is None


async def test_page_searches_by_identifier_and_keeps_the_filter_on_the_next_page(console):
    keys = await fill(console)
    async with console.logged_in("operator") as client:
        page = await client.get("/messages", params={"ipp": "IPP-B", "limit": 2})
        assert page.status_code == 200
        assert keys[4] in page.text and keys[2] in page.text and keys[0] not in page.text
        assert "ipp=IPP-B" in page.text and 'id="ins"' in page.text


async def test_a_viewer_searches_by_document_and_recipient_but_not_by_patient(console):
    keys = await fill(console)
    async with console.logged_in("viewer") as client:
        assert found(await client.get("/api/messages", params={"document_id": "1.2.3^DOC-9"})) == [keys[4]]
        assert (await client.get("/api/messages", params={"ipp": "IPP-A"})).status_code == 403
        assert (await client.get("/api/messages", params={"ins": INS})).status_code == 403
        assert (await client.get("/messages", params={"ipp": "IPP-A"})).status_code == 403
        assert 'id="ipp"' not in (await client.get("/messages")).text
