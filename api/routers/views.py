"""Saved views (GET|POST /api/v1/views), composed walls (GET|PUT /api/v1/walls/{name}),
map layers (GET /api/v1/layers/{name}) and the short link /v/<slug>."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import Admin, Reader, SessionDep
from api.errors import ApiError
from api.schemas.views import NewView, WallBody
from api.services import case_points as _case_points  # noqa: F401 (registers its layer)
from api.services import saved_views as views
from api.services.layers import LAYERS, layer_points
from api.services.scope import check_scope

router = APIRouter(tags=["views"])
links = APIRouter(include_in_schema=False)

Slug = Annotated[str, Path(max_length=16)]
WallName = Annotated[str, Path(max_length=64)]


@router.get("/views")
def list_views(session: SessionDep, user: Reader) -> list[dict]:
    """The saved views you may open (yours, and those shared in your jurisdiction), each
    shown in your scope."""
    return views.list_views(session, user)


@router.post("/views", status_code=201)
def save_view(session: SessionDep, user: Reader, body: NewView) -> dict:
    """Save a view (``shared``: everyone in your jurisdiction may open it)."""
    if user.role == "display":
        raise ApiError(403, "a wall display shows views; it does not save them")
    row = views.save_view(
        session, user, body.name, body.shared, body.spec.model_dump(exclude_none=True)
    )
    out = views.describe_view(session, user, row)
    session.commit()
    return out


@router.get("/views/{slug}")
def get_view(session: SessionDep, user: Reader, slug: Slug) -> dict:
    """One saved view, shown in your scope (its unit, or your home unit when it lies
    outside your jurisdiction)."""
    return views.describe_view(session, user, views.get_view(session, user, slug))


@router.delete("/views/{slug}", status_code=204)
def delete_view(session: SessionDep, user: Reader, slug: Slug) -> Response:
    """Delete one of your own views."""
    views.delete_view(session, user, slug)
    session.commit()
    return Response(status_code=204)


@router.get("/walls")
def list_walls(session: SessionDep, user: Reader) -> list[dict]:
    """The walls that stand at a unit in your jurisdiction."""
    return views.list_walls(session, user)


@router.get("/walls/{name}")
def get_wall(session: SessionDep, user: Reader, name: WallName) -> dict:
    """A composed wall, its views shown in your scope."""
    return views.describe_wall(session, user, name)


@router.put("/walls/{name}")
def put_wall(session: SessionDep, user: Admin, name: WallName, body: WallBody) -> dict:
    """Create or replace a wall (admins; at a unit in your jurisdiction). A running wall
    shows the change at its next refresh."""
    views.put_wall(session, user, name, body.model_dump())
    session.commit()
    return views.describe_wall(session, user, name)


@router.get("/layers")
def list_layers(user: Reader) -> list[dict]:
    """The map layers (name, labels, legend)."""
    return [layer.describe() for layer in LAYERS.values()]


@router.get("/layers/{name}")
def layer(
    request: Request,
    session: SessionDep,
    user: Reader,
    name: Annotated[str, Path(max_length=32)],
    unit: Annotated[str | None, Query(max_length=32)] = None,
) -> dict:
    """The layer's points under ``unit`` (default: your home unit) as GeoJSON."""
    if name not in LAYERS:
        raise ApiError(404, f"no layer {name!r}; layers: {', '.join(LAYERS)}")
    root = check_scope(session, user, unit or user.unit_code)
    cache = request.app.state.settings.cache_dir
    return layer_points(session, user, name, root.code, cache)


@links.get("/v/{slug}")
def short_link(request: Request, session: SessionDep, slug: Slug) -> RedirectResponse:
    """A saved view's short link: into the dashboard, in the viewer's scope (log in
    first when not signed in)."""
    from api.deps import get_principal

    try:
        user = get_principal(request, session)
    except ApiError:
        return RedirectResponse("/dashboard/login", status_code=303)
    found = views.describe_view(session, user, views.get_view(session, user, slug))
    return RedirectResponse(found["dashboard"], status_code=303)
