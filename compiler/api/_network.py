"""Capture never reaches the network.

While a pipeline file runs, every way out is refused and reported as a warning at the user's line:
socket connections and DNS lookups, `urllib.request` and `requests` (the installed one, or a small
stand-in when it is not installed, so that `import requests` in a notebook still works). The
refusal is an ordinary connection error, so the user's code sees what it would see offline.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import socket
import sys
import types
from urllib.parse import urlsplit

HINT = "mlpipe never contacts Azure or any other service while capturing"


class NetworkRefused(ConnectionRefusedError):
    """The error capture raises instead of connecting."""


def _safe_url(url) -> str:
    """The URL without credentials or query (SAS tokens live there)."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else str(url).split("?")[0]


def caused_by_refusal(sess, exc: BaseException) -> bool:
    """Whether `exc` (or anything in its chain) is one of the refusals of this capture."""
    seen = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, NetworkRefused) or any(e is r for r in sess.network_refusals):
            return True
        todo.extend([e.__cause__, e.__context__])
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    return False


@contextlib.contextmanager
def no_network(sess):
    patches: list[tuple[object, str, object]] = []

    def patch(owner, name, value):
        patches.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def refuse(what: str, error: BaseException | None = None) -> BaseException:
        sess.warn(f"network access refused during capture: {what} ({HINT})")
        error = error if error is not None else NetworkRefused(f"mlpipe: {what} refused ({HINT})")
        sess.network_refusals.append(error)
        return error

    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self, address):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect(self, address)
        raise refuse(f"connection to {_address(address)}")

    def connect_ex(self, address):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect_ex(self, address)
        raise refuse(f"connection to {_address(address)}")

    def create_connection(address, *args, **kwargs):
        raise refuse(f"connection to {_address(address)}")

    def lookup(host, *args, **kwargs):
        error = socket.gaierror(socket.EAI_NONAME, f"mlpipe: DNS lookup refused ({HINT})")
        raise refuse(f"DNS lookup of {host}", error)

    patch(socket.socket, "connect", connect)
    patch(socket.socket, "connect_ex", connect_ex)
    patch(socket, "create_connection", create_connection)
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        patch(socket, name, lookup)

    def guard_urllib(request) -> None:
        def do_open(self, http_class, req, **kwargs):
            what = f"{req.get_method()} {_safe_url(req.full_url)}"
            raise request.URLError(refuse(what))

        patch(request.AbstractHTTPHandler, "do_open", do_open)

    def guard_requests(adapters) -> None:
        exceptions = sys.modules["requests.exceptions"]

        def send(self, request, *args, **kwargs):
            what = f"{request.method} {_safe_url(request.url)}"
            error = refuse(what)
            raise exceptions.ConnectionError(error, request=request) from error

        patch(adapters.HTTPAdapter, "send", send)

    finders = _guard_http_clients(guard_urllib, guard_requests, refuse)
    try:
        yield
    finally:
        for owner, name, value in reversed(patches):
            setattr(owner, name, value)
        for finder in finders:
            sys.meta_path.remove(finder)
            for mod in [m for m in sys.modules if m == "requests" or m.startswith("requests.")]:
                if getattr(sys.modules[mod], "__mlpipe_stand_in__", False):
                    del sys.modules[mod]


def _guard_http_clients(guard_urllib, guard_requests, refuse) -> list:
    """Guard urllib.request and requests: now if imported, else when the pipeline file imports
    them (~15 ms and ~0.1 s of a compile's start-up, and most files never do; without requests
    installed, a stand-in serves it). The import finders installed, to remove afterwards."""
    finders: list = []
    if "urllib.request" in sys.modules:
        guard_urllib(sys.modules["urllib.request"])
    else:
        finders.append(_GuardOnImport("urllib.request", guard_urllib))
        sys.meta_path.insert(0, finders[-1])
    if "requests.adapters" in sys.modules:
        _guard_quietly(guard_requests, sys.modules["requests.adapters"])
    elif importlib.util.find_spec("requests") is not None:
        finders.append(_GuardOnImport("requests.adapters", guard_requests))
        sys.meta_path.insert(0, finders[-1])
    else:
        finders.append(_StandInFinder(refuse))
        sys.meta_path.append(finders[-1])
    return finders


