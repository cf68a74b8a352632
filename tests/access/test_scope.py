"""Scope everywhere: walk the app's whole route table as users of two sibling towns.

Every GET operation of the OpenAPI document (so a route added tomorrow is walked without
anyone remembering to) is called by a token of each role at 东镇 and at 西镇, a village worker
of one village, and the city admin. Path parameters are filled with codes (and case ids)
of the caller's own subtree and of the other town; unit-like query parameters too. The walk
fails on any 5xx, on any 2xx that carries a unit code outside the caller's subtree, and on
any 2xx for a path naming a unit or case outside it (it must be a 404, not a confirmation),
and on any case list shown to a wall display.

The codes of the caller's own ancestors are not allowed either: a town official's answers
never name the city (the home unit's ``parent_code`` is blanked, the breadcrumb starts at
the home unit). The dashboard is walked the same way through its own routes (the Flask
rules, every registered page, every server-side callback fed with what the page rendered
and with that state forged to name the other town), with a session cookie.

So that the walk cannot pass by seeing nothing, every reading caller must also have been
shown codes of its own subtree, and refused (404) at least one path naming a foreign unit.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from itertools import islice

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.db.models import Alert, Case
from api.db.session import session_scope
from api.principal import ROLES, Principal
from tests.conftest import token_for
from tests.utils.callbacks import callback_body

CODE_RE = re.compile(rb"(?<![0-9])[0-9]{6,15}(?![0-9])")
UNIT_WORDS = ("code", "unit", "parent", "feature", "item")
LEVEL_WORDS = ("level", "collection")


@dataclass
class Caller:
    label: str
    role: str
    home: str
    token: str
    subtree: set[str]
    ancestors: set[str]
    foreign: list[str] = field(default_factory=list)  # codes to try in path parameters


def subtree_of(world, home: str) -> set[str]:
    """Codes under (and including) ``home``, from the world's parent map (not the app)."""
    every = {world.city, *world.towns, *world.villages, *world.grids}

    def chain(code: str):
        while code is not None:
            yield code
            code = world.parent.get(code)

    return {c for c in every if home in chain(c)}


def leaf_points(world) -> dict[str, tuple[float, float]]:
    """A point inside each leaf (grid, village without grids, town without villages)."""
    from api.services.units import get_unit

    leaves = [*world.grids, world.leaf_village, world.leaf_town]
    out = {}
    with session_scope(world.url) as session:
        for code in leaves:
            point = get_unit(session, code).geom.representative_point()
            out[code] = (point.x, point.y)
    return out


def seed_cases_and_alerts(client: TestClient, world) -> None:
    """Cases in every leaf through the intake API, and an alert on every village and town."""
    now = dt.datetime.now(dt.UTC)
    items = [
        {
            "source": "scope-test",
            "external_id": f"{code}-{k}",
            "category": "neighbour",
            "channel": "hotline_12345",
            "reported_at": (now - dt.timedelta(days=3 + k)).isoformat(),
            "lon": lon,
            "lat": lat,
        }
        for code, (lon, lat) in leaf_points(world).items()
        for k in range(2)
    ]
    response = client.post("/api/v1/cases", json=items)
    assert response.status_code == 200, response.text
    assert response.json()["created"] == len(items)
    events = [  # dispatch events in every leaf too (GET /api/v1/events, its coverage)
        {"source": "scope-test", "external_id": f"{code}-e", "type": "help",
         "force_kind": "police", "received_at": (now - dt.timedelta(days=2)).isoformat(),
         "lon": lon, "lat": lat}
        for code, (lon, lat) in leaf_points(world).items()
    ]  # fmt: skip
    assert client.post("/api/v1/events", json=events).status_code == 200
    with session_scope(world.url) as session:
        for code in [*world.villages, *world.towns]:
            session.add(
                Alert(
                    unit_code=code,
                    kind="caseload",
                    category="neighbour",
                    status="open",
                    observed=9,
                    expected=2,
                    probability=0.001,
                    opened_on=now.date(),
                    last_seen_on=now.date(),
                )
            )


