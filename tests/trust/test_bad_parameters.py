"""Point 20: one rule for bad query and path parameters on every route: a 400 with a
message (never a 422, which is kept for a JSON body that does not fit). Walks every GET
operation of the OpenAPI document, so a route added tomorrow is walked too."""

from __future__ import annotations

import pytest

# values a parameter of that name refuses although its type takes them
SEMANTIC = {
    "metric": "nonsense",
    "compare": "nonsense",
    "smooth": "x",
    "period": "nonsense",
    "classes": "nonsense",
    "breaks": "a,b",
    "level": "nonsense",
    "status": "lost",
    "category": "nonsense",
    "channel": "nonsense",
    "month": "1800-01",
    "start": "yesterday",
    "end": "yesterday",
}


def _schemas(param: dict) -> list[dict]:
    schema = param.get("schema", {})
    return [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]


def bad_values(param: dict) -> list[str]:
    """Values of ``param`` the route must refuse, read off its schema and its name."""
    out = []
    for s in _schemas(param):
        if "enum" in s:
            out.append("nonsense")
        elif s.get("type") == "integer":
            out += ["x", "1.5"] + ([str(s["minimum"] - 1)] if "minimum" in s else [])
        elif s.get("type") == "boolean":
            out.append("maybe")
        elif s.get("format") == "date":
            out.append("yesterday")
        elif "pattern" in s:
            out.append("bad")
        if "maxLength" in s:
            out.append("x" * (s["maxLength"] + 1))
    if param["in"] == "query" and param["name"] in SEMANTIC:
        out.append(SEMANTIC[param["name"]])
    return list(dict.fromkeys(out))


@pytest.fixture(scope="module")
def get_routes(trust_client) -> list[tuple[str, list[dict]]]:
    doc = trust_client.get("/openapi.json").json()
    return [
        (path, ops["get"].get("parameters", []))
        for path, ops in doc["paths"].items()
        if "get" in ops and not path.startswith("/ogc")  # OGC API: its own 400s, tested there
    ]


def _ids_of(client) -> dict[str, str]:
    """A real id for each kind of path parameter the world has (a case, a risk item, ...),
    so that a bad query parameter is tried on a route that would otherwise answer."""
    found = {}
    cases = client.get("/api/v1/cases", params={"limit": 1}).json().get("items", [])
    if cases:
        found["case_id"] = str(cases[0]["id"])
    items = client.get("/api/v1/risk-items").json()
    items = items.get("items", []) if isinstance(items, dict) else []
    if items:
        found["risk_item_id"] = str(items[0]["id"])
    return found


def test_every_bad_query_or_path_parameter_is_a_400(trust_client, trust_world, get_routes):
    fill = {"code": trust_world.city, "alert_id": "1", **_ids_of(trust_client)}
    tried, wrong = 0, []
    for path, params in get_routes:
        url = path
        for p in params:
            if p["in"] == "path":
                url = url.replace("{" + p["name"] + "}", fill.get(p["name"], "1"))
        for p in params:
            for value in bad_values(p):
                if p["in"] == "path":
                    target = path.replace("{" + p["name"] + "}", value)
                    for q in params:
                        if q["in"] == "path" and q is not p:
                            target = target.replace("{" + q["name"] + "}", fill.get(q["name"], "1"))
                    r = trust_client.get(target)
                else:
                    r = trust_client.get(url, params={p["name"]: value})
                tried += 1
                body = r.json() if r.headers.get("content-type", "").endswith("json") else {}
                if r.status_code != 400 or not body.get("message"):
                    wrong.append((path, p["name"], value[:20], r.status_code, body))
    assert tried > 60
    assert not wrong, wrong


def test_a_body_that_does_not_fit_stays_a_422(trust_client) -> None:
    r = trust_client.post("/api/v1/auth/login", json={"name": 1})
    assert r.status_code == 422 and r.json()["message"]
