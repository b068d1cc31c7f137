"""CPU the moto server spends per request on work whose answer never changes: remembered (moto 5.2.5).

Applied in the emulator's moto server process (`moto_server`); every answer stays moto's own, only
computed once. Measured on the 2-core machine with the emulator's moto server (one client):

1. Finding the backend of a request lists moto's package directory and matches the host against
   every service's URL patterns, under a global lock: remembered per host.
2. Serializing a response picks each output member from the result through six alias providers
   (`moto.core.serialize.AttributePicker`) and a new picker context, for every member of every nested
   structure. A DynamoDB attribute value is a structure of ten members, so a BatchGetItem of 100
   five-attribute items asked ~50,000 times: 74 % of its 24-32 ms. For a result held in a plain dict
   the keys to try depend only on the member, its shape and the shape's parent: remembered.
3. A condition expression (every conditional PutItem) is lexed character by character with a list of
   regular expressions: the tokens of an expression string are remembered (each use gets new nodes).
4. Every request lists the methods of its handler class with `inspect.getmembers` to check that the
   action exists: remembered per class (4 % of a PutItem).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from typing import Any

from moto.core import responses, serialize
from moto.core.utils import get_value
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_ORIGINALS: dict[str, Any] = {}
_MISSING = serialize.MISSING
# (picker class, alias providers, id(shape), id(parent), member key) -> (shape, parent, keys): the
# objects are kept so that an id can never be reused by another shape while its entry exists.
_KEYS: dict[tuple[Any, ...], tuple[Any, Any, tuple[str, ...]]] = {}
_TOKENS: dict[str | None, tuple[tuple[Any, ...], ...]] = {}
_METHOD_NAMES: dict[type, tuple[str, ...]] = {}


def _cached_backend_lookup(self: DomainDispatcherApplication, host: str | None) -> Any:
    cache: dict[str | None, Any] = self.__dict__.setdefault("_streamrec_backend_by_host", {})
    if host not in cache:
        cache[host] = _ORIGINALS["get_backend_for_host"](self, host)
    return cache[host]


def _get_value(self: serialize.ResponseSerializer, value: Any, key: str, shape: Any) -> Any:
    """`ResponseSerializer.get_value` for a result held in a plain dict, without building a picker
    context per member: the keys its picker tries for a dict depend on the picker's alias providers,
    the key, the shape and the shape's parent (of the object only its class, ``dict``, and its
    ``Meta``, which a dict has not), so they are remembered."""
    picker = self._value_picker
    if (
        type(value) is not dict
        or not isinstance(picker, serialize.AttributePicker)
        or picker.response_transformers
    ):
        return _ORIGINALS["get_value"](self, value, key, shape)
    parent = getattr(shape, "parent", None)
    cache_key = (type(picker), tuple(picker.alias_providers), id(shape), id(parent), key)
    entry = _KEYS.get(cache_key)
    if entry is None or entry[0] is not shape or entry[1] is not parent:
        context = serialize.AttributePickerContext(
            obj=value,
            key=key,
            shape=shape,
            operation_model=self.operation_model,
            service_model=self.operation_model.service_model,
            key_path=".".join(self.path),
        )
        entry = (shape, parent, tuple(picker.get_possible_keys(context)))
        _KEYS[cache_key] = entry
    for possible_key in entry[2]:
        found = (
            get_value(value, possible_key, _MISSING)
            if "." in possible_key
            else value.get(possible_key, _MISSING)
        )
        if found is not _MISSING:
            return found
    return None


def _lex(self: ConditionExpressionParser) -> deque[Any]:
    expression = self.condition_expression
    tokens = _TOKENS.get(expression)
    if tokens is None:
        nodes = _ORIGINALS["lex"](self)
        tokens = tuple((n.nonterminal, n.kind, n.text, n.value) for n in nodes)
        _TOKENS[expression] = tokens
    return deque(self.Node(nonterminal=a, kind=b, text=c, value=d, children=[]) for a, b, c, d in tokens)


def _method_names(clazz: type) -> list[str]:
    if clazz not in _METHOD_NAMES:
        _METHOD_NAMES[clazz] = tuple(_ORIGINALS["method_names_from_class"](clazz))
    return list(_METHOD_NAMES[clazz])


# What is replaced: the key its original is kept under in _ORIGINALS -> (class or module, name, the
# replacement).
_REPLACED: dict[str, tuple[object, str, Callable[..., Any]]] = {
    "get_backend_for_host": (DomainDispatcherApplication, "get_backend_for_host", _cached_backend_lookup),
    "get_value": (serialize.ResponseSerializer, "get_value", _get_value),
    "lex": (ConditionExpressionParser, "_lex_condition_expression", _lex),
    "method_names_from_class": (responses, "method_names_from_class", _method_names),
}


def apply() -> None:
    """Apply the caches (idempotent)."""
    if _ORIGINALS:
        return
    for key, (owner, name, replacement) in _REPLACED.items():
        _ORIGINALS[key] = getattr(owner, name)
        setattr(owner, name, functools.wraps(_ORIGINALS[key])(replacement))


def remove() -> None:
    """Restore moto's own code (tests compare both)."""
    if not _ORIGINALS:
        return
    for key, (owner, name, _replacement) in _REPLACED.items():
        setattr(owner, name, _ORIGINALS.pop(key))
    _METHOD_NAMES.clear()
    _KEYS.clear()
    _TOKENS.clear()