def seed_risk_items(client: TestClient, world) -> None:
    """Risk-register items: one decided by the city whose area lies in 东镇's first village,
    one decided by each of the first two towns (a point in their own area)."""
    planned = (dt.datetime.now(dt.UTC) + dt.timedelta(days=40)).isoformat()
    square = [[[121.02, 31.42], [121.04, 31.42], [121.04, 31.44], [121.02, 31.44], [121.02, 31.42]]]
    places = [
        (world.city, {"type": "Polygon", "coordinates": square}),
        (world.towns[0], {"type": "Point", "coordinates": [121.05, 31.55]}),
        (world.towns[1], {"type": "Point", "coordinates": [121.15, 31.55]}),
    ]
    for unit, place in places:
        item = {"kind": "project", "title": "scope", "deciding_unit": unit, "place": place,
                "planned_at": planned, "people_affected": 100, "department": "d"}  # fmt: skip
        response = client.post("/api/v1/risk-items", json=item)
        assert response.status_code == 201, response.text


def ids_by_kind(world) -> dict[str, dict[int, set[str]]]:
    """For cases, alerts and risk items: id → the codes it lies in (its unit and that unit's
    ancestors; for a risk item, also the units its area overlaps)."""
    from api.db.models import AdminUnit
    from api.db.risk import RiskItem, RiskItemArea

    with session_scope(world.url) as session:
        cases = session.execute(
            select(Case.id, AdminUnit.code).join(AdminUnit, AdminUnit.id == Case.leaf_unit_id)
        ).all()
        alerts = session.execute(select(Alert.id, Alert.unit_code)).all()
        risk = session.execute(select(RiskItem.id, RiskItem.deciding_unit_code)).all()
        areas = session.execute(select(RiskItemArea.item_id, RiskItemArea.unit_code)).all()

    def lineage(code: str) -> set[str]:
        return {code} | ancestors_of(world, code)

    risk_items = {i: lineage(code) for i, code in risk}
    for i, code in areas:
        risk_items[i] |= lineage(code)
    return {
        "case": {i: lineage(code) for i, code in cases},
        "alert": {i: lineage(code) for i, code in alerts},
        "risk_item": risk_items,
        **named_ids(world),
    }


def named_ids(world) -> dict[str, dict[str, set[str]]]:
    """Saved views (slug), walls and layers (name): each → the home units that may open
    it (a view shared at H: H's subtree and H's ancestors; a wall at W: W and its
    ancestors; a private view: nobody the walk acts as; a layer: everyone)."""
    from api.db.saved import SavedView, Wall
    from api.services.layers import LAYERS

    everyone = {world.city, *world.towns, *world.villages, *world.grids}
    with session_scope(world.url) as session:
        views = session.execute(select(SavedView.slug, SavedView.home_code, SavedView.shared))
        walls = session.execute(select(Wall.name, Wall.unit_code)).all()
        return {
            "view": {
                slug: (subtree_of(world, home) | ancestors_of(world, home)) if shared else set()
                for slug, home, shared in views
            },
            "wall": {name: {unit} | ancestors_of(world, unit) for name, unit in walls},
            "layer": {name: everyone for name in LAYERS},
        }


def seed_views_and_walls(db_url: str, world) -> None:
    """A shared view at the city naming 东镇, a shared and a private view at each town
    and at a village, and a wall at the city, at each town and at that village."""
    from api.services.auth import create_user
    from api.services.saved_views import put_wall, save_view

    homes = [world.city, *world.towns, world.villages[0]]
    with session_scope(db_url) as session:
        for n, home in enumerate(homes):
            user = create_user(session, f"views-{n}", "admin", home)
            who = Principal(user.id, user.name, "admin", home)
            unit = world.towns[0] if home == world.city else home
            save_view(session, who, f"shared {n}", True, {"unit": unit, "layers": ["alerts"]})
            save_view(session, who, f"private {n}", False, {"unit": home})
            put_wall(session, who, f"wall-{home}", {"unit": home, "kpis": ["caseload"]})


