"""Test tooling shared by the tests, the demo and the benchmarks; never used on a production path.

Fictitious HL7 v2 message builders (``messages``, ``adt_messages``,
``lab_messages``, ``mdm_messages``), a throw-away PKI (``pki``), a local TLS
mail server that keeps what it receives (``mail_sink``), a whitelist
publisher in the ANS format (``whitelist_publish``), a DMP double (``dmp_double``:
XDS.b over mutual TLS) and the *cachet* PKI that signs its VIHF (``cachet_pki``). No adapter and no core
module imports this package (an import-linter contract in ``pyproject.toml``).
"""
