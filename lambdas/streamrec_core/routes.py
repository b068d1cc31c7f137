"""Every route of the public API, defined once: method, path, the function behind it, the API key role
it accepts and the parameters it takes (streamrec_core.params: rule, typed value, JSON Schema).

Read by the CDK construct (stacks/constructs/api.py: resources, methods, integrations, which routes need
a key, which key id each function is told to accept), by the handlers (route matching, the key check,
parameters parsed once into the values the logic takes), by the OpenAPI document (paths, methods,
security, parameters) and by the clients (`Route.url`: streamrec_client, tools, the e2e tests).

Why the handlers check the key: API Gateway usage plans attach keys to API stages, not to methods, so
any key of any plan on the stage opens every keyed method. API Gateway puts the id of the key it
accepted in `requestContext.identity.apiKeyId`; each function is told, per key role, the one key id its
routes accept (environment variables `KEY_ID_ENV`), and refuses any other with 403 in the shared error
shape. The local emulator fills `apiKeyId` exactly like API Gateway, so the check is the same there.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from streamrec_core import constants as c
from streamrec_core import params as p
from streamrec_core.env import require_str
from streamrec_core.http import (
    ERROR_BAD_REQUEST,
    ERROR_FORBIDDEN,
    HttpError,
    query_parameter,
    query_parameter_list,
)


class KeyRole(StrEnum):
    """Who holds a key. The producer key lives in web pages, so it is public and may only send events;
    the reader key is a server-side secret (pages get recommendations through their own backend)."""

    PRODUCER = "producer"
    READER = "reader"


# The environment variable that tells a function which API key id a role's routes accept.
KEY_ID_ENV: Final[Mapping[KeyRole, str]] = {
    KeyRole.PRODUCER: c.ENV_PRODUCER_API_KEY_ID,
    KeyRole.READER: c.ENV_READER_API_KEY_ID,
}

# Functions, by their folder under lambdas/ (handler "<function>.handler.handler").
INGEST: Final = "ingest"
SERVE: Final = "serve"


@dataclass(frozen=True, slots=True)
class Route:
    """One method on one path. `key_role` None: no API key (health checks carry none)."""

    method: str
    path: str
    function: str
    key_role: KeyRole | None
    params: tuple[p.Parameter, ...] = ()
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        object.__setattr__(self, "pattern", re.compile(regex + "/?"))
        declared = tuple(q.name for q in self.params if q.location == p.PATH)
        if declared != self.path_parameters:
            raise ValueError(f"{self.path}: path parameters {self.path_parameters} declared as {declared}")

    @property
    def path_parameters(self) -> tuple[str, ...]:
        """Names of the `{parameters}` in the path, in order."""
        return tuple(re.findall(r"\{(\w+)\}", self.path))

    @property
    def query(self) -> tuple[p.Parameter, ...]:
        return tuple(q for q in self.params if q.location == p.QUERY)

    def parse(self, event: Mapping[str, Any], path_values: Mapping[str, str]) -> dict[str, Any]:
        """Every parameter of this route from a proxy event, by name, as the value the logic takes.

        HttpError(bad_request) for a query parameter the route does not take or a value breaking its rule.
        """
        given = set(event.get("queryStringParameters") or {})
        given |= set(event.get("multiValueQueryStringParameters") or {})
        unknown = sorted(given - {q.name for q in self.query})
        if unknown:
            allowed = ", ".join(sorted(q.name for q in self.query)) or "none"
            raise HttpError(
                ERROR_BAD_REQUEST, f"unknown query parameter {unknown[0][:64]!r}; this route takes: {allowed}"
            )
        values: dict[str, Any] = {}
        for param in self.params:
            if param.location == p.PATH:
                values[param.name] = param.parse(path_values.get(param.name))
            elif param.many:
                values[param.name] = param.parse(query_parameter_list(event, param.name))
            else:
                values[param.name] = param.parse(query_parameter(event, param.name))
        return values

    def url(self, base_url: str, **values: Any) -> str:
        """`base_url` + this route's path, its parameters filled in (percent-encoded), the others as the
        query string (None left out, a list repeated): `RECOMMENDATIONS.url(base, user_id="u1", k=5)`."""
        path = self.path
        for name in self.path_parameters:
            path = path.replace("{" + name + "}", urllib.parse.quote(str(values.pop(name)), safe=""))
        unknown = sorted(set(values) - {q.name for q in self.query})
        if unknown:
            raise ValueError(f"{self.method} {self.path} takes no parameter {unknown[0]!r}")
        query = urllib.parse.urlencode({k: v for k, v in values.items() if v is not None}, doseq=True)
        return base_url.rstrip("/") + path + (f"?{query}" if query else "")


EVENTS: Final = Route("POST", "/v1/events", INGEST, KeyRole.PRODUCER)
RECOMMENDATIONS: Final = Route(
    "GET",
    "/v1/users/{user_id}/recommendations",
    SERVE,
    KeyRole.READER,
    (p.USER_ID, p.K, p.CATEGORY, p.EXCLUDE),
)
SIMILAR: Final = Route("GET", "/v1/items/{item_id}/similar", SERVE, KeyRole.READER, (p.ITEM_ID, p.K))
EXPERIMENT: Final = Route("GET", "/v1/experiments/{experiment_id}", SERVE, KeyRole.READER, (p.EXPERIMENT_ID,))
HEALTH: Final = Route("GET", "/v1/health", SERVE, None)
ROUTES: Final = (EVENTS, RECOMMENDATIONS, SIMILAR, EXPERIMENT, HEALTH)


def routes_of(function: str) -> tuple[Route, ...]:
    """The routes `function` serves."""
    return tuple(r for r in ROUTES if r.function == function)


def key_roles_of(function: str) -> tuple[KeyRole, ...]:
    """The key roles `function`'s routes accept (each needs its key id in the environment)."""
    return tuple(dict.fromkeys(r.key_role for r in routes_of(function) if r.key_role is not None))