def _address(address) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


def _guard_quietly(guard, module) -> None:
    try:
        guard(module)
    except Exception:  # noqa: BLE001 - a broken requests install: the socket guard still holds
        pass


class _GuardOnImport(importlib.abc.MetaPathFinder):
    """Runs `guard(module)` right after module `name` is first imported (during capture)."""

    def __init__(self, name: str, guard):
        self._name = name
        self._guard = guard

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self._name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module
        guard = self._guard

        def exec_module(module):  # this file's own loader object: only this module is affected
            run(module)
            _guard_quietly(guard, module)

        loader.exec_module = exec_module
        return spec


# ------------------------------------------------------------------ `requests` when not installed


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves `requests` (and `requests.exceptions`) during capture when it is not installed."""

    def __init__(self, refuse):
        self._refuse = refuse

    def find_spec(self, fullname, path=None, target=None):
        if fullname in ("requests", "requests.exceptions"):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=fullname == "requests")
        return None

    def create_module(self, spec):
        if spec.name == "requests.exceptions":
            return _exceptions_module()
        return _requests_module(self._refuse)

    def exec_module(self, module):
        return None


_EXCEPTIONS: types.ModuleType | None = None


def _exceptions_module() -> types.ModuleType:
    global _EXCEPTIONS
    if _EXCEPTIONS is None:
        mod = types.ModuleType("requests.exceptions")
        mod.__mlpipe_stand_in__ = True

        class RequestException(OSError):
            def __init__(self, *args, request=None, response=None):
                super().__init__(*args)
                self.request = request
                self.response = response

        mod.RequestException = RequestException
        for name, bases in [
            ("HTTPError", ("RequestException",)),
            ("ConnectionError", ("RequestException",)),
            ("ProxyError", ("ConnectionError",)),
            ("SSLError", ("ConnectionError",)),
            ("Timeout", ("RequestException",)),
            ("ConnectTimeout", ("ConnectionError", "Timeout")),
            ("ReadTimeout", ("Timeout",)),
            ("URLRequired", ("RequestException",)),
            ("TooManyRedirects", ("RequestException",)),
            ("InvalidURL", ("RequestException", "ValueError")),
            ("JSONDecodeError", ("RequestException", "ValueError")),
        ]:
            resolved = tuple(getattr(mod, b) if hasattr(mod, b) else ValueError for b in bases)
            setattr(mod, name, type(name, resolved, {"__module__": "requests.exceptions"}))
        _EXCEPTIONS = mod
    return _EXCEPTIONS


def _requests_module(refuse) -> types.ModuleType:
    exc = _exceptions_module()
    mod = types.ModuleType("requests")
    mod.__mlpipe_stand_in__ = True
    mod.__version__ = "0+mlpipe.capture"
    mod.__path__ = []
    mod.exceptions = exc
    for name in dir(exc):
        if not name.startswith("_"):
            setattr(mod, name, getattr(exc, name))

    def request(method, url, **kwargs):
        what = f"{str(method).upper()} {_safe_url(url)}"
        error = refuse(what)
        raise exc.ConnectionError(error) from error

    mod.request = request
    for verb in ("get", "post", "put", "patch", "delete", "head", "options"):
        mod.__dict__[verb] = (lambda v: lambda url, *a, **k: request(v, url, **k))(verb)

    class Session:
        def __init__(self):
            self.headers: dict = {}
            self.auth = None
            self.verify = True

        def request(self, method, url, **kwargs):
            return request(method, url, **kwargs)

        def mount(self, prefix, adapter):
            return None

        def close(self):
            return None

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return False

    for verb in ("get", "post", "put", "patch", "delete", "head", "options"):
        setattr(Session, verb, (lambda v: lambda self, url, *a, **k: request(v, url, **k))(verb))
    mod.Session = Session
    mod.session = Session

    class Response:
        """Never returned during capture; present for isinstance checks and annotations."""

        status_code = None

    mod.Response = Response
    mod.codes = types.SimpleNamespace(ok=200, created=201, accepted=202, not_found=404)
    return mod
