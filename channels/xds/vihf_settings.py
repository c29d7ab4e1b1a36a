"""The ``[dmp.vihf]`` configuration table: what a VIHF says about the structure and the software.

:func:`from_config` takes the table as a plain mapping; every error names ``dmp.vihf.<key>``.
The cachet key and certificate are loaded and cross-checked there, so a wrong path, password
or key fails at start-up rather than at the first deposit. ``activity_sector`` has no default:
it differs per structure (SA01 public, SA03/SA04 private, SA41 in the IG's example) and a
wrong value would be a false statement in a signed token::

    structure_id = "1750000012"                  # Identifiant_Structure: IdNat_Struct ("1" + FINESS)
    activity_sector = "SA01^1.2.250.1.71.4.2.4"  # Secteur_Activite (JDV_J61), required: no safe default
    subject_id = "1750000012/DSI-DMP"            # Subject/NameID: person responsible for the deposits
    subject_name = "Liaison, moteur d'intégration, DSI"   # subject-id (default: lps_name)
    role_code = "AUTOMATE"                       # + role_system, role_display (JDV_J65)
    specialty_code = ""                          # + specialty_system, specialty_display: 2nd role occurrence
    purpose_of_use = "normal"
    lps_id = "..."                               # optional
    lps_name = "Liaison"
    lps_version = "0.1.0"                        # default: the installed package version
    lps_homologation_id = "..."                  # required: the DMP homologation number
    vihf_version = "3.0"                         # or "4.0"
    signing_cert = "/etc/liaison/cachet.pem"     # the certificat de cachet (PEM, RSA)
    signing_key = "/etc/liaison/cachet.key"      # its private key (PEM)
    signing_key_password_env = "LIAISON_CACHET_KEY_PASSWORD"   # optional: env var holding the key password
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from router.config_values import no_unknown
from router.errors import ConfigError

__all__ = ["AUTOMATE", "PURPOSES", "VIHF_VERSIONS", "CodedValue", "SigningMaterial", "VihfSettings",
           "from_config"]

VIHF_VERSIONS = ("3.0", "4.0")


@dataclass(frozen=True)
class CodedValue:
    """An HL7 CE value as the VIHF carries it (``<Role code=... codeSystem=... displayName=...>``)."""

    code: str
    code_system: str
    display: str = ""
    code_system_name: str = ""


AUTOMATE = CodedValue("AUTOMATE", "1.2.250.1.213.1.1.4.6", "AUTOMATE")
#: PurposeOfUse codes for an automated deposit ("mode acces VIHF 1.0"): only a normal access.
PURPOSES = {"normal": CodedValue("normal", "1.2.250.1.213.1.1.4.248", "Accès normal", "mode acces VIHF 1.0")}


def _package_version() -> str:
    try:
        from importlib.metadata import version
        return version("liaison")
    except Exception:       # not installed as a distribution (running from a checkout)
        return "dev"


@dataclass(frozen=True)
class SigningMaterial:
    """The cachet key and certificate as PEM bytes, and the key's password."""

    key_pem: bytes = field(repr=False)
    cert_pem: bytes
    password: bytes | None = field(default=None, repr=False)

    @cached_property
    def private_key(self) -> rsa.RSAPrivateKey:
        """The key, parsed once: parsing (and checking) an RSA key costs far more than a signature with it
        (OpenSSL 3 checks the key on load; it was a third of a worker's CPU when done for every deposit)."""
        return serialization.load_pem_private_key(self.key_pem, password=self.password)


@dataclass(frozen=True)
class VihfSettings:
    """What a VIHF says about the structure and the software; see the module docstring."""

    structure_id: str
    activity_sector: str
    subject_id: str
    subject_name: str
    lps_homologation_id: str
    signing_cert: Path
    signing_key: Path
    signing_key_password_env: str | None = None
    roles: tuple[CodedValue, ...] = (AUTOMATE,)
    purpose_of_use: CodedValue = PURPOSES["normal"]
    lps_id: str | None = None
    lps_name: str = "Liaison"
    lps_version: str = field(default_factory=_package_version)
    vihf_version: str = "3.0"

    def signing_material(self, env: Mapping[str, str] | None = None) -> SigningMaterial:
        """Read the key and certificate files; the password comes from ``signing_key_password_env``."""
        env = os.environ if env is None else env
        password = None
        if self.signing_key_password_env:
            value = env.get(self.signing_key_password_env)
            if value is None:
                raise ConfigError("dmp.vihf.signing_key_password_env",
                                  f"environment variable {self.signing_key_password_env} is not set")
            password = value.encode()
        return SigningMaterial(self.signing_key.read_bytes(), self.signing_cert.read_bytes(), password)


_KEYS = {"structure_id", "activity_sector", "subject_id", "subject_name", "role_code", "role_system",
         "role_display", "specialty_code", "specialty_system", "specialty_display", "purpose_of_use",
         "lps_id", "lps_name", "lps_version", "lps_homologation_id", "vihf_version", "signing_cert",
         "signing_key", "signing_key_password_env"}
OID_PATTERN = r"[0-2](\.(0|[1-9][0-9]*))+"
_STRUCTURE_ID = re.compile(r"[0-9][0-9A-Za-z/]{1,40}")
_SECTOR = re.compile(r"[A-Za-z0-9]+\^" + OID_PATTERN)