def match(routes: tuple[Route, ...], event: Mapping[str, Any]) -> tuple[Route | None, dict[str, str]]:
    """The route a proxy event is for, by path only (any method), and its path parameters.

    API Gateway names the matched resource in `resource`; direct invocations may only give `path`.
    """
    params = {k: v for k, v in (event.get("pathParameters") or {}).items() if isinstance(v, str)}
    resource = event.get("resource")
    for route in routes:
        if resource == route.path:
            return route, params
    path = event.get("path")
    for route in routes:
        found = route.pattern.fullmatch(path) if isinstance(path, str) else None
        if found:
            return route, {**found.groupdict(), **params}
    return None, params


def key_ids_from_env(env: Mapping[str, str], function: str) -> dict[KeyRole, str]:
    """The accepted key id per role of `function`'s routes; ConfigError names a missing variable."""
    return {role: require_str(env, KEY_ID_ENV[role]) for role in key_roles_of(function)}


def api_key_id(event: Mapping[str, Any]) -> str | None:
    """The id of the API key API Gateway accepted (`requestContext.identity.apiKeyId`); None if keyless."""
    context = event.get("requestContext")
    identity = context.get("identity") if isinstance(context, Mapping) else None
    value = identity.get("apiKeyId") if isinstance(identity, Mapping) else None
    return value if isinstance(value, str) else None


def authorize(route: Route, event: Mapping[str, Any], key_ids: Mapping[KeyRole, str]) -> None:
    """Raise HttpError(forbidden) unless the request carries the key `route`'s role accepts."""
    if route.key_role is None:
        return
    if api_key_id(event) != key_ids[route.key_role]:
        raise HttpError(
            ERROR_FORBIDDEN,
            f"{route.method} {route.path} needs the {route.key_role} API key; the x-api-key given is not it",
        )
