"""What Dash's renderer posts for a callback, to ask the dashboard's server as a browser
would."""

from __future__ import annotations

import json


def _id(text: str) -> str | dict:
    """A component id as Dash posts it: a dict for a pattern-matching id (written as JSON
    in ``_dash-dependencies``), else the string."""
    return json.loads(text) if text.startswith("{") else text


def callback_body(dep: dict, values: dict[str, object]) -> dict:
    """The body Dash's renderer posts to ``_dash-update-component`` for ``dep`` (an entry
    of ``_dash-dependencies``), each input and state fed from ``values`` (``id.property``)."""
    text = dep["output"]
    parts = text[2:-2].split("...") if text.startswith("..") else [text]
    outputs = [{"id": _id(i), "property": prop} for i, prop in (p.rsplit(".", 1) for p in parts)]

    def fed(items: list[dict]) -> list[dict]:
        return [
            {**i, "id": _id(i["id"]), "value": values.get(f"{i['id']}.{i['property']}")}
            for i in items
        ]

    return {
        "output": text,
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": fed(dep["inputs"]),
        "state": fed(dep["state"]),
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in dep["inputs"]],
    }
