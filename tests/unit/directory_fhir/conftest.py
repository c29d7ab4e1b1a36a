"""A local Annuaire Santé FHIR API with fictitious professionals, and a directory pointed at it."""

import pytest

from channels.directory.fhir import FhirDirectory
from channels.testing.adt_messages import DR_DURAND, DR_LEFEVRE, DR_MARTIN
from tests.support.fhir_server import (FhirServer, email, mss, organization, practitioner,
                                       practitioner_role)

CHU_IDNST = "1990000015"          # fictitious 1+FINESS


def dataset() -> list[dict]:
    return [
        practitioner("p-martin", DR_MARTIN.rpps, DR_MARTIN.family, DR_MARTIN.given, telecom=[
            mss("sophie.martin@medecin.mssante.fr"),
            email("sophie.martin@example.org"),
            email("s.martin@apicrypt.example.org", "APICRYPT")]),
        practitioner_role("r-martin-chu", "p-martin", "o-chu", telecom=[
            mss("sophie.martin@chu-fictif.mssante.fr", service="Cardiologie")]),
        organization("o-chu", CHU_IDNST, "CHU FICTIF DE TEST", postal_code="99999", telecom=[
            mss("cardiologie@chu-fictif.mssante.fr", "ORG", service="Cardiologie"),
            mss("dpi@chu-fictif.mssante.fr", "APP"),
            email("contact@chu-fictif.example.org")]),
        practitioner("p-durand", DR_DURAND.rpps, DR_DURAND.family, DR_DURAND.given, telecom=[
            mss("chloe.durand@medecin.mssante.fr", red_list=True),
            mss("cabinet.durand@medecin.mssante.fr", "CAB", red_list=False)]),
        practitioner("p-lefevre", DR_LEFEVRE.rpps, DR_LEFEVRE.family, DR_LEFEVRE.given, telecom=[
            email("etienne.lefevre@example.org")]),
    ]


@pytest.fixture
async def server():
    async with FhirServer(resources=dataset()) as running:
        yield running


@pytest.fixture
async def directory(server):
    async with FhirDirectory(server.base_url, server.api_key, timeout=0.3, page_limit=5) as fhir:
        yield fhir
