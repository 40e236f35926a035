"""How a message reaches a local object, and the pipelined accessors on values.

Dispatch rule: a callable object is called with the message's arguments (the
conformance objects are plain callables). An object that is not callable is a
method table: the first argument must be a Symbol naming a public method, with
``-`` mapped to ``_`` (``'withdraw-gift`` calls ``withdraw_gift``), and the rest
are the method's arguments.
"""

from __future__ import annotations

from typing import Any

from charter.codec.syrup import Record, Symbol
from charter.ocapn.captp.messages import SelectKind


class DispatchError(TypeError):
    """The target cannot receive this message."""


def invoke_local(obj: Any, args: list[Any] | tuple[Any, ...]) -> Any:
    """Deliver ``args`` to ``obj`` now; returns whatever the object returns."""
    if callable(obj):
        return obj(*args)
    if args and type(args[0]) is Symbol:
        name = args[0].name.replace("-", "_")
        if not name.startswith("_"):
            method = getattr(obj, name, None)
            if callable(method):
                return method(*args[1:])
        raise DispatchError(f"{type(obj).__name__} has no method {args[0].name!r}")
    raise DispatchError(f"{type(obj).__name__} is not callable and got no method name")


def select_value(kind: SelectKind, value: Any, key: str | int) -> Any:
    """The field (``get``), element (``index``) or payload (``untag``) of a settled value."""
    if kind is SelectKind.GET:
        if isinstance(value, dict) and isinstance(key, str) and key in value:
            return value[key]
        raise DispatchError(f"no field {key!r} in the value")
    if kind is SelectKind.INDEX:
        if isinstance(value, list | tuple) and type(key) is int and 0 <= key < len(value):
            return value[key]
        raise DispatchError(f"no element {key!r} in the value")
    if type(value) is Record and len(value.fields) == 1:
        label = value.label
        name = label.name if type(label) is Symbol else label
        if name == key:
            return value.fields[0]
    raise DispatchError(f"value is not tagged {key!r}")
