"""Tests of the DMP XDS.b transport (SOAP, MTOM, responses, client against the DMP double)."""