def _text(table: Mapping[str, Any], key: str, default: str | None = None, *, required: bool = False,
          pattern: re.Pattern[str] | None = None, hint: str = "a non-empty string") -> str | None:
    value = table.get(key, default)
    if value is None:
        if required:
            raise ConfigError(f"dmp.vihf.{key}", f"required, expected {hint}")
        return None
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ConfigError(f"dmp.vihf.{key}", f"expected {hint}, got {value!r}")
    if pattern is not None and not pattern.fullmatch(value):
        raise ConfigError(f"dmp.vihf.{key}", f"expected {hint}, got {value!r}")
    return value


def _coded(table: Mapping[str, Any], prefix: str, default: CodedValue | None) -> CodedValue | None:
    keys = (f"{prefix}_code", f"{prefix}_system", f"{prefix}_display")
    if default is None and not any(table.get(k) for k in keys):
        return None
    code = _text(table, keys[0], default.code if default else None, required=True, hint="a code")
    system = _text(table, keys[1], default.code_system if default and code == default.code else None,
                   required=True, pattern=re.compile(OID_PATTERN), hint="an OID")
    display = _text(table, keys[2], default.display if default and code == default.code else code)
    return CodedValue(code or "", system or "", display or "")


def from_config(table: Mapping[str, Any], env: Mapping[str, str] | None = None) -> VihfSettings:
    """Settings from the ``[dmp.vihf]`` table; the cachet key and certificate are loaded and checked now."""
    if not isinstance(table, Mapping):
        raise ConfigError("dmp.vihf", "expected a table")
    no_unknown(table, "dmp.vihf", _KEYS)
    structure_id = _text(table, "structure_id", required=True, pattern=_STRUCTURE_ID,
                         hint='an IdNat_Struct such as "1" + FINESS')
    if structure_id and structure_id[0] == "1" and len(structure_id) != 10:
        raise ConfigError("dmp.vihf.structure_id", f'"1" + FINESS must be 10 characters, got {structure_id!r}')
    purpose = _text(table, "purpose_of_use", "normal", hint=" or ".join(PURPOSES))
    if purpose not in PURPOSES:
        raise ConfigError("dmp.vihf.purpose_of_use", f"expected one of {', '.join(PURPOSES)}, got {purpose!r}")
    vihf_version = _text(table, "vihf_version", "3.0", hint=" or ".join(VIHF_VERSIONS))
    if vihf_version not in VIHF_VERSIONS:
        raise ConfigError("dmp.vihf.vihf_version", f"expected one of {', '.join(VIHF_VERSIONS)}, "
                                                   f"got {vihf_version!r}")
    lps_name = _text(table, "lps_name", "Liaison") or "Liaison"
    role = _coded(table, "role", AUTOMATE)
    specialty = _coded(table, "specialty", None)
    settings = VihfSettings(
        structure_id=structure_id or "",
        activity_sector=_text(table, "activity_sector", required=True, pattern=_SECTOR,
                              hint='code^codeSystem from JDV_J61, e.g. "SA01^1.2.250.1.71.4.2.4"') or "",
        subject_id=_text(table, "subject_id", required=True) or "",
        subject_name=_text(table, "subject_name", lps_name) or lps_name,
        lps_homologation_id=_text(table, "lps_homologation_id", required=True) or "",
        signing_cert=Path(_text(table, "signing_cert", required=True, hint="a PEM file path") or ""),
        signing_key=Path(_text(table, "signing_key", required=True, hint="a PEM file path") or ""),
        signing_key_password_env=_text(table, "signing_key_password_env", hint="an environment variable name"),
        roles=tuple(r for r in (role, specialty) if r is not None),
        purpose_of_use=PURPOSES[purpose],
        lps_id=_text(table, "lps_id"),
        lps_name=lps_name,
        lps_version=_text(table, "lps_version", _package_version()) or "dev",
        vihf_version=vihf_version,
    )
    _check_signing_material(settings, env)
    return settings


def _check_signing_material(settings: VihfSettings, env: Mapping[str, str] | None) -> None:
    """Fail at start-up, naming the key, rather than at the first deposit."""
    for key, path in (("signing_cert", settings.signing_cert), ("signing_key", settings.signing_key)):
        if not path.is_file():
            raise ConfigError(f"dmp.vihf.{key}", f"no such file: {path}")
    material = settings.signing_material(env)
    try:
        cert = x509.load_pem_x509_certificate(material.cert_pem)
    except ValueError as exc:
        raise ConfigError("dmp.vihf.signing_cert", f"not a PEM certificate: {settings.signing_cert}") from exc
    try:
        key = serialization.load_pem_private_key(material.key_pem, password=material.password)
    except (ValueError, TypeError) as exc:
        raise ConfigError("dmp.vihf.signing_key", f"cannot load the private key {settings.signing_key} "
                                                  f"(wrong password or not PEM): {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("dmp.vihf.signing_key", "the VIHF is signed with RSA-SHA256: expected an RSA key")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        raise ConfigError("dmp.vihf.signing_key", f"does not match the certificate {settings.signing_cert}")
    if cert.not_valid_after_utc <= datetime.now(timezone.utc):
        raise ConfigError("dmp.vihf.signing_cert", f"expired on {cert.not_valid_after_utc.isoformat()}")