def ancestors_of(world, code: str) -> set[str]:
    out = set()
    while (code := world.parent.get(code)) is not None:
        out.add(code)
    return out


def make_callers(db_url: str, world) -> list[Caller]:
    east, west = world.towns[0], world.towns[1]
    callers = []
    for home, other in ((east, west), (west, east)):
        foreign = [other, sorted(subtree_of(world, other))[-1]]  # the town and a deep unit
        for role in ROLES:
            callers.append(
                Caller(
                    f"{role}@{home}",
                    role,
                    home,
                    token_for(db_url, role, home),
                    subtree_of(world, home),
                    ancestors_of(world, home),
                    foreign,
                )
            )
    village = world.villages[0]  # a village worker of 东镇's first village: its sibling
    sibling = world.villages[1]  # village is as foreign as the other town
    callers.append(
        Caller(
            f"village_worker@{village}",
            "village_worker",
            village,
            token_for(db_url, "village_worker", village),
            subtree_of(world, village),
            ancestors_of(world, village),
            [sibling, west],
        )
    )
    callers.append(
        Caller(
            "admin@city",
            "admin",
            world.city,
            token_for(db_url, "admin", world.city),
            subtree_of(world, world.city),
            set(),
        )
    )
    return callers


def scalar_value(name: str, schema: dict, today: dt.date):
    """A plausible value for a parameter the walk does not vary."""
    schema = schema.get("anyOf", [schema])[0] if "anyOf" in schema else schema
    if "enum" in schema:
        return schema["enum"][0]
    lowered = name.lower()
    if lowered == "metric":
        return "caseload"
    if lowered in ("start", "from", "since") or schema.get("format") == "date":
        return (today - dt.timedelta(days=60)).isoformat() if lowered != "end" else None
    if lowered in ("end", "until", "to"):
        return today.isoformat()
    if schema.get("type") == "integer":
        return max(schema.get("minimum", 1), 1)
    if schema.get("type") == "boolean":
        return "false"
    return None


def variants(operation: dict, caller: Caller, ids, today) -> list[tuple[dict, bool]]:
    """(parameters, names_something_foreign_in_the_path) for one caller and operation."""
    levels = ["city", "town", "village", "grid"]
    own_children = sorted(caller.subtree - {caller.home})
    own = [caller.home, *own_children[:1]]
    own_ids = {k: [i for i, c in by_id.items() if caller.home in c][:1] for k, by_id in ids.items()}
    foreign_ids = {
        k: [i for i, c in by_id.items() if caller.home not in c][:2] if caller.foreign else []
        for k, by_id in ids.items()
    }
    base: dict = {}
    choices: list[tuple[str, str, list, list]] = []  # (name, where, own values, foreign)
    for param in operation.get("parameters", []):
        name, where = param["name"], param["in"]
        schema = param.get("schema", {})
        kind = (schema.get("anyOf") or [schema])[0].get("type")
        lowered = name.lower()
        named = named_kind(operation, lowered) if where == "path" else None
        if named is not None:  # a saved view's slug, a wall's or a layer's name
            own_values = [i for i, c in ids[named].items() if caller.home in c][:2]
            foreign = [i for i, c in ids[named].items() if caller.home not in c][:2]
            choices.append((name, where, own_values, foreign))
        elif where == "path" and kind == "integer":
            k = next((k for k in ids if k in lowered), None)
            own_values, foreign = (own_ids[k], foreign_ids[k]) if k else ([1], [])
            choices.append((name, where, own_values, foreign))
        elif "enum" in (schema.get("anyOf") or [schema])[0]:  # every format, every split
            choices.append((name, where, list((schema.get("anyOf") or [schema])[0]["enum"]), []))
        elif any(w in lowered for w in LEVEL_WORDS) and "parent" not in lowered:
            choices.append((name, where, levels, []))
        elif any(w in lowered for w in UNIT_WORDS):
            choices.append((name, where, own, caller.foreign))
        elif where == "path" or param.get("required"):
            value = scalar_value(name, schema, today)
            if value is not None:
                base[name] = value
        else:
            value = scalar_value(name, schema, today)
            if value is not None and name.lower() in ("metric", "start", "end"):
                base[name] = value
    out = []
    first = {name: own_values[0] for name, where, own_values, _ in choices if own_values}
    if any(where == "path" for name, where, own_values, _ in choices if not own_values):
        first = None  # a path parameter with no value for this caller
    if first is not None:
        out.append(({**base, **first}, False))
        for name, where, own_values, foreign in choices:
            for value in [*own_values[1:], *foreign]:
                out.append(({**base, **first, name: value}, where == "path" and value in foreign))
    return out


