"""The ``documents`` table of the journal: what render mode produced, per source id (operations, ``sql.py``).

A replacement (MDM^T10, ORU with OBX-11 C) must keep the setId of the document
it replaces and bump its version; a cancellation (MDM^T11, OBX-11 D) must send
again the header of the document it withdraws. Both look the earlier document
up here by the id the HIS knows it by (TXA-12, or the lab's filler order
number). The CDA is patient data: sealed with the journal's codec under
``aad("documents", facility, source_id, "cda")``.
"""

from __future__ import annotations

from channels.cipher import Codec, aad
from channels.journal.sql import Operation
from router.model import Action
from router.ports import RenderedDocument

COLUMNS = "facility, source_id, document_id, set_id, version, type_code, action, message_key, cda, created_at"


def upsert(codec: Codec, document: RenderedDocument, now: str) -> Operation[None]:
    """Record the document under its source id (a later version of the same source id replaces the row)."""
    sealed = codec.seal_bytes(document.cda, aad("documents", document.facility, document.source_id, "cda"))
    yield (f"INSERT INTO documents ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
           "ON CONFLICT (facility, source_id) DO UPDATE SET document_id = excluded.document_id, "
           "set_id = excluded.set_id, version = excluded.version, type_code = excluded.type_code, "
           "action = excluded.action, message_key = excluded.message_key, cda = excluded.cda, "
           "created_at = excluded.created_at",
           (document.facility, document.source_id, document.document_id, document.set_id, document.version,
            document.type_code, str(document.action), document.message_key, sealed, now))


def rendered(codec: Codec, facility: str, source_id: str) -> Operation[RenderedDocument | None]:
    rows = (yield f"SELECT {COLUMNS} FROM documents WHERE facility = ? AND source_id = ?",
            (facility, source_id)).rows
    return from_row(codec, rows[0]) if rows else None


def from_row(codec: Codec, row: tuple) -> RenderedDocument:
    facility, source_id, document_id, set_id, version, type_code, action, message_key, cda, _created = row
    return RenderedDocument(facility=facility, source_id=source_id, document_id=document_id, set_id=set_id,
                            version=int(version), type_code=type_code, action=Action(action),
                            message_key=message_key,
                            cda=codec.open_bytes(cda, aad("documents", facility, source_id, "cda"))
                            if len(cda) else b"")        # emptied by retention
