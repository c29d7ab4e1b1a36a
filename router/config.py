"""Configuration: a frozen settings object built from ``liaison.toml`` plus the environment.

Every error names the key it is about (``mss.relay: expected a smtp:// or
smtps:// URL``). Secrets never live in the TOML: the journal key and the
client-certificate key password come from files or environment variables
(``LIAISON_JOURNAL_KEY`` as base64). Tests pass plain dicts to
:func:`settings_from_dict`.
"""

from __future__ import annotations

import base64
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mappings.site import Site
from mappings.tables import Tables
from mappings.value_sets import locate_jdv_dir
from channels.directory.static import StaticDirectory
from channels.whitelist.settings import WhitelistSettings
from channels.xds.dmp import DmpSettings, dmp_settings
from channels.whitelist.settings import from_config as whitelist_settings
from router.errors import ConfigError
from router.recipients_render import LAB_ROLES, LETTER_ROLES, ROLE_NAMES, PatientPolicy
from router.unchecked import KEYS as UNCHECKED_KEYS, UncheckedPolicy, unchecked_policy

SUPPORTED_BUS_SCHEMES = ("embedded", "amqp", "amqps")
SUPPORTED_JOURNAL_SCHEMES = ("sqlite",)


@dataclass(frozen=True)
class ListenerSettings:
    name: str = "his"
    host: str = "127.0.0.1"
    port: int = 2575
    default_charset: str = "utf-8"
    max_frame_bytes: int = 16 * 1024 * 1024
    read_timeout: float = 300.0
    max_connections: int = 64
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""          # set: clients must present a certificate from this CA


@dataclass(frozen=True)
class MssSettings:
    relay: str = ""                  # smtp://host:port (STARTTLS) or smtps://host:port
    sender: str = ""                 # the platform's applicative mailbox (BAL applicative)
    client_cert: str = ""
    client_key: str = ""
    ca_file: str = ""
    nil: str = ""                    # X-MSS-NIL: référence produit from convergence.esante.gouv.fr
    default_body: str = ("Bonjour,\r\n\r\nVeuillez trouver ci-joint un document de santé "
                         "au format IHE_XDM.\r\n\r\nCordialement.")
    message_id_domain: str = "liaison.invalid"
    timeout: float = 30.0


@dataclass(frozen=True)
class AckSettings:
    """Where ZAM business acknowledgements go back to the HIS (MLLP)."""

    host: str = ""
    port: int = 0
    timeout: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.host and self.port)


@dataclass(frozen=True)
class RenderSettings:
    """``[render]``: render mode (Liaison writes the CDA from plain HIS events)."""

    schematrons: str = "volet"          # rendered documents checked by their volet's schematron ("off", "volet", "all")
    letter_roles: tuple[str, ...] = LETTER_ROLES
    lab_roles: tuple[str, ...] = LAB_ROLES
    patient_policy: PatientPolicy = PatientPolicy()


@dataclass(frozen=True)
class Settings:
    bus: str = "embedded:///var/lib/liaison/bus.sqlite"
    journal: str = "sqlite:///var/lib/liaison/journal.sqlite"
    journal_key: bytes | None = None
    cda_schema_dir: str = ""
    cda_schema_required: bool = True        # no CDA_extended.xsd found: refuse to start rather than send unchecked
    schematrons: str = "off"                # pre-send CI-SIS check: "off", "volet", or "all" (volet + minimal structure)
    schematron_dir: str = ""
    unchecked_volet: UncheckedPolicy = UncheckedPolicy()   # a document no volet schematron checks (router.unchecked)
    source_id: str = "1.2.250.1.999.1"      # OID of this platform (XDS sourceId)
    prefetch: int = 16
    letter_deadline: str | float = "end_of_day"   # letter due: end of the discharge day, or hours after it
    watchdog_interval: float = 60.0         # seconds between two looks for overdue letters
    timezone: str = "Europe/Paris"          # local time of HL7 timestamps without offset, and of "end of day"
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0)
    listeners: tuple[ListenerSettings, ...] = (ListenerSettings(),)
    mss: MssSettings = field(default_factory=MssSettings)
    acks: AckSettings = field(default_factory=AckSettings)
    site: Site = field(default_factory=Site)                 # [site]: who the establishment is (fictitious default)
    render: RenderSettings = field(default_factory=RenderSettings)
    correspondents: tuple[Mapping[str, Any], ...] = ()      # [[correspondents]]: the static directory
    whitelist: WhitelistSettings | None = None               # [whitelist]: None = domains not checked
    directory: Mapping[str, Any] = field(default_factory=dict)   # [directory]: national directory (index, FHIR)
    dmp: DmpSettings | None = None                           # [dmp]: None = no DMP deposit channel
    tables: Tables = field(default_factory=Tables.load)      # [mappings]: code tables in force, JDV-checked


