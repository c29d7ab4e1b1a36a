"""The DMP channel: IHE XDS.b ITI-41 deposits to the French shared record (Dossier Médical Partagé).

Each SOAP 1.2 / MTOM request carries a VIHF (a signed SAML 2.0 assertion, :mod:`channels.xds.vihf`)
in its WS-Security header; the connection itself is mutual TLS with the structure's IGC-Santé
certificate. See french-interop.md §4.
"""
