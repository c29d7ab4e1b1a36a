"""``/api/openapi.json`` describes every /api route of the application, and only those, as they answer."""

from __future__ import annotations

from starlette.routing import Route

from channels.console.openapi import SPEC

IGNORED_METHODS = {"HEAD"}     # Starlette adds HEAD to every GET


def app_api_routes(app) -> set[tuple[str, str]]:
    return {(route.path, method.lower()) for route in app.routes if isinstance(route, Route)
            and route.path.startswith("/api/") for method in route.methods - IGNORED_METHODS}


async def test_every_api_route_is_described_and_nothing_else(console):
    async with console.client() as client:
        response = await client.get("/api/openapi.json")       # no login needed
    spec = response.json()
    assert response.status_code == 200 and spec["openapi"].startswith("3.1")
    described = {(path, method) for path, methods in spec["paths"].items() for method in methods}
    assert described == app_api_routes(console.app)
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            assert operation["summary"] and "200" in operation["responses"], (path, method)
            named = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert named == {part[1:-1] for part in path.split("/") if part.startswith("{")}, path


async def test_answers_have_the_fields_the_description_gives(console):
    key = await console.receive("OAS-1")
    async with console.logged_in("operator") as client:
        for path in ("/api/session", "/api/messages", "/api/messages/{key}", "/api/parked", "/api/dashboard",
                     "/api/compliance", "/api/configuration"):
            body = (await client.get(path.format(key=key))).json()
            schema = SPEC["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            assert set(body) >= set(schema["required"]), path
            assert set(body) <= set(schema["properties"]), path
            for field, value in body.items():
                declared = schema["properties"].get(field, {}).get("type")
                if declared == "array":
                    assert isinstance(value, list), (path, field)
        filters = {p["name"] for p in SPEC["paths"]["/api/messages"]["get"]["parameters"]}
    from channels.console.browse import FILTERS
    assert set(FILTERS) | {"before", "limit"} == filters
