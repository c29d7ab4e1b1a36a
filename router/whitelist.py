"""The MSSanté liste blanche as data: may this address be written to from the Espace de confiance?

Only the domains the ANS lists (``listeblanchemssante.xml``, see
``channels/whitelist``) belong to the Espace de confiance; mail to any other
domain must not leave. This module is pure (no I/O): it holds a parsed list and
answers :meth:`Whitelist.check` with a verdict and a reason that can be
journaled as is (it names only the domain, never the local part, which for a
patient is the INS).

Decisions:

- **Exact domain match, case-insensitive.** Each ``Domaine/Nom`` is a full mail
  domain and the list names sub-domains separately (``aura.mssante.fr`` and
  ``acppa.aura.mssante.fr`` are distinct entries, each with its own operator
  certificate), so a sub-domain of a listed domain is *not* allowed unless it is
  listed itself. The ANS documents no wildcard.
- **One domain, several operators.** A domain is listed once per operator
  server certificate (``15-20.mssante.fr`` has five ``Domaine`` entries), so a
  domain maps to a tuple of ``DNCertificatOperateur``.
- **The patients' domain is trusted by rule.** ``patient.mssante.fr`` (Mon
  espace santé, the citizen messaging, addresses built from the qualified INS)
  belongs to the Espace de confiance, yet the published list does not name it
  (the ANS snapshot of 2025-03-13 has 619 domains, not this one). A list built
  with ``patient_domain`` allows that one domain, exactly, and its verdict says
  it was by rule (configuration key ``whitelist.patient_domain``, on by
  default, ``""`` to turn it off). A listed domain still wins, naming its operators.
- Sites that must reach other national domains missing from the list they
  hold pass them in ``always_allowed`` (configuration key
  ``whitelist.always_allowed``, empty by default); such a verdict says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL = re.compile(r"^[^\s@<>()\[\]\\,;:\"]+$")


@dataclass(frozen=True)
class DomainEntry:
    """One ``Domaine`` element of the list (operator contacts, not personal data about patients)."""

    name: str
    operator_dn: str
    description: str = ""
    responsable_contact: str = ""
    support_contact: str = ""
    updated_at: datetime | None = None


@dataclass(frozen=True)
class WhitelistVerdict:
    """Whether an address may be written to, and why (safe to log: names the domain only)."""

    allowed: bool
    reason: str
    domain: str | None = None


def normalize_domain(domain: str) -> str | None:
    """The domain in lower-case ASCII (IDNA), without a final dot; None when it is not a host name."""
    domain = domain.strip()
    if domain.endswith("."):
        domain = domain[:-1]
    if not domain:
        return None
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or len(ascii_domain) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    return ascii_domain


def address_domain(address: str) -> str | None:
    """The normalized domain of ``local@domain`` (or ``Name <local@domain>``); None when malformed."""
    text = address.strip()
    if text.endswith(">") and "<" in text:
        text = text[text.rindex("<") + 1:-1].strip()
    if text.count("@") != 1:
        return None
    local, domain = text.split("@")
    if not local or len(local) > 64 or not _LOCAL.match(local):
        return None
    return normalize_domain(domain)


class Whitelist:
    """The domains of the Espace de confiance at ``generated_at``, with their operators' certificate DNs."""

    def __init__(self, entries: Iterable[DomainEntry], generated_at: datetime, *,
                 always_allowed: Iterable[str] = (), patient_domain: str | None = None):
        self.entries: tuple[DomainEntry, ...] = tuple(entries)
        self.generated_at = generated_at
        operators: dict[str, list[str]] = {}
        for entry in self.entries:
            domain = normalize_domain(entry.name)
            if domain is None:
                raise ValueError(f"not a domain name: {entry.name!r}")
            dns = operators.setdefault(domain, [])
            if entry.operator_dn and entry.operator_dn not in dns:
                dns.append(entry.operator_dn)
        self._operators: Mapping[str, tuple[str, ...]] = {d: tuple(v) for d, v in operators.items()}
        allowed = set()
        for name in always_allowed:
            domain = normalize_domain(name)
            if domain is None:
                raise ValueError(f"always_allowed: not a domain name: {name!r}")
            allowed.add(domain)
        self.always_allowed: frozenset[str] = frozenset(allowed)
        self.patient_domain = normalize_domain(patient_domain) if patient_domain else None
        if patient_domain and self.patient_domain is None:
            raise ValueError(f"patient_domain: not a domain name: {patient_domain!r}")

    @property
    def domains(self) -> frozenset[str]:
        return frozenset(self._operators)

    def __len__(self) -> int:
        return len(self._operators)

    def __contains__(self, domain: object) -> bool:
        return isinstance(domain, str) and normalize_domain(domain) in self._operators

    def operators(self, domain: str) -> tuple[str, ...]:
        """The operator certificate DNs listed for ``domain`` (empty when it is not listed)."""
        normalized = normalize_domain(domain)
        return self._operators.get(normalized, ()) if normalized else ()

    def with_always_allowed(self, domains: Iterable[str]) -> Whitelist:
        """The same list with another set of always-allowed domains."""
        return Whitelist(self.entries, self.generated_at, always_allowed=domains,
                         patient_domain=self.patient_domain)

    def check(self, address: str) -> WhitelistVerdict:
        """May mail be sent to ``address``? The reason names the domain and the list's date, never the local part."""
        domain = address_domain(address)
        if domain is None:
            return WhitelistVerdict(False, "malformed address")
        operators = self._operators.get(domain)
        if operators:
            label = "operator" if len(operators) == 1 else "operators"
            return WhitelistVerdict(True, f"domain {domain} is on the MSSanté whitelist "
                                          f"({label} {'; '.join(operators)})", domain)
        if operators is not None:
            return WhitelistVerdict(True, f"domain {domain} is on the MSSanté whitelist", domain)
        if domain == self.patient_domain:
            return WhitelistVerdict(True, f"domain {domain} is the patients' MSSanté domain (Mon espace santé): "
                                          "in the Espace de confiance by rule", domain)
        if domain in self.always_allowed:
            return WhitelistVerdict(True, f"domain {domain} is not on the MSSanté whitelist (generated "
                                          f"{self.generated_at:%Y-%m-%d}) but is always allowed by configuration",
                                    domain)
        return WhitelistVerdict(False, f"domain {domain} is not on the MSSanté whitelist "
                                       f"(generated {self.generated_at:%Y-%m-%d})", domain)
