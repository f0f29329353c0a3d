"""Events to and from JSON-ready dicts (for storage and the API), losslessly.

``event_to_dict`` gives ``{"kind": ..., <fields>}`` with times as ISO 8601
strings; ``event_from_dict`` rebuilds the event and runs its validation again,
so a stored row that no longer makes sense is refused on load.

Examples
--------
>>> from datetime import datetime, UTC
>>> from ketacare.core.sessions.events import Vitals
>>> v = Vitals(at=datetime(2025, 3, 1, 9, 0, tzinfo=UTC), by="nurse1", seq=3, spo2_pct=97)
>>> d = event_to_dict(v)
>>> d["kind"], d["at"], d["spo2_pct"], d["hr_per_min"]
('vitals', '2025-03-01T09:00:00+00:00', 97, None)
>>> event_from_dict(d) == v
True
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from ketacare.core.errors import InvalidInput, UnknownItem
from ketacare.core.sessions import events as _events
from ketacare.core.sessions import rules as _rules
from ketacare.core.sessions import setup as _setup
from ketacare.core.sessions.events import EVENT_TYPES, Event


def _to(value: Any) -> Any:
    if isinstance(value, Event):
        return event_to_dict(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_to(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to(v) for k, v in value.items()}
    return value


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as a JSON-ready dict with its ``kind``."""
    out: dict[str, Any] = {"kind": event.kind}
    for f in dataclasses.fields(event):
        out[f.name] = _to(getattr(event, f.name))
    return out


@cache
def _hints(cls: type) -> dict[str, Any]:
    namespace = {**vars(_rules), **vars(_setup), **vars(_events)}
    return typing.get_type_hints(cls, globalns=namespace)


def _from(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _from(inner[0], value, where)
    if origin is typing.Literal:
        if value not in args:
            raise InvalidInput(f"{where}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise InvalidInput(f"{where}: must be a list")
        return tuple(_from(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict, typing.Mapping):
        if not isinstance(value, Mapping):
            raise InvalidInput(f"{where}: must be an object")
        return dict(value)
    if isinstance(tp, type) and issubclass(tp, Event):
        return event_from_dict(value)
    if tp is datetime:
        if not isinstance(value, str):
            raise InvalidInput(f"{where}: must be an ISO 8601 time")
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidInput(f"{where}: {value!r} is not an ISO 8601 time") from exc
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return value
    return value


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{where}: must be an object")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(data) - names - {"kind"})
    if extra:
        raise InvalidInput(f"{where}: unknown field {extra[0]!r}")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init
        and f.name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise InvalidInput(f"{where}: {', '.join(missing)} is required")
    kwargs = {
        name: _from(hints[name], data[name], f"{where}.{name}") for name in names if name in data
    }
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InvalidInput(f"{where}: {exc}") from exc


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild (and re-validate) an event from :func:`event_to_dict` output.

    Raises
    ------
    UnknownItem
        An unknown ``kind``.
    InvalidInput
        A missing or unknown field, or values the event refuses.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("an event must be an object with a kind")
    kind = data.get("kind")
    cls = EVENT_TYPES.get(str(kind))
    if cls is None:
        raise UnknownItem("event kind", kind, list(EVENT_TYPES))
    event = _build(cls, data, str(kind))
    assert isinstance(event, Event)
    return event
