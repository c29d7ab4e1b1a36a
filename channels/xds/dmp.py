"""The DMP as a :class:`~router.ports.SharedRecord`: ITI-41 to deposit or replace, ITI-57 to withdraw.

Each call builds its parts from the DocumentJob alone:

- the metadata from :func:`mappings.xds_metadata.build_submission` — the same
  builder as the XDM package of the mails, here without URI nor French
  ``action`` slot. entryUUIDs are UUID v5 of the document id (and version), so
  the deposit stage, which keeps the current entry of each document in the
  journal, names the right one for an RPLC, a deletion or a masking change
  without querying the registry;
- a VIHF built for this patient (INS, secret connection) and signed with the
  structure's certificate (:mod:`channels.xds.vihf`), valid a few minutes;
- the SOAP/MTOM exchange over mutual TLS (:class:`channels.xds.client.XdsClient`).

Deletion is ITI-57 with availabilityStatus ``urn:asip:ci-sis:2010:StatusType:Deleted``,
as the ANS maps the DMP's TD3.3c (see :mod:`channels.xds.soap`).

A masking change (MODIF_CONF_CODE=Y) is ITI-57 *Update DocumentEntry Metadata*
(:func:`mappings.xds_metadata.build_metadata_update`): the IHE standard, as no French source
in our material says how the DMP takes it (TD3.x "masquer" is not described there).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from channels.tls_files import load_cert_chain, readable
from channels.xds.client import XdsClient
from channels.xds.soap import DELETED
from channels.xds.vihf import build_vihf, sign_vihf
from channels.xds.vihf_settings import SigningMaterial, VihfSettings
from channels.xds.vihf_settings import from_config as vihf_from_config
from mappings.codes import content_type_for_patient_class
from mappings.xds_metadata import (build_metadata_update, build_submission, confidentiality_codes, entry_uuid,
                                   version_entry_uuid)
from router.errors import ConfigError
from router.model import Action, DocumentJob
from router.ports import DepositReceipt, DmpEntry


@dataclass(frozen=True)
class DmpSettings:
    url: str                          # the repository endpoint (ITI-41)
    registry_url: str                 # the registry endpoint (ITI-57)
    client_cert: str
    client_key: str
    ca_file: str
    timeout: float
    vihf: VihfSettings


class DmpRecord:
    """ITI-41 / ITI-57 client for one structure, built once per engine."""

    def __init__(self, client: XdsClient, vihf: VihfSettings, signing: SigningMaterial, *, source_id: str,
                 clock=lambda: datetime.now(timezone.utc)):
        self.client = client
        self.vihf = vihf
        self.signing = signing
        self.source_id = source_id
        self.clock = clock

    async def deposit(self, job: DocumentJob, *, replaces: DmpEntry | None = None) -> DepositReceipt:
        replaced = None
        if job.action is Action.REPLACE and job.header.parent_document_id:
            replaced = replaces.entry_uuid if replaces is not None else entry_uuid(job.header.parent_document_id)
        now = self.clock()
        request = build_submission(job, submission_time=now, source_id=self.source_id, document_filename=None,
                                   xdm_action=False, replaced_entry_uuid=replaced,
                                   content_type_code=content_type_for_patient_class(""))
        document_id = job.header.document_id
        result = await self.client.provide_and_register(request, {entry_uuid(document_id): job.cda},
                                                        self._assertion(job, now))
        return DepositReceipt(f"DMP: {result.status}" + (f", replaces {replaced}" if replaced else "")
                              + _warnings(result), DmpEntry(document_id, entry_uuid(document_id), 1, job.message_key))

    async def withdraw(self, job: DocumentJob, *, current: DmpEntry | None = None) -> DepositReceipt:
        now = self.clock()
        submission = build_submission(job, submission_time=now, source_id=self.source_id, document_filename=None,
                                      xdm_action=False)
        target = current.entry_uuid if current is not None else entry_uuid(job.header.document_id)
        result = await self.client.update_availability_status(submission, self._assertion(job, now),
                                                              entry_uuid=target, new_status=DELETED)
        return DepositReceipt(f"DMP: {result.status}, entry {target} deleted" + _warnings(result))

    async def update_confidentiality(self, job: DocumentJob, *, current: DmpEntry | None = None) -> DepositReceipt:
        """Give the document's DMP entry the job's confidentiality codes (masking), by an ITI-57 metadata update.

        The new version keeps the document and its ``uniqueId`` and replaces the entry
        (``lid`` = the deposit's entryUUID); the registry deprecates the version it updates.
        ``current`` is the entry as the journal last recorded it (its version is the
        update's PreviousVersion); unknown, the deposit's version 1 is assumed.
        """
        now = self.clock()
        previous = current.version if current is not None else 1
        request = build_metadata_update(job, submission_time=now, source_id=self.source_id,
                                        previous_version=str(previous),
                                        content_type_code=content_type_for_patient_class(""))
        result = await self.client.update_document_set(request, self._assertion(job, now))
        document_id = job.header.document_id
        codes = ", ".join(code for code, _display, _scheme in confidentiality_codes(job))
        new = DmpEntry(document_id, version_entry_uuid(document_id, previous + 1), previous + 1, job.message_key)
        return DepositReceipt(f"DMP: {result.status}, entry version {new.version} now confidentiality {codes}"
                              + _warnings(result), new)

    async def close(self) -> None:
        await self.client.close()

    def _assertion(self, job: DocumentJob, now: datetime):
        assertion = build_vihf(self.vihf, ins=job.header.ins, ins_oid=job.header.ins_oid,
                               secret_connection=job.flags.connexion_secrete, now=now)
        return sign_vihf(assertion, self.signing.private_key, self.signing.cert_pem)


def _warnings(result) -> str:
    return f"; warnings: {'; '.join(w.describe() for w in result.warnings)}" if result.warnings else ""


def dmp_settings(table: Mapping[str, Any], env: Mapping[str, str] | None = None) -> DmpSettings:
    """``[dmp]`` and ``[dmp.vihf]``; every error names its key."""
    unknown = set(table) - {"url", "registry_url", "client_cert", "client_key", "ca_file", "timeout", "vihf"}
    if unknown:
        raise ConfigError(f"dmp.{sorted(unknown)[0]}", "unknown key")
    values = {}
    for key in ("url", "client_cert", "client_key", "ca_file"):
        value = table.get(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"dmp.{key}", "required (the DMP endpoint, and the structure's IGC-Santé "
                                            "certificate, key and CA for mutual TLS)")
        values[key] = value
    if not values["url"].startswith("https://"):
        raise ConfigError("dmp.url", f"expected an https:// URL, got {values['url']!r}")
    timeout = table.get("timeout", 60.0)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError("dmp.timeout", "expected a positive number of seconds")
    if not isinstance(table.get("vihf"), Mapping):
        raise ConfigError("dmp.vihf", "a [dmp.vihf] table is required (structure, subject, LPS, signing certificate)")
    return DmpSettings(registry_url=str(table.get("registry_url") or values["url"]), timeout=float(timeout),
                       vihf=vihf_from_config(table["vihf"], env), **values)


def dmp_record(settings: DmpSettings, *, source_id: str, env: Mapping[str, str] | None = None) -> DmpRecord:
    """The SharedRecord for these settings: mutual TLS context, XDS client, signing material."""
    readable("dmp.ca_file", settings.ca_file, "a PEM bundle of the CA certificates that sign the DMP's")
    try:
        context = ssl.create_default_context(cafile=settings.ca_file)     # that bundle only
    except ssl.SSLError as exc:
        raise ConfigError("dmp.ca_file", f"{settings.ca_file} cannot be loaded ({exc.reason or exc}); expected a "
                                         "PEM bundle of CA certificates") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    load_cert_chain(context, settings.client_cert, settings.client_key, cert_setting="dmp.client_cert",
                    key_setting="dmp.client_key")
    client = XdsClient(settings.url, ssl_context=context, timeout=settings.timeout,
                       registry_url=settings.registry_url)
    return DmpRecord(client, settings.vihf, settings.vihf.signing_material(env), source_id=source_id)
