"""Write a liste blanche in the ANS format, with its checksum: for a private test platform, the demo, the tests.

A GHT's recette platform or ``liaison demo`` mails test domains that the national
list does not hold. Rather than switching the check off, they publish their own
list the same way the ANS does (``listeblanchemssante.xml`` and a ``checksum``
file holding the bare hex SHA-256 beside it), and Liaison verifies and uses it
exactly like the national one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from xml.sax.saxutils import escape

NS = "https://listeblanche.mssante.fr/schema"
LIST_NAME = "listeblanchemssante.xml"
CHECKSUM_NAME = "checksum"


def list_xml(domains: Mapping[str, str] | Iterable[str], *, operator: str, generated: str,
             close_root: bool = True) -> bytes:
    """The list's XML; ``domains`` maps each domain to its operator DN, or names domains of ``operator``."""
    if not isinstance(domains, Mapping):
        domains = {name: operator for name in domains}
    body = "".join(
        f"""
        <Domaine>
            <Nom>{escape(name)}</Nom>
            <Description>Domaine {escape(name)}</Description>
            <DNCertificatOperateur>{escape(dn)}</DNCertificatOperateur>
            <ResponsableContact>01 00 00 00 00, contact@operateur-test.fr</ResponsableContact>
            <SupportContact>01 00 00 00 01, support@operateur-test.fr</SupportContact>
            <DateMAJ>{generated}</DateMAJ>
        </Domaine>""" for name, dn in domains.items())
    text = (f'<?xml version="1.0" encoding="UTF-8"?><ListeBlancheMSSante xmlns="{NS}">\n'
            f"    <DateDeGeneration>{generated}</DateDeGeneration>\n    <ListeDomaines>{body}\n    </ListeDomaines>\n")
    if close_root:
        text += "</ListeBlancheMSSante>\n"
    return text.encode("utf-8")


def checksum_of(data: bytes) -> bytes:
    """A checksum file as the ANS mirror writes it: the bare hex digest, no newline."""
    return hashlib.sha256(data).hexdigest().encode("ascii")


def publish(directory: Path, data: bytes, checksum: bytes | None = None) -> Path:
    """``listeblanchemssante.xml`` and ``checksum`` side by side in ``directory``; the list's path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LIST_NAME
    path.write_bytes(data)
    (directory / CHECKSUM_NAME).write_bytes(checksum_of(data) if checksum is None else checksum)
    return path
