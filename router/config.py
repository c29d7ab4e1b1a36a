"""The core's configuration: ``[engine]`` and ``[render]`` of ``liaison.toml``.

Every error names the key it is about (``engine.bus: expected a URL starting
with embedded:// or amqp:// or amqps://``). ``engine.bus`` is one URL, or a list of
``amqp://`` URLs, one per node of a RabbitMQ cluster. Secrets never live in the TOML: the
journal key comes from ``LIAISON_JOURNAL_KEY`` (base64) or a key file. Each
adapter parses its own section beside its code with the readers of
:mod:`router.config_values`; the composition root (``channels.app.settings``)
puts the sections together.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from router.config_values import (check_scheme, no_unknown, read_bool, read_int, read_seconds, read_str,
                                  read_text)
from router.errors import ConfigError
from router.recipients_render import LAB_ROLES, LETTER_ROLES, ROLE_NAMES, PatientPolicy
from router.unchecked import KEYS as UNCHECKED_KEYS, UncheckedPolicy, unchecked_policy

SUPPORTED_BUS_SCHEMES = ("embedded", "amqp", "amqps")
CLUSTER_BUS_SCHEMES = ("amqp", "amqps")           # a list of node URLs: the nodes of one RabbitMQ cluster
SUPPORTED_JOURNAL_SCHEMES = ("sqlite", "postgresql", "postgres")
ENGINE_KEYS = {"bus", "journal", "journal_key_file", "journal_migrate", "cda_schema_dir", "cda_schema_required",
               "schematrons", "schematron_dir", "source_id", "prefetch", "retry_delays", "letter_deadline",
               "watchdog_interval", "timezone", "claim_lease", "profile_sample", *UNCHECKED_KEYS}


@dataclass(frozen=True)
class EngineSettings:
    """``[engine]``: the bus, the journal, the checks before sending, the letter deadline."""

    bus: str | tuple[str, ...] = "embedded:///var/lib/liaison/bus.sqlite"   # a tuple: a RabbitMQ cluster's nodes
    journal: str = "sqlite:///var/lib/liaison/journal.sqlite"
    journal_key: bytes | None = None
    journal_migrate: bool = True            # create or upgrade the journal's schema at start; off: refuse an
                                            # old schema (upgrade it with `liaison journal migrate`)
    cda_schema_dir: str = ""
    cda_schema_required: bool = True        # no CDA_extended.xsd found: refuse to start rather than send unchecked
    schematrons: str = "off"                # pre-send CI-SIS check: "off", "volet", or "all" (volet + minimal structure)
    profile_sample: int = 0                 # with "volet": 1 document in N also gets the profiles, after dispatch
    schematron_dir: str = ""
    unchecked_volet: UncheckedPolicy = UncheckedPolicy()   # a document no volet schematron checks (router.unchecked)
    source_id: str = "1.2.250.1.999.1"      # OID of this platform (XDS sourceId)
    prefetch: int = 16
    letter_deadline: str | float = "end_of_day"   # letter due: end of the discharge day, or hours after it
    watchdog_interval: float = 60.0         # seconds between two looks for overdue letters
    timezone: str = "Europe/Paris"          # local time of HL7 timestamps without offset, and of "end of day"
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0)
    claim_lease: float = 0.0                # seconds a send claim holds before another worker may take it over;
                                            # 0: automatic, four SMTP timeouts and at least a minute


@dataclass(frozen=True)
class RenderSettings:
    """``[render]``: render mode (Liaison writes the CDA from plain HIS events)."""

    schematrons: str = "volet"          # rendered documents checked by their volet's schematron ("off", "volet", "all")
    letter_roles: tuple[str, ...] = LETTER_ROLES
    lab_roles: tuple[str, ...] = LAB_ROLES
    patient_policy: PatientPolicy = PatientPolicy()


def engine_settings(engine: Mapping[str, Any], env: Mapping[str, str], base: Path | None) -> EngineSettings:
    """The ``[engine]`` table, checked; the journal key file is relative to ``base`` (the file's folder)."""
    no_unknown(engine, "engine", ENGINE_KEYS)
    schematrons = read_str(engine, "engine.schematrons", "off")
    if schematrons not in ("off", "volet", "all"):
        raise ConfigError("engine.schematrons", f"expected off, volet or all, got {schematrons!r}")
    bus = _bus(engine)
    journal = read_str(engine, "engine.journal", EngineSettings.journal)
    check_scheme("engine.journal", journal, SUPPORTED_JOURNAL_SCHEMES)
    delays = engine.get("retry_delays", list(EngineSettings.retry_delays))
    if not isinstance(delays, list) or not all(isinstance(d, (int, float)) and d >= 0 for d in delays):
        raise ConfigError("engine.retry_delays", "expected a list of non-negative numbers of seconds")
    prefetch = read_int(engine, "engine.prefetch", EngineSettings.prefetch, minimum=1)
    profile_sample = read_int(engine, "engine.profile_sample", 0, minimum=0)
    if profile_sample and schematrons != "volet":
        raise ConfigError("engine.profile_sample", f"samples the profiles when engine.schematrons = \"volet\" "
                          f"(with {schematrons!r} they run on every document or not at all)")
    return EngineSettings(
        bus=bus,
        journal=journal,
        journal_key=_journal_key(engine, env, base),
        journal_migrate=read_bool(engine, "engine.journal_migrate", True),
        cda_schema_dir=read_str(engine, "engine.cda_schema_dir", ""),
        cda_schema_required=read_bool(engine, "engine.cda_schema_required", True),
        schematrons=schematrons,
        profile_sample=profile_sample,
        schematron_dir=read_str(engine, "engine.schematron_dir", ""),
        source_id=read_str(engine, "engine.source_id", EngineSettings.source_id),
        prefetch=prefetch,
        retry_delays=tuple(float(d) for d in delays),
        letter_deadline=_letter_deadline(engine),
        watchdog_interval=read_seconds(engine, "engine.watchdog_interval", EngineSettings.watchdog_interval),
        claim_lease=read_seconds(engine, "engine.claim_lease", 0.0) if "claim_lease" in engine else 0.0,
        unchecked_volet=unchecked_policy(engine),
        timezone=_timezone(engine),
    )


def render_settings(table: Mapping[str, Any]) -> RenderSettings:
    """The ``[render]`` table: schematrons of rendered documents, recipients' roles, the patient's mailbox policy."""
    no_unknown(table, "render", {"schematrons", "letter_roles", "lab_roles", "patient_identity_statuses",
                                 "patient_ins_kinds"})
    schematrons = read_str(table, "render.schematrons", RenderSettings.schematrons)
    if schematrons not in ("off", "volet", "all"):
        raise ConfigError("render.schematrons", f"expected off, volet or all, got {schematrons!r}")
    roles = {}
    for key, default in (("letter_roles", LETTER_ROLES), ("lab_roles", LAB_ROLES)):
        value = table.get(key, list(default))
        if not isinstance(value, list) or any(role not in ROLE_NAMES for role in value):
            raise ConfigError(f"render.{key}", f"expected a list of roles among {', '.join(ROLE_NAMES)}")
        roles[key] = tuple(value)
    statuses = table.get("patient_identity_statuses", list(PatientPolicy.statuses))
    if not isinstance(statuses, list) or any(code not in ("VALI", "QUAL", "RECUP", "PROV") for code in statuses):
        raise ConfigError("render.patient_identity_statuses", "expected a list among QUAL, VALI, RECUP, PROV")
    kinds = table.get("patient_ins_kinds", list(PatientPolicy.ins_kinds))
    if not isinstance(kinds, list) or any(kind not in ("production", "test", "demo") for kind in kinds):
        raise ConfigError("render.patient_ins_kinds", "expected a list among production, test, demo "
                                                      "(a NIA is never the patient's mailbox)")
    return RenderSettings(schematrons=schematrons, patient_policy=PatientPolicy(tuple(statuses), tuple(kinds)),
                          **roles)


def _bus(engine: Mapping[str, Any]) -> str | tuple[str, ...]:
    """One bus URL, or a list of ``amqp://`` URLs: the nodes of one RabbitMQ cluster, tried in that order.

    The nodes of a cluster share the scheme, the virtual host and the options: only the
    host, the port and the credentials may differ from one URL to the next.
    """
    value = engine.get("bus", EngineSettings.bus)
    if not isinstance(value, list):
        bus = read_str(engine, "engine.bus", str(EngineSettings.bus))
        check_scheme("engine.bus", bus, SUPPORTED_BUS_SCHEMES)
        return bus
    if not value:
        raise ConfigError("engine.bus", "expected a URL or a non-empty list of amqp:// URLs (a cluster's nodes)")
    for index, url in enumerate(value):
        if not isinstance(url, str):
            raise ConfigError(f"engine.bus[{index}]", f"expected a string, got {type(url).__name__}")
        check_scheme(f"engine.bus[{index}]", url, CLUSTER_BUS_SCHEMES)
        first, this = urlsplit(value[0]), urlsplit(url)
        if (this.scheme, this.path, this.query) != (first.scheme, first.path, first.query):
            raise ConfigError(f"engine.bus[{index}]", "the nodes of one cluster share the scheme, the virtual host "
                                                      f"and the options of engine.bus[0]: {url!r}")
    return tuple(value)


def _letter_deadline(engine: Mapping[str, Any]) -> str | float:
    """``"end_of_day"`` (23:59:59 local time on the discharge day) or a positive number of hours after discharge."""
    value = engine.get("letter_deadline", EngineSettings.letter_deadline)
    if value == "end_of_day":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError("engine.letter_deadline",
                          f"expected \"end_of_day\" or a positive number of hours, got {value!r}")
    return float(value)


def _timezone(engine: Mapping[str, Any]) -> str:
    name = read_str(engine, "engine.timezone", EngineSettings.timezone)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError("engine.timezone", f"unknown time zone {name!r} (expected e.g. Europe/Paris)") from exc
    return name


def _journal_key(engine: Mapping[str, Any], env: Mapping[str, str], base: Path | None) -> bytes | None:
    """The AES-256 key that encrypts journal contents: env LIAISON_JOURNAL_KEY or a key file."""
    raw = env.get("LIAISON_JOURNAL_KEY", "")
    key_file = read_str(engine, "engine.journal_key_file", "")
    where = "LIAISON_JOURNAL_KEY"
    if not raw and key_file:
        path = Path(key_file) if base is None else base / key_file
        where = "engine.journal_key_file"
        raw = read_text(path, where, "a file holding the 32-byte key in base64", encoding="ascii").strip()
    if not raw:
        return None
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise ConfigError(where, "expected 32 bytes in base64") from exc
    if len(key) != 32:
        raise ConfigError(where, f"expected 32 bytes in base64, got {len(key)} bytes")
    return key
