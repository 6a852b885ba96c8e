"""Pipeline parameter values: overrides coerced to the declared type, rendered for the script."""

from __future__ import annotations

import json
import math


class ParameterError(ValueError):
    """A bad parameter name or value (the CLI exits 2 on it)."""


_TRUE = {"true", "True", "TRUE", "1"}
_FALSE = {"false", "False", "FALSE", "0"}


def _coerce_scalar(name: str, ptype: str, value):
    if ptype == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip() in _TRUE:
            return True
        if isinstance(value, str) and value.strip() in _FALSE:
            return False
        raise ParameterError(
            f"parameter {name!r} is a bool: expected true/false/True/False/1/0, got {value!r}"
        )
    if ptype == "int":
        if isinstance(value, bool):
            raise ParameterError(f"parameter {name!r} is an int, got the bool {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ParameterError(f"parameter {name!r} is an int, got {value!r}")
    if ptype == "float":
        if isinstance(value, bool):
            raise ParameterError(f"parameter {name!r} is a float, got the bool {value!r}")
        if isinstance(value, int | float):
            out = float(value)
        elif isinstance(value, str):
            try:
                out = float(value.strip())
            except ValueError:
                raise ParameterError(f"parameter {name!r} is a float, got {value!r}") from None
        else:
            raise ParameterError(f"parameter {name!r} is a float, got {value!r}")
        if not math.isfinite(out):
            raise ParameterError(f"parameter {name!r} must be a finite number, got {value!r}")
        return out
    if ptype == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return str(value)
        raise ParameterError(f"parameter {name!r} is a string, got {value!r}")
    raise ParameterError(f"parameter {name!r} has an unknown type {ptype!r}")


DATASET_FORMATS = ("delimited", "parquet", "json_lines")  # ir.Dataset.format


def _coerce_data(name: str, ptype: str, value, datastores: set[str]):
    """A DataPath / dataset parameter: a DataPath or Dataset dict, its JSON, a URL or `store/path`."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError:
                raise ParameterError(f"parameter {name!r}: invalid JSON {value!r}") from None
        elif "://" in text or text.startswith("/"):
            value = {"kind": "url", "url": text}
        else:
            store_name, _, path = text.partition("/")
            if ":" in store_name and store_name.split(":", 1)[0] in datastores:
                store_name, _, rest = text.partition(":")
                path = rest.lstrip("/")
            if store_name not in datastores:
                raise ParameterError(
                    f"parameter {name!r}: {value!r} is neither a URL nor <datastore>/<path> "
                    f"with a known datastore ({', '.join(sorted(datastores)) or 'none declared'})"
                )
            value = {"kind": "datapath", "datastore": store_name, "path": path}
    if not isinstance(value, dict):
        raise ParameterError(f"parameter {name!r} ({ptype}) cannot take {value!r}")
    if "paths" in value:  # a Dataset
        if not isinstance(value["paths"], list) or not value["paths"]:
            raise ParameterError(f"parameter {name!r}: a dataset needs a non-empty 'paths' list")
        return {
            "type": value.get("type", "file"),
            "paths": [_coerce_data(name, "datapath", p, datastores) for p in value["paths"]],
            "separator": value.get("separator", ","),
            "header": bool(value.get("header", True)),
            "format": _dataset_format(name, value.get("format", "delimited")),
            # which registered version it was: lineage in the step record and Run.input_datasets
            "registered_name": value.get("registered_name"),
            "registered_version": value.get("registered_version"),
        }
    kind = value.get("kind") or ("url" if "url" in value else "datapath")
    if kind == "url":
        if not isinstance(value.get("url"), str):
            raise ParameterError(f"parameter {name!r}: a URL path needs 'url'")
        return {"kind": "url", "url": value["url"]}
    if kind == "datapath":
        ds = value.get("datastore")
        if ds not in datastores:
            raise ParameterError(f"parameter {name!r}: unknown datastore {ds!r}")
        return {"kind": "datapath", "datastore": ds, "path": str(value.get("path", ""))}
    raise ParameterError(f"parameter {name!r}: cannot read {value!r} as a data path")


def _dataset_format(name: str, fmt) -> str:
    if fmt not in DATASET_FORMATS:
        raise ParameterError(
            f"parameter {name!r}: dataset format {fmt!r} is not one of {', '.join(DATASET_FORMATS)}"
        )
    return fmt


def coerce(name: str, ptype: str, value, datastores=()):
    """`value` as parameter `name` of type `ptype` takes it, or ParameterError. The compiler's
    validation uses this too, so an override is judged the same at compile and at run time."""
    if ptype in ("datapath", "dataset"):
        return _coerce_data(name, ptype, value, set(datastores))
    return _coerce_scalar(name, ptype, value)


def resolve_parameters(ir: dict, overrides: dict | None) -> dict:
    """{name: value} for every pipeline parameter: IR default, replaced by a coerced override."""
    declared = {p["name"]: p for p in ir.get("parameters", [])}
    datastores = {d["name"] for d in ir.get("datastores", [])}
    values = {}
    for name, p in declared.items():
        if p["type"] in ("datapath", "dataset"):
            values[name] = _coerce_data(name, p["type"], p["default"], datastores)
        else:
            values[name] = p["default"]
    unknown = sorted(set(overrides or {}) - set(declared))
    if unknown:
        raise ParameterError(
            f"unknown pipeline parameter(s) {', '.join(map(repr, unknown))}; "
            f"the pipeline declares: {', '.join(sorted(declared)) or 'none'}"
        )
    for name, value in (overrides or {}).items():
        ptype = declared[name]["type"]
        if ptype in ("datapath", "dataset"):
            values[name] = _coerce_data(name, ptype, value, datastores)
        else:
            values[name] = _coerce_scalar(name, ptype, value)
    return values


def render(value) -> str:
    """What a script receives for a scalar: str(value), so a bool arrives as True / False."""
    return str(value)
