"""Run the independent verifier ``xmlsec1`` (libxmlsec1, Debian package xmlsec1) on a signed VIHF.

Absent binary → the test is skipped with a message, unless ``LIAISON_REQUIRE_XMLSEC1=1``
(the CI image installs it), where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SAML_ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"


def require_xmlsec1() -> str:
    """The path of ``xmlsec1``, or skip (fail when ``LIAISON_REQUIRE_XMLSEC1=1``)."""
    found = shutil.which("xmlsec1")
    if found:
        return found
    message = "xmlsec1 not found (apt-get install xmlsec1): the independent signature check did not run"
    if os.environ.get("LIAISON_REQUIRE_XMLSEC1") == "1":
        pytest.fail(message)
    pytest.skip(message)


def xmlsec1_verify(document: bytes, trusted_ca: Path, workdir: Path) -> tuple[bool, str]:
    """(verified, xmlsec1's output): the signature must check out *and* its certificate chain to ``trusted_ca``.

    ``--id-attr:ID`` declares the Assertion's ``ID`` attribute as an XML ID so ``URI="#..."`` resolves;
    ``--trusted-pem`` makes xmlsec1 verify the KeyInfo certificate against the CA (at the current time).
    """
    binary = require_xmlsec1()
    path = workdir / "signed-vihf.xml"
    path.write_bytes(document)
    done = subprocess.run(
        [binary, "--verify", "--trusted-pem", str(trusted_ca), "--id-attr:ID", SAML_ASSERTION, str(path)],
        capture_output=True, text=True, timeout=60)
    output = done.stdout + done.stderr
    return done.returncode == 0 and "OK" in output, output
