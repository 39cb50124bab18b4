"""Replacing a method on one library object without making the object a reference cycle.

The fixes around pypsrp and requests put functions on single objects (a requests session's
`prepare_request`, an adapter's `cert_verify`, a transport's `send`). A function stored on an object that
holds that object (a bound method of it, in a closure) makes a cycle: the object, and everything it
holds (a node's session, adapters, pools and connection), is then freed only by the garbage collector,
not by reference counting when the last user lets it go. So such a function holds its object weakly
(`weakref.ref`) and calls the method it replaces as a plain function (`unbound`).
"""

from __future__ import annotations

import weakref
from typing import Any


def unbound(owner: Any, name: str) -> Any:
    """`owner.name` as a function taking the owner first: the class's, or one already set on the
    instance (which then stays in charge; what it holds is its own business)."""
    own = getattr(owner, "__dict__", {}).get(name)  # objects with __slots__ have no instance functions
    if own is None:
        return getattr(type(owner), name)
    return lambda _owner, *args, **kwargs: own(*args, **kwargs)


def alive(reference: weakref.ref[Any]) -> Any:
    """The object a replacing function belongs to; only that object calls the function, so it exists."""
    owner = reference()
    if owner is None:  # pragma: no cover - only the owner itself calls these functions
        raise ReferenceError("the object this function was set on is gone")
    return owner
