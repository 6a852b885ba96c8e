"""The base of mlpipe's stand-ins for v1 classes: an attribute of the v1 class that mlpipe does
not have yet is reported as "not supported yet" at the user's line, never as a bare
AttributeError deep in a traceback. It still is an AttributeError, so `hasattr`, `getattr(obj,
name, default)` and v1 code catching AttributeError behave as before."""

from __future__ import annotations

import uuid

from ..errors import UserError
from ._session import current


class NotSupportedYet(UserError, AttributeError):
    def __init__(self, message: str, origin=None):
        UserError.__init__(self, message, origin)

    def __str__(self) -> str:
        return self.message


def _missing(owner: str, name: str) -> NotSupportedYet:
    return NotSupportedYet(
        f"{owner}.{name} is not supported yet by mlpipe (it serves the parts of the Azure ML v1 "
        "SDK that build and run pipelines): remove this use, or do it in a step script",
        current().origin(),
    )


class _V1Meta(type):
    def __getattr__(cls, name):  # only called for names the class does not have
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise _missing(cls.__name__, name)


class V1Object(metaclass=_V1Meta):
    __slots__ = ()

    def __getattr__(self, name):  # only called for names the object does not have
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise _missing(type(self).__name__, name)


# Stable ids for objects v1 gives GUIDs: the same file gives the same ids on every capture.
def _uid(kind: str, *parts) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mlpipe:" + kind + ":" + ":".join(map(str, parts))))