def named_kind(operation: dict, lowered: str) -> str | None:
    """Which kind of named thing a path parameter names: view (slug), wall or layer."""
    if lowered == "slug":
        return "view"
    if lowered == "name":
        op = operation.get("operationId", "")
        return "wall" if "wall" in op else "layer" if "layer" in op else None
    return None


def call(client: TestClient, path: str, params: dict):
    url, query = path, {}
    for name, value in params.items():
        if "{" + name + "}" in url:
            url = url.replace("{" + name + "}", str(value))
        else:
            query[name] = value
    return url, client.get(url, params=query)


@pytest.fixture
def walked_world(client, db_url, world):
    world.url = db_url
    seed_cases_and_alerts(client, world)
    seed_risk_items(client, world)
    seed_views_and_walls(db_url, world)
    return world


def test_no_route_shows_anything_outside_the_callers_subtree(app, db_url, walked_world) -> None:
    world = walked_world
    today = dt.datetime.now(dt.UTC).date()
    everyone = {world.city, *world.towns, *world.villages, *world.grids}
    ids = ids_by_kind(world)
    operations = [
        (path, op)
        for path, item in app.openapi()["paths"].items()
        for method, op in item.items()
        if method == "get"
    ]
    walked = {path for path, _ in operations}
    musts = ("/ogc/collections/{level}/items/{code}", "/api/v1/cases", "/api/v1/audit",
             "/api/v1/risk-items/{risk_item_id}")  # fmt: skip
    for must in musts:
        assert must in walked
    problems, calls = [], 0
    for caller in make_callers(db_url, world):
        shown_own, refused_foreign = 0, 0
        headers = {"Authorization": f"Bearer {caller.token}"}
        with TestClient(app, headers=headers, raise_server_exceptions=False) as client:
            for path, op in operations:
                for params, foreign_path in variants(op, caller, ids, today):
                    url, response = call(client, path, params)
                    calls += 1
                    where = f"{caller.label} GET {url} {params}"
                    if response.status_code >= 500:
                        problems.append(f"{where}: {response.status_code} {response.text[:200]}")
                        continue
                    if foreign_path and response.status_code == 404:
                        refused_foreign += 1
                    if not 200 <= response.status_code < 300:
                        continue
                    if foreign_path:
                        problems.append(f"{where}: {response.status_code} for a foreign path")
                    if caller.role == "display" and "/cases" in path:
                        problems.append(f"{where}: a wall display is shown cases")
                    seen = {m.decode() for m in CODE_RE.findall(response.content)}
                    leaked = sorted((seen & everyone) - caller.subtree)
                    if leaked:
                        problems.append(f"{where}: shows {leaked}")
                    shown_own += bool(seen & caller.subtree)
        if caller.role not in ("intake", "assessor"):  # a reader: the walk saw its data
            assert shown_own >= 10, f"{caller.label}: only {shown_own} answers named its units"
            if caller.foreign:
                assert refused_foreign >= 5, f"{caller.label}: {refused_foreign} foreign 404s"
    assert calls > 100
    assert not problems, f"{len(problems)} leaks:\n" + "\n".join(islice(problems, 40))


