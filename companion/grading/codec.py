"""Plain data between the grader and a learner's kernel: JSON, with NumPy arrays as base64.

Nothing is ever unpickled: decoding builds only ``None``, ``bool``, ``int``, ``float``,
``str``, ``list``, ``tuple``, ``dict``, NumPy arrays and scalars of numeric dtypes,
instances of classes defined in the exercise modules (rebuilt from their decoded fields,
without calling any constructor; e.g. the test function of ``numerical_gradient``), and
:class:`~companion.exercises.core.Opaque` placeholders for values that are none of these
(an object array, a torch tensor...). Files are read only up to a size bound.
"""

from __future__ import annotations

import base64
import json
import os
import sys

import numpy as np

from companion.exercises.core import Behaviour, Opaque

MAX_BYTES = 64 * 2**20  # a file from the kernel larger than this is refused
MAX_DEPTH = 40
_NUMERIC_KINDS = "biufc"
_EXERCISE_MODULES = "companion.exercises."


class DecodeError(ValueError):
    """Data from the kernel that is not what the grader asked for."""


def encode(value, depth: int = 0):
    """``value`` as JSON-compatible data (see :func:`decode`)."""
    if depth > MAX_DEPTH:
        return _opaque(value)
    if value is None or isinstance(value, bool | str):
        return value
    if type(value) in (int, float):
        return value
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        if array.dtype.kind not in _NUMERIC_KINDS:
            return _opaque(value)
        return {"__array__": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode(),
                "dtype": array.dtype.str, "shape": list(array.shape),
                "scalar": isinstance(value, np.generic)}
    if type(value) in (list, tuple):
        items = [encode(item, depth + 1) for item in value]
        return items if isinstance(value, list) else {"__tuple__": items}
    if type(value) is dict:
        return {"__dict__": [[encode(k, depth + 1), encode(v, depth + 1)]
                             for k, v in value.items()]}
    if _exercise_class(type(value).__module__, type(value).__qualname__) is type(value):
        return {"__object__": f"{type(value).__module__}:{type(value).__qualname__}",
                "fields": encode(dict(vars(value)), depth + 1)}
    return _opaque(value)


def _exercise_class(module: str, qualname: str):
    """The class ``module:qualname`` if it is defined in an already imported module of
    :mod:`companion.exercises` (e.g. a test function given to an exercise), else None."""
    if not module.startswith(_EXERCISE_MODULES) or "." in qualname:
        return None
    candidate = getattr(sys.modules.get(module), qualname, None)
    return candidate if isinstance(candidate, type) else None


def _opaque(value) -> dict:
    dtype = getattr(value, "dtype", "")
    return {"__opaque__": type(value).__name__, "module": type(value).__module__ or "",
            "dtype": str(dtype) if isinstance(value, np.ndarray) else ""}


def decode(data, depth: int = 0):
    """The value :func:`encode` encoded, checking every piece."""
    if depth > MAX_DEPTH + 2:
        raise DecodeError("nested too deeply")
    if data is None or isinstance(data, bool | int | str):
        return data
    if isinstance(data, float):
        return data
    if isinstance(data, list):
        return [decode(item, depth + 1) for item in data]
    if not isinstance(data, dict):
        raise DecodeError(f"unexpected {type(data).__name__}")
    if set(data) == {"__tuple__"}:
        return tuple(decode(item, depth + 1) for item in _list(data["__tuple__"]))
    if set(data) == {"__dict__"}:
        pairs = _list(data["__dict__"])
        if not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
            raise DecodeError("a dict must be a list of key-value pairs")
        try:
            return {decode(k, depth + 1): decode(v, depth + 1) for k, v in pairs}
        except TypeError as error:  # an unhashable key
            raise DecodeError(str(error)) from None
    if set(data) == {"__array__", "dtype", "shape", "scalar"}:
        return _array(data)
    if set(data) == {"__object__", "fields"}:
        module, _, qualname = _string(data["__object__"]).partition(":")
        cls = _exercise_class(module, qualname)
        fields = decode(data["fields"], depth + 1)
        if cls is None or not isinstance(fields, dict) or not all(
                isinstance(key, str) for key in fields):
            raise DecodeError(f"cannot rebuild an object of {data['__object__']!r}")
        instance = cls.__new__(cls)  # no __init__: only the decoded fields
        instance.__dict__.update(fields)
        return instance
    if set(data) == {"__opaque__", "module", "dtype"}:
        return Opaque(_string(data["__opaque__"]), _string(data["module"]),
                      _string(data["dtype"]))
    raise DecodeError(f"unexpected keys {sorted(data)[:5]}")


def _array(data: dict):
    try:
        dtype = np.dtype(_string(data["dtype"]))
    except TypeError:
        raise DecodeError(f"unknown dtype {data['dtype']!r}") from None
    if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject or dtype.fields:
        raise DecodeError(f"dtype {dtype} is not numeric")
    shape = _list(data["shape"])
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise DecodeError(f"bad shape {shape!r}")
    raw = base64.b64decode(_string(data["__array__"]), validate=True)
    if len(raw) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise DecodeError("array bytes do not match its shape and dtype")
    array = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    return array[()] if data["scalar"] is True and array.ndim == 0 else array


def _string(value) -> str:
    if not isinstance(value, str):
        raise DecodeError(f"expected a string, got {type(value).__name__}")
    return value


def _list(value) -> list:
    if not isinstance(value, list):
        raise DecodeError(f"expected a list, got {type(value).__name__}")
    return value


def dump(value, path: str | os.PathLike) -> None:
    """Write ``encode(value)`` to ``path``."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump(encode(value), file)


def load(path: str | os.PathLike, max_bytes: int = MAX_BYTES):
    """Read a file written by :func:`dump`, refusing more than ``max_bytes``."""
    with open(path, "rb") as file:
        raw = file.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise DecodeError(f"more than {max_bytes // 2**20} MB of data")
    try:
        return decode(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise DecodeError(f"not valid data ({type(error).__name__})") from None


_BEHAVIOUR_FIELDS = {"kind", "outputs", "warned", "args_after", "error", "error_type",
                     "seconds"}


def behaviour_to_data(behaviour: Behaviour) -> dict:
    return {name: getattr(behaviour, name) for name in _BEHAVIOUR_FIELDS}


def behaviour_from_data(data) -> Behaviour:
    """A :class:`Behaviour` from decoded data, every field checked."""
    from companion.exercises.core import BEHAVIOUR_KINDS

    if not isinstance(data, dict) or set(data) != _BEHAVIOUR_FIELDS:
        raise DecodeError("not a behaviour record")
    if data["kind"] not in BEHAVIOUR_KINDS:
        raise DecodeError(f"unknown behaviour {data['kind']!r}")
    warned = data["warned"]
    if not isinstance(warned, list | tuple) or not all(isinstance(w, str) for w in warned):
        raise DecodeError("warnings must be strings")
    args_after = data["args_after"]
    if args_after is not None and not isinstance(args_after, list):
        raise DecodeError("arguments after the call must be a list")
    seconds = data["seconds"]
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise DecodeError("seconds must be a number")
    return Behaviour(data["kind"], data["outputs"], tuple(warned), args_after,
                     _string(data["error"])[:20000], _string(data["error_type"])[:200],
                     float(seconds))
