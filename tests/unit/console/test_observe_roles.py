"""Who may use the endpoints the dashboard, compliance, configuration, metrics and OpenAPI added: each role × each."""

from __future__ import annotations

import pytest

ROLES = (None, "viewer", "operator", "admin")

# (path, expected status per role: anonymous, viewer, operator, admin)
ENDPOINTS = [
    ("/api/dashboard", (401, 200, 200, 200)),
    ("/api/compliance", (401, 200, 200, 200)),
    ("/api/configuration", (401, 200, 200, 200)),
    ("/api/openapi.json", (200, 200, 200, 200)),
    ("/metrics", (200, 200, 200, 200)),
    ("/api/messages?document_id=DOC-1", (401, 200, 200, 200)),
    ("/api/messages?recipient=dr.x%40test.mssante.fr", (401, 200, 200, 200)),
    ("/api/messages?ipp=IPP-1", (401, 403, 200, 200)),
    ("/api/messages?ins=279035121518989", (401, 403, 200, 200)),
    ("/dashboard", (303, 200, 200, 200)),
    ("/compliance", (303, 200, 200, 200)),
    ("/configuration", (303, 200, 200, 200)),
    ("/messages?ipp=IPP-1", (303, 403, 200, 200)),
    ("/messages?document_id=DOC-1", (303, 200, 200, 200)),
]


@pytest.mark.parametrize("role_index,role", list(enumerate(ROLES)))
@pytest.mark.parametrize("path,expected", ENDPOINTS, ids=[p for p, _ in ENDPOINTS])
async def test_each_new_endpoint_answers_each_role(console, role_index, role, path, expected):
    async with console.logged_in(role) as client:
        response = await client.get(path)
    assert response.status_code == expected[role_index], response.text
    if role is None and response.status_code == 303:
        assert response.headers["location"].startswith("/login")