def test_writers_cannot_touch_cases_outside_their_subtree(app, db_url, walked_world) -> None:
    world = walked_world
    east, west = world.towns[0], world.towns[1]
    west_case = next(i for i, codes in ids_by_kind(world)["case"].items() if west in codes)
    west_grid = next(g for g in world.grids if g.startswith(west))
    west_lon, west_lat = leaf_points(world)[west_grid]
    everyone = {world.city, *world.towns, *world.villages, *world.grids}
    east_side = subtree_of(world, east)
    for role in ("admin", "intake"):
        token = token_for(db_url, role, east)
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
            moved = c.patch(f"/api/v1/cases/{west_case}", json={"step": "scheduled"})
            assert moved.status_code == 404, moved.text
            item = {
                "source": "scope-test",
                "external_id": "west-by-east",
                "category": "neighbour",
                "channel": "hotline_12345",
                "reported_at": dt.datetime.now(dt.UTC).isoformat(),
            }
            for where in ({"unit_code": west_grid}, {"lon": west_lon, "lat": west_lat}):
                posted = c.post("/api/v1/cases", json={**item, **where})
                assert posted.status_code in (200, 404, 422)
                if posted.status_code == 200:
                    assert posted.json()["created"] == 0
                # the refusal names nothing of the other town but what the caller sent
                seen = {m.decode() for m in CODE_RE.findall(posted.content)}
                assert (seen & everyone) - east_side <= {where.get("unit_code")}, posted.text
    # the case desk: no role of 东镇 acts on, or reads, a case of 西镇 (404; 403 for a role
    # that never acts) — every action, with its case's real version
    for role in ROLES:
        token = token_for(db_url, role, east)
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
            seen = c.get(f"/api/v1/cases/{west_case}")
            assert seen.status_code in (403, 404), (role, seen.text)
            for action in ("accept", "escalate", "dispatch", "note", "visit"):
                body = {"action": action, "version": 1, "reason": "x", "to_unit": west_grid}
                acted = c.post(f"/api/v1/cases/{west_case}/actions", json=body)
                want = 404 if role in ("admin", "official", "village_worker", "department") else 403
                if role == "village_worker" and action == "dispatch":
                    want = 403  # the role never dispatches
                if role == "department" and action in ("escalate", "dispatch"):
                    want = 403
                assert acted.status_code == want, (role, action, acted.text)
    with session_scope(db_url) as session:
        case = session.get(Case, west_case)
        assert case.status == "received" and case.scheduled_at is None
        assert case.version == 1
        assert not session.scalar(select(Case.id).where(Case.external_id == "west-by-east"))


# ---------------------------------------------------------------- the dashboard's routes


def session_cookie(db_url: str, settings, token: str) -> tuple[str, str]:
    """A dashboard session cookie for the user of ``token`` (what a login would set), and
    the user's name."""
    from api.db.models import User
    from api.services.auth import principal_for_token
    from api.services.sessions import open_session

    with session_scope(db_url) as session:
        principal = principal_for_token(session, token)
        return open_session(session, settings, session.get(User, principal.user_id)), principal.name


def components(tree) -> dict[str, dict]:
    """Every component with an id in a rendered Dash layout: id → its props."""
    found: dict[str, dict] = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            props = node.get("props")
            if isinstance(props, dict) and isinstance(props.get("id"), str):
                found[props["id"]] = props
            stack.extend(node.values())
    return found


