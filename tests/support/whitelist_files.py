"""Small listes blanches in the ANS format, written by the tests (fictitious operators and domains)."""

from __future__ import annotations

import hashlib
from pathlib import Path

NS = "https://listeblanche.mssante.fr/schema"
OPERATOR = "CN=mss.operateur-test.fr,OU=123456789,O=OPERATEUR TEST,ST=Paris (75),C=FR"


def make_list(domains: dict[str, str] | list[str], generated: str = "2025-03-13T14:54:10Z", *,
              close_root: bool = True) -> bytes:
    """A liste blanche in the ANS format; ``domains`` maps a name to its operator DN (or lists names)."""
    if isinstance(domains, list):
        domains = {name: OPERATOR for name in domains}
    body = "".join(
        f"""
        <Domaine>
            <Nom>{name}</Nom>
            <Description>Domaine de test {name}</Description>
            <DNCertificatOperateur>{dn}</DNCertificatOperateur>
            <ResponsableContact>01 00 00 00 00, contact@operateur-test.fr</ResponsableContact>
            <SupportContact>01 00 00 00 01, support@operateur-test.fr</SupportContact>
            <DateMAJ>2025-01-02T03:04:05Z</DateMAJ>
        </Domaine>""" for name, dn in domains.items())
    text = (f'<?xml version="1.0" encoding="UTF-8"?><ListeBlancheMSSante xmlns="{NS}">\n'
            f"    <DateDeGeneration>{generated}</DateDeGeneration>\n    <ListeDomaines>{body}\n    </ListeDomaines>\n")
    if close_root:
        text += "</ListeBlancheMSSante>\n"
    return text.encode("utf-8")


def sha256_of(data: bytes) -> bytes:
    """A checksum file as the ANS mirror writes it: the bare hex digest, no newline."""
    return hashlib.sha256(data).hexdigest().encode("ascii")


def write_pair(directory: Path, data: bytes, checksum: bytes | None = None) -> Path:
    """``listeblanchemssante.xml`` and ``checksum`` side by side in ``directory``; the list's path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "listeblanchemssante.xml"
    path.write_bytes(data)
    (directory / "checksum").write_bytes(sha256_of(data) if checksum is None else checksum)
    return path
