"""Volets: what a CI-SIS document model is to the core, and the registry the stages read.

A *volet* is one CI-SIS document model (a lettre de liaison, a lab report, a level-1 CDA...). The
core never names one: the render stage asks the registry which volet renders a
message, the pre-send check asks it which schematron a document's templateIds
call for. Each volet is one module of ``mappings/`` ending in a :class:`Volet`
description, and ``mappings/volets.py`` lists them; the composition root hands
that registry to the stages (the ``Volets`` port of :mod:`router.ports`).

Why a description rather than code in the stage: adding a volet is then one
module and one registry line, and the stage, the validators and the packaging
cannot disagree about which volets exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from router.adt import AdtEvent
from router.errors import ConfigError, MappingError
from router.lab_model import LabReport
from router.mdm import MdmDocument
from router.model import Participant


class Source(StrEnum):
    """Which HIS message a volet is rendered from."""

    DOCUMENT = "document"          # MDM^T02/T10/T11: a letter or another document, TXA-2 says which
    LAB_REPORT = "lab_report"      # ORU^R01 with discrete results


@dataclass(frozen=True)
class RenderRequest:
    """Everything the render stage knows when it asks a volet for a CDA.

    ``document`` is set for a :attr:`Source.DOCUMENT` volet (with ``type_key``, the
    TXA-2 code upper-cased), ``report`` for a :attr:`Source.LAB_REPORT` one. ``site``
    (the establishment) and ``tables`` (the code tables in force) are read by the
    volets only; the core passes them through unopened.
    """

    patient: AdtEvent
    document_id: str
    set_id: str
    version: int
    parent_document_id: str
    effective_time: datetime
    site: Any
    tables: Mapping[str, Any] | None = None
    author: Participant | None = None
    document: MdmDocument | None = None
    type_key: str = ""
    report: LabReport | None = None


@dataclass(frozen=True)
class Volet:
    """One CI-SIS document model, described once.

    - ``template_ids``: the document-level templateIds that identify a CDA of this volet
      (the pre-send check picks the schematron by them);
    - ``type_code``: the LOINC type code of every document it renders, or "" when the
      code depends on the message (a level-1 CDA takes TXA-2's);
    - ``source`` and ``txa2``: which messages it renders (for documents, the TXA-2
      codes, upper-case, that ask for it; ``fallback`` renders any TXA-2 no other
      volet claims);
    - ``render``: the renderer, ``RenderRequest`` → CDA bytes;
    - ``schematron``: its CI-SIS schematron, relative to the schematron directory (or
      absolute), "" when it has none; the volets the registry does not describe are
      checked by the schematron the directory's index names for their templateId
      (:mod:`router.schematron_index`);
    - ``checked_by_profiles``: a volet without schematron whose model is the generic
      profile itself (a level-1 CDA): with the profiles on, its documents count as checked;
    - ``code_tables``: the names of the code tables (``[mappings] tables``) it reads;
    - ``stay_letter``: a document of its type code is the stay's lettre de liaison, the one
      the overdue-letter watch waits for after a discharge (whoever rendered it).
    """

    name: str
    source: Source
    render: Callable[[RenderRequest], bytes]
    template_ids: tuple[str, ...] = ()
    type_code: str = ""
    txa2: frozenset[str] = frozenset()
    fallback: bool = False
    schematron: str = ""
    checked_by_profiles: bool = False
    code_tables: tuple[str, ...] = ()
    stay_letter: bool = False

    def stored_type_code(self, request: RenderRequest) -> str:
        """The type code the journal keeps for a document rendered from ``request``."""
        return self.type_code or request.type_key


class VoletRegistry:
    """The volets in force, looked up by message or by templateId (implements the ``Volets`` port)."""

    def __init__(self, volets: Iterable[Volet]):
        self._volets = tuple(volets)
        names = [v.name for v in self._volets]
        if len(set(names)) != len(names):
            raise ConfigError("volets", f"two volets share a name: {sorted(names)}")
        fallbacks = [v.name for v in self._volets if v.fallback]
        if len(fallbacks) > 1:
            raise ConfigError("volets", f"only one volet may render any document type, got {fallbacks}")

    def __iter__(self) -> Iterator[Volet]:
        return iter(self._volets)

    def with_volet(self, volet: Volet) -> VoletRegistry:
        """A registry with one more volet, looked up before the others (a site's own model)."""
        return VoletRegistry((volet, *self._volets))

    def for_document(self, type_key: str) -> Volet:
        """The volet an MDM whose TXA-2 is ``type_key`` (upper-case) is rendered as."""
        documents = [v for v in self._volets if v.source is Source.DOCUMENT]
        chosen = next((v for v in documents if type_key in v.txa2), None)
        chosen = chosen or next((v for v in documents if v.fallback), None)
        if chosen is None:
            raise MappingError(f"no volet renders a document of type {type_key!r}")
        return chosen

    def for_lab_report(self) -> Volet:
        """The volet a laboratory report (ORU^R01 with results) is rendered as."""
        chosen = next((v for v in self._volets if v.source is Source.LAB_REPORT), None)
        if chosen is None:
            raise MappingError("no volet renders laboratory reports")
        return chosen

    def for_template_ids(self, template_ids: Iterable[str]) -> list[Volet]:
        """The volets a CDA declaring these templateIds belongs to, in registry order."""
        wanted = set(template_ids)
        return [v for v in self._volets if wanted.intersection(v.template_ids)]

    def stay_letter_types(self) -> frozenset[str]:
        """The type codes of a stay's lettre de liaison (the overdue-letter watch)."""
        return frozenset(v.type_code for v in self._volets if v.stay_letter and v.type_code)

    def schematrons(self) -> Sequence[str]:
        """Every volet schematron, once each (the pre-send check compiles them at start)."""
        return list(dict.fromkeys(v.schematron for v in self._volets if v.schematron))