def dashboard_requests(flask_app, deps, caller: Caller):
    """(method, url, json body, names_something_foreign) for the Flask rules that take
    arguments and for every registered page (the page-routing callback)."""
    import dash

    levels = ["city", "town", "village", "grid"]
    own = [caller.home, sorted(caller.subtree - {caller.home})[0]] if caller.subtree else []
    skip = ("static", "assets", "_dash-component-suites")
    for rule in flask_app.url_map.iter_rules():
        if not rule.arguments or rule.rule.startswith(tuple(f"/{s}" for s in skip)):
            continue
        if rule.arguments == {"path"}:
            continue  # Dash's catch-all page route: the same index for every path
        for name in rule.arguments:
            values = levels if "level" in name else [*own, *caller.foreign]
            for value in values:
                args = {a: (levels[1] if "level" in a else caller.home) for a in rule.arguments}
                args[name] = value
                url = "/dashboard" + rule.rule
                for a, v in args.items():
                    url = re.sub(rf"<(\w+:)?{a}>", v, url)
                yield "GET", url, None, value in caller.foreign
    router = next(d for d in deps if any(i["property"] == "pathname" for i in d["inputs"]))
    for page in dash.page_registry.values():
        template = page.get("path_template") or page["path"]
        names = re.findall(r"<(\w+)>", template)
        fills = [{}] if not names else [{n: v for n in names} for v in [*own, *caller.foreign]]
        for fill in fills:
            path = template
            for n, v in fill.items():
                path = path.replace(f"<{n}>", v)
            foreign_path = any(v in caller.foreign for v in fill.values())
            searches = [""] + [f"?units={v}&unit={v}&code={v}" for v in caller.foreign]
            for search in searches:
                values = {
                    f"{i['id']}.{i['property']}": ("/dashboard" + path).rstrip("/") or "/"
                    if i["property"] == "pathname"
                    else search
                    for i in router["inputs"]
                }
                body = callback_body(router, values)
                yield "POST", "/dashboard/_dash-update-component", body, foreign_path or search


def test_no_dashboard_route_shows_anything_outside_the_callers_subtree(
    db_url, walked_world, tmp_path
) -> None:
    """The dashboard with each caller's session cookie: its Flask routes, every page (own and
    foreign codes in the path and the query), then every server-side callback fed with the
    props the page rendered, and with that state forged to name the other town."""
    from api.app import create_app
    from api.services.sessions import COOKIE_NAME
    from api.settings import Settings

    world = walked_world
    everyone = {world.city, *world.towns, *world.villages, *world.grids}
    settings = Settings(database_url=db_url, cache_dir=tmp_path / "cache")
    app = create_app(settings)  # with the dashboard mounted
    flask_app = next(r for r in app.routes if getattr(r, "path", "") == "/dashboard").app.app
    problems, callbacks_fired = [], 0
    for caller in make_callers(db_url, world):
        cookie, name = session_cookie(db_url, settings, caller.token)
        with TestClient(app, raise_server_exceptions=False) as client:
            client.cookies.set(COOKIE_NAME, cookie)
            deps = client.get("/dashboard/_dash-dependencies").json()
            server_side = [
                d
                for d in deps
                if not d.get("clientside_function")
                and not any(i["property"] == "pathname" for i in d["inputs"])
            ]
            shown_own, named_self = 0, False

            def check(
                where: str, response, foreign: bool, caller: Caller = caller, name: str = name
            ) -> None:
                nonlocal shown_own, named_self
                if response.status_code >= 500:
                    problems.append(f"{where}: {response.status_code} {response.text[:200]}")
                    return
                if response.status_code >= 300:
                    return
                if foreign and "/geometry/" in where:
                    problems.append(f"{where}: {response.status_code} for a foreign path")
                seen = {m.decode() for m in CODE_RE.findall(response.content)}
                if leaked := sorted((seen & everyone) - caller.subtree):
                    problems.append(f"{where}: shows {leaked}")
                shown_own += bool(seen & caller.subtree)
                named_self |= f"{name} · " in response.text  # the header's "name · role"

            for method, url, body, foreign in dashboard_requests(flask_app, deps, caller):
                response = client.request(method, url, json=body)
                where = f"{caller.label} {method} {url} {body and body['inputs']}"
                check(where, response, foreign)
                if body is None or response.status_code != 200 or not server_side:
                    continue
                rendered = components(response.json())
                for dep in server_side:
                    wanted = [*dep["inputs"], *dep["state"]]
                    if '["' in dep["output"] or not all(i["id"] in rendered for i in wanted):
                        continue  # a wildcard output (ALL, MATCH) or inputs not on this page
                    values = {
                        f"{i['id']}.{i['property']}": rendered[i["id"]].get(i["property"])
                        for i in wanted
                    }
                    values = {k: (1 if v is None and "n_" in k else v) for k, v in values.items()}
                    honest = callback_body(dep, values)
                    forged = orjson.loads(
                        orjson.dumps(honest).replace(
                            caller.home.encode(), (caller.foreign or [caller.home])[0].encode()
                        )
                    )
                    for kind, payload in (("fed", honest), ("forged", forged)):
                        callbacks_fired += 1
                        answer = client.post("/dashboard/_dash-update-component", json=payload)
                        check(f"{caller.label} callback {dep['output']} {kind}", answer, False)
        if caller.role not in ("intake", "assessor"):
            assert shown_own >= 3, (
                f"{caller.label}: only {shown_own} dashboard answers named its units"
            )
            assert named_self, f"{caller.label}: no page said who is logged in"
    assert callbacks_fired > 0  # the wall's callback at least
    assert not problems, f"{len(problems)} leaks:\n" + "\n".join(islice(problems, 40))


