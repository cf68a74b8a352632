"""Saved views and composed walls over the API: saved for the user or shared within a
jurisdiction, each viewer shown only their own scope; the short link; walls composed by an
admin, read in scope, their version bumped on every change; layers in scope."""

from __future__ import annotations


def test_saved_views_private_shared_and_clamped(views_app, town) -> None:
    spec = {"unit": town.east, "level": "village", "metric": "resolution_rate",
            "period": "quarter", "compare": "prev", "classes": "natural_breaks",
            "layers": ["facilities", "alerts"]}  # fmt: skip
    with town.client(views_app, "admin@city") as admin:
        body = {"name": "东镇化解", "shared": True, "spec": spec}
        shared = admin.post("/api/v1/views", json=body)
        assert shared.status_code == 201, shared.text
        private = admin.post("/api/v1/views", json={"name": "mine", "spec": spec})
        slug, mine = shared.json()["slug"], private.json()["slug"]
        assert shared.json()["spec"]["unit"] == town.east
        link = admin.get(f"/v/{slug}", follow_redirects=False)
        assert link.status_code == 303
        assert link.headers["location"].startswith(f"/dashboard/unit/{town.east}?")
        assert "show=village" in link.headers["location"]
        assert "layers=facilities%2Calerts" in link.headers["location"]
        for bad, words in (({"metric": "nope"}, "unknown metric"),
                           ({"layers": ["nope"]}, "unknown layers"),
                           ({"level": "galaxy"}, "unknown level")):  # fmt: skip
            r = admin.post("/api/v1/views", json={"name": "x", "spec": bad})
            assert r.status_code == 400 and words in r.json()["message"], r.text
    with town.client(views_app, "official@east") as east:
        seen = east.get(f"/api/v1/views/{slug}").json()
        assert seen["spec"]["unit"] == town.east and not seen["spec"]["clamped"]
        assert east.get(f"/api/v1/views/{mine}").status_code == 404  # private
        assert slug in {v["slug"] for v in east.get("/api/v1/views").json()}
    with town.client(views_app, "official@west") as west:
        seen = west.get(f"/api/v1/views/{slug}")
        assert seen.status_code == 200
        assert seen.json()["spec"]["unit"] == town.west and seen.json()["spec"]["clamped"]
        assert town.east not in seen.text  # the other town is never named
        link = west.get(f"/v/{slug}", follow_redirects=False)
        assert link.headers["location"].startswith(f"/dashboard/unit/{town.west}?")
        own = west.post("/api/v1/views", json={"name": "西镇", "shared": True, "spec": {}})
        west_slug = own.json()["slug"]
    with town.client(views_app, "official@east") as east:  # shared in 西镇 only
        assert east.get(f"/api/v1/views/{west_slug}").status_code == 404
    with town.client(views_app, "display@west") as display:
        assert display.post("/api/v1/views", json={"name": "d"}).status_code == 403


def test_walls_composed_read_in_scope_and_versioned(views_app, town) -> None:
    with town.client(views_app, "admin@east") as admin:
        new = {"name": "v", "shared": True, "spec": {"metric": "caseload"}}
        view = admin.post("/api/v1/views", json=new).json()
        body = {
            "title": "东镇大屏",
            "unit": town.east,
            "views": [{"view": view["slug"], "seconds": 20},
                      {"spec": {"unit": town.east, "metric": "on_time_rate"}, "seconds": 15}],
            "kpis": ["caseload", "resolution_rate"],
            "thresholds": {"resolution_rate": {"below": 0.99}},
            "ticker": True,
        }  # fmt: skip
        r = admin.put("/api/v1/walls/east", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 1 and len(r.json()["views"]) == 2
        r = admin.put("/api/v1/walls/east", json=body | {"kpis": ["caseload"]})
        assert r.json()["version"] == 2 and r.json()["kpis"] == ["caseload"]
        assert admin.put("/api/v1/walls/Bad Name", json=body).status_code in (400, 404)
        outside = admin.put("/api/v1/walls/west", json=body | {"unit": town.west, "views": []})
        assert outside.status_code == 404
        bad = admin.put("/api/v1/walls/east", json=body | {"kpis": ["nope"]})
        assert bad.status_code == 400
    with town.client(views_app, "official@east") as official:
        assert official.get("/api/v1/walls/east").json()["title"] == "东镇大屏"
        assert official.put("/api/v1/walls/east", json=body).status_code == 403
    with town.client(views_app, "display@west") as west:
        assert west.get("/api/v1/walls/east").status_code == 404
        assert "east" not in {w["name"] for w in west.get("/api/v1/walls").json()}
    with town.client(views_app, "admin@city") as city:
        assert "east" in {w["name"] for w in city.get("/api/v1/walls").json()}


def test_layers_in_scope(views_app, town) -> None:
    with town.client(views_app, "official@east") as c:
        names = {layer["name"] for layer in c.get("/api/v1/layers").json()}
        assert {"facilities", "alerts"} <= names
        r = c.get("/api/v1/layers/facilities", params={"unit": town.east})
        assert r.status_code == 200
        feats = r.json()["features"]
        assert feats and all(f["properties"]["unit_code"].startswith(town.east) for f in feats)
        assert {f["properties"]["status"] for f in feats} <= {
            "built",
            "under_construction",
            "required",
        }
        assert c.get("/api/v1/layers/facilities", params={"unit": town.west}).status_code == 404
        assert c.get("/api/v1/layers/nope").status_code == 404