def load_settings(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read a TOML file and build validated settings."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "configuration file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
    return settings_from_dict(data, env if env is not None else os.environ, base=path.parent)


def settings_from_dict(data: Mapping[str, Any], env: Mapping[str, str] | None = None,
                       *, base: Path | None = None) -> Settings:
    env = env if env is not None else {}
    engine = _table(data, "engine")
    _no_unknown(engine, "engine", {"bus", "journal", "journal_key_file", "cda_schema_dir", "cda_schema_required",
                                    "schematrons", "schematron_dir", "source_id", "prefetch", "retry_delays",
                                    "letter_deadline", "watchdog_interval", "timezone", *UNCHECKED_KEYS})
    schematrons = _str(engine, "engine.schematrons", "off")
    if schematrons not in ("off", "volet", "all"):
        raise ConfigError("engine.schematrons", f"expected off, volet or all, got {schematrons!r}")
    _no_unknown(data, "", {"engine", "listeners", "mss", "acks", "site", "mappings", "render", "correspondents",
                            "whitelist", "directory", "dmp"})
    site, tables = _site_and_tables(data, env, base)
    bus = _str(engine, "engine.bus", Settings.bus)
    _check_scheme("engine.bus", bus, SUPPORTED_BUS_SCHEMES)
    journal = _str(engine, "engine.journal", Settings.journal)
    _check_scheme("engine.journal", journal, SUPPORTED_JOURNAL_SCHEMES)
    delays = engine.get("retry_delays", list(Settings.retry_delays))
    if not isinstance(delays, list) or not all(isinstance(d, (int, float)) and d >= 0 for d in delays):
        raise ConfigError("engine.retry_delays", "expected a list of non-negative numbers of seconds")
    prefetch = _int(engine, "engine.prefetch", Settings.prefetch, minimum=1)
    return Settings(
        bus=bus,
        journal=journal,
        journal_key=_journal_key(engine, env, base),
        cda_schema_dir=_str(engine, "engine.cda_schema_dir", ""),
        cda_schema_required=_bool(engine, "engine.cda_schema_required", True),
        schematrons=schematrons,
        schematron_dir=_str(engine, "engine.schematron_dir", ""),
        unchecked_volet=unchecked_policy(engine),
        source_id=_str(engine, "engine.source_id", Settings.source_id),
        prefetch=prefetch,
        retry_delays=tuple(float(d) for d in delays),
        letter_deadline=_letter_deadline(engine),
        watchdog_interval=_float(engine, "engine.watchdog_interval", Settings.watchdog_interval),
        timezone=_timezone(engine),
        listeners=tuple(_listener(item, f"listeners[{i}]")
                        for i, item in enumerate(data.get("listeners", [{}]))),
        mss=_mss(_table(data, "mss")),
        acks=_acks(_table(data, "acks")),
        site=site,
        render=_render(_table(data, "render")),
        correspondents=_correspondents(data),
        whitelist=whitelist_settings(_table(data, "whitelist"), env) if "whitelist" in data else None,
        directory=_directory(_table(data, "directory")),
        dmp=dmp_settings(_table(data, "dmp"), env) if "dmp" in data else None,
        tables=tables,
    )


def _site_and_tables(data: Mapping[str, Any], env: Mapping[str, str], base: Path | None) -> tuple[Site, Tables]:
    """``[site]`` and ``[mappings]``: the site identity and the code tables, checked against the JDV files.

    The JDV directory is ``mappings.jdv_dir`` (must hold the files when set), else
    ``LIAISON_JDV_DIR`` or the ANS fixtures; without it the codes are not checked.
    """
    mappings = _table(data, "mappings")
    _no_unknown(mappings, "mappings", {"jdv_dir", "tables", "table_files"})
    configured = _str(mappings, "mappings.jdv_dir", "")
    if configured:
        configured = str(Path(configured) if base is None else base / configured)
        jdv_dir = locate_jdv_dir(configured, env={})
        if jdv_dir is None or jdv_dir != Path(configured).resolve():
            raise ConfigError("mappings.jdv_dir", f"no CI-SIS JDV files (JDV_J02_...xml) in {configured}")
    else:
        jdv_dir = locate_jdv_dir(env=env)
    files = _table(mappings, "table_files")
    for name, path in files.items():
        if not isinstance(path, str):
            raise ConfigError(f"mappings.table_files.{name}", f"expected a file path, got {type(path).__name__}")
    tables = Tables.load(_table(mappings, "tables"), files, jdv_dir=jdv_dir, base=base, env=env).require_valid()
    return Site.from_config(_table(data, "site"), jdv_dir=jdv_dir, env=env), tables


def _render(table: Mapping[str, Any]) -> RenderSettings:
    _no_unknown(table, "render", {"schematrons", "letter_roles", "lab_roles", "patient_identity_statuses",
                                  "patient_ins_kinds"})
    schematrons = _str(table, "render.schematrons", RenderSettings.schematrons)
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


def _directory(table: Mapping[str, Any]) -> Mapping[str, Any]:
    """``[directory]``: ``index`` (the extraction index file) and ``[directory.fhir]`` (checked at start)."""
    _no_unknown(table, "directory", {"index", "fhir"})
    if "index" in table and not isinstance(table["index"], str):
        raise ConfigError("directory.index", "expected the path of the directory index (liaison directory import)")
    if "fhir" in table and not isinstance(table["fhir"], Mapping):
        raise ConfigError("directory.fhir", "expected a [directory.fhir] table")
    return dict(table)


def _correspondents(data: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """``[[correspondents]]``: checked now (the static directory builds from them), kept as tables."""
    entries = data.get("correspondents", [])
    if not isinstance(entries, list) or not all(isinstance(entry, Mapping) for entry in entries):
        raise ConfigError("correspondents", "expected [[correspondents]] tables")
    StaticDirectory.from_config(entries)
    return tuple(dict(entry) for entry in entries)


def _letter_deadline(engine: Mapping[str, Any]) -> str | float:
    """``"end_of_day"`` (23:59:59 local time on the discharge day) or a positive number of hours after discharge."""
    value = engine.get("letter_deadline", Settings.letter_deadline)
    if value == "end_of_day":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError("engine.letter_deadline",
                          f"expected \"end_of_day\" or a positive number of hours, got {value!r}")
    return float(value)


def _timezone(engine: Mapping[str, Any]) -> str:
    name = _str(engine, "engine.timezone", Settings.timezone)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError("engine.timezone", f"unknown time zone {name!r} (expected e.g. Europe/Paris)") from exc
    return name


def _listener(item: Any, where: str) -> ListenerSettings:
    if not isinstance(item, Mapping):
        raise ConfigError(where, "expected a table ([[listeners]])")
    known = set(ListenerSettings.__dataclass_fields__)
    _no_unknown(item, where, known)
    default = ListenerSettings()
    settings = ListenerSettings(
        name=_str(item, f"{where}.name", default.name),
        host=_str(item, f"{where}.host", default.host),
        port=_int(item, f"{where}.port", default.port, minimum=0, maximum=65535),
        default_charset=_str(item, f"{where}.default_charset", default.default_charset),
        max_frame_bytes=_int(item, f"{where}.max_frame_bytes", default.max_frame_bytes, minimum=1024),
        read_timeout=_float(item, f"{where}.read_timeout", default.read_timeout),
        max_connections=_int(item, f"{where}.max_connections", default.max_connections, minimum=1),
        tls_cert=_str(item, f"{where}.tls_cert", ""),
        tls_key=_str(item, f"{where}.tls_key", ""),
        tls_client_ca=_str(item, f"{where}.tls_client_ca", ""),
    )
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError(f"{where}.tls_key", "tls_cert and tls_key go together")
    if settings.tls_client_ca and not settings.tls_cert:
        raise ConfigError(f"{where}.tls_client_ca", "client certificates need tls_cert and tls_key")
    try:
        "".encode(settings.default_charset)
    except LookupError as exc:
        raise ConfigError(f"{where}.default_charset", f"unknown charset {settings.default_charset!r}") from exc
    return settings


def _mss(table: Mapping[str, Any]) -> MssSettings:
    _no_unknown(table, "mss", set(MssSettings.__dataclass_fields__))
    default = MssSettings()
    relay = _str(table, "mss.relay", "")
    if relay:
        _check_scheme("mss.relay", relay, ("smtp", "smtps"))
    sender = _str(table, "mss.sender", "")
    if relay and "@" not in sender:
        raise ConfigError("mss.sender", "the platform's MSSanté address is required when mss.relay is set")
    if relay and not _str(table, "mss.nil", ""):
        raise ConfigError("mss.nil", "X-MSS-NIL (the product reference) is required on every MSSanté message")
    return MssSettings(
        relay=relay, sender=sender,
        client_cert=_str(table, "mss.client_cert", ""), client_key=_str(table, "mss.client_key", ""),
        ca_file=_str(table, "mss.ca_file", ""), nil=_str(table, "mss.nil", ""),
        default_body=_str(table, "mss.default_body", default.default_body),
        message_id_domain=_str(table, "mss.message_id_domain", default.message_id_domain),
        timeout=_float(table, "mss.timeout", default.timeout),
    )


def _acks(table: Mapping[str, Any]) -> AckSettings:
    _no_unknown(table, "acks", set(AckSettings.__dataclass_fields__))
    return AckSettings(host=_str(table, "acks.host", ""),
                       port=_int(table, "acks.port", 0, minimum=0, maximum=65535),
                       timeout=_float(table, "acks.timeout", 10.0))


def _journal_key(engine: Mapping[str, Any], env: Mapping[str, str], base: Path | None) -> bytes | None:
    """The AES-256 key that encrypts journal contents: env LIAISON_JOURNAL_KEY or a key file."""
    raw = env.get("LIAISON_JOURNAL_KEY", "")
    key_file = _str(engine, "engine.journal_key_file", "")
    where = "LIAISON_JOURNAL_KEY"
    if not raw and key_file:
        path = Path(key_file) if base is None else base / key_file
        where = "engine.journal_key_file"
        try:
            raw = path.read_text(encoding="ascii").strip()
        except OSError as exc:
            raise ConfigError(where, f"cannot read {path}: {exc.strerror}") from exc
    if not raw:
        return None
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise ConfigError(where, "expected 32 bytes in base64") from exc
    if len(key) != 32:
        raise ConfigError(where, f"expected 32 bytes in base64, got {len(key)} bytes")
    return key


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(key, "expected a table")
    return value


def _no_unknown(table: Mapping[str, Any], where: str, known: set[str]) -> None:
    for key in table:
        if key not in known:
            name = f"{where}.{key}" if where else key
            raise ConfigError(name, f"unknown key (known: {', '.join(sorted(known))})")


def _str(table: Mapping[str, Any], key: str, default: str) -> str:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, got {type(value).__name__}")
    return value


def _bool(table: Mapping[str, Any], key: str, default: bool) -> bool:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if not isinstance(value, bool):
        raise ConfigError(key, f"expected true or false, got {value!r}")
    return value


def _int(table: Mapping[str, Any], key: str, default: int, *, minimum: int | None = None,
         maximum: int | None = None) -> int:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"expected an integer, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(key, f"{value} is out of range [{minimum}, {maximum}]")
    return value


def _float(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(key, f"expected a positive number of seconds, got {value!r}")
    return float(value)


def _check_scheme(key: str, url: str, schemes: tuple[str, ...]) -> None:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in schemes:
        raise ConfigError(key, f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}, got {url!r}")