def test_special_population_figures_walk_in_scope_and_need_the_permission(
    app, db_url, world
) -> None:
    """Every figure route that takes a metric, with each special-population metric for one
    month: a town official with the permission reads its own town (nothing of others) and
    gets 404 for another's; without the permission, 403 everywhere."""
    from api.db.session import session_scope
    from api.engine import protected_metric_ids
    from seed.populations import seed_populations
    from tests.populations.conftest import token_with

    with session_scope(db_url) as s:
        seed_populations(s, dt.date(2026, 10, 31), 1, 1)
    east, west = world.towns[0], world.towns[1]
    everyone = {world.city, *world.towns, *world.villages, *world.grids}
    operations = {
        path: {p["name"] for p in item["get"].get("parameters", [])}
        for path, item in app.openapi()["paths"].items()
        if "get" in item
    }
    routes = [path for path, names in operations.items() if "metric" in names]
    assert "/api/v1/choropleth" in routes and len(routes) >= 4
    allowed = token_with(db_url, "official", east, permitted=True)
    refused = token_with(db_url, "official", east, permitted=False)
    problems = []
    for metric in sorted(protected_metric_ids()):
        for path in routes:
            params = {"metric": metric, "period": "2026-10"}
            for token, code in ((allowed, east), (allowed, west), (refused, east)):
                url = path.replace("{code}", code)
                where = "unit" if "unit" in operations[path] else "parent"  # the pivot: unit
                query = {**params, where: code} if "{code}" not in path else params
                with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
                    r = c.get(url, params=query)
                if token == refused:
                    expected = {403}
                elif code == west:
                    expected = {404}
                else:
                    expected = {200, 400}  # 400: a breakdown these metrics do not have
                if r.status_code not in expected:
                    problems.append(f"{url} {query}: {r.status_code} {r.text[:120]}")
                seen = {m.decode() for m in CODE_RE.findall(r.content)}
                if r.status_code == 200 and (seen & everyone) - subtree_of(world, east):
                    problems.append(
                        f"{url} {query}: shows {sorted(seen - subtree_of(world, east))}"
                    )
    assert not problems, "\n".join(problems[:20])
