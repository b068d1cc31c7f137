"""The demo's storefront, served by the local runtime at ``/_local/storefront`` (127.0.0.1 only).

A shop page as a real site would build one on streamrec: the browser sends events itself with the
documented snippet (docs/producers.md, "Browser") and the *producer* key; it gets recommendations from
this server-side route, which holds the *reader* key and calls ``GET /v1/users/{user_id}/recommendations``
(the reader key never reaches the browser: it reads any user's recommendations).

Routes (under ``/_local/storefront``):
- ``""``: the page (``storefront.html``);
- ``config.json``: the API's base URL, the producer key, the catalog (items with readable names and
  categories, most viewed first), a few known users, and this run's token for ``POST freshness``;
- ``recommendations?user_id=...&k=...``: the API's answer for that user, fetched with the reader key;
- ``POST freshness`` ``{"ms": N}``: the page reports how long a click took to show in its panel, with
  the token in the ``x-storefront-token`` header (else 403). The loopback Host check keeps other sites'
  pages from reading these routes, not from sending to them: a page of any origin open in the same
  browser may POST a "simple" request here. It cannot send the token: it cannot read config.json (no
  CORS header allows it), and a custom header makes its browser ask first with a preflight, which
  these routes never grant.

For the local console (`console_sections`, local only, not part of the stack's dashboard): the
freshness per click, and the CTR per variant with its interval of the experiment the answers were in
(``GET /v1/experiments/{experiment_id}``, called here with the reader key).
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from streamrec_core import routes

from local_emulator.http_server import Answer, json_answer
from tools.generate_clickstream import generate_events


@dataclass(frozen=True)
class Shop:
    """The generated shop `make demo` replays (and `make up`'s storefront shows): generator arguments."""

    events: int = 5_000
    users: int = 300
    items: int = 2_000
    seed: int = 7

    def generate(self) -> list[dict[str, Any]]:
        """The shop's events (tools.generate_clickstream; the same arguments give the same events)."""
        return generate_events(self.events, users=self.users, items=self.items, seed=self.seed)


DEMO_SHOP = Shop()
PAGE = Path(__file__).with_name("storefront.html")
ROUTE = "storefront"
CATALOG_SIZE = 48
KNOWN_USERS = 12
DEFAULT_K = 6
# Freshness measurements kept for the console, and the largest one accepted (the page gives up at 10 s).
FRESHNESS_KEPT = 1_000
MAX_FRESHNESS_MS = 60_000
# The largest freshness report read: {"ms": N} is a few bytes. The bound also keeps nesting far below
# what makes json.loads raise RecursionError (a 500 before).
MAX_FRESHNESS_BODY = 256
# Each open console asks for its sections every 2 s; the experiment's counters are read from the API at
# most this often (the reads are real API traffic: they show on the dashboard and use serve's workers).
EXPERIMENT_READ_EVERY_S = 5.0
LOCAL_ONLY = "local only: measured by the storefront, not a metric of the stack's dashboard"
# The header that carries config.json's token on POST freshness (the page reads its name from there too).
TOKEN_HEADER = "x-storefront-token"
NO_HEADERS: Mapping[str, str] = MappingProxyType({})
_ADJECTIVES = (
    "Classic", "Compact", "Cosy", "Bright", "Rugged", "Slim", "Soft", "Vintage", "Sturdy", "Light",
    "Smart", "Bold", "Quiet", "Urban", "Handmade", "Everyday",
)  # fmt: skip
_DEPARTMENTS = (
    ("Kitchen", ("Kettle", "Pan", "Knife Set", "Mug", "Blender", "Teapot")),
    ("Outdoor", ("Tent", "Backpack", "Lantern", "Hiking Boots", "Water Bottle", "Hammock")),
    ("Books", ("Novel", "Cookbook", "Atlas", "Poetry Collection", "Comic", "Field Guide")),
    ("Music", ("Headphones", "Ukulele", "Speaker", "Vinyl Record", "Metronome", "Microphone")),
    ("Garden", ("Watering Can", "Planter", "Pruner", "Seed Kit", "Bird Feeder", "Hose")),
    ("Toys", ("Puzzle", "Kite", "Robot Kit", "Board Game", "Plush Bear", "Yo-yo")),
    ("Office", ("Notebook", "Desk Lamp", "Fountain Pen", "Organizer", "Chair Cushion", "Stapler")),
    ("Fashion", ("Scarf", "Sneakers", "Wallet", "Sunglasses", "Beanie", "Watch")),
)


def _pick(value: str, choices: tuple[Any, ...]) -> Any:
    return choices[zlib.crc32(value.encode()) % len(choices)]


def readable(item_id: str, category: str) -> dict[str, str]:
    """A stable, readable name and department for an item id and its category id."""
    department, products = _pick(category, _DEPARTMENTS)
    return {
        "item_id": item_id,
        "category": category,
        "department": f"{department} ({category})",
        "name": f"{_pick(item_id, _ADJECTIVES)} {_pick(item_id + '#', products)}",
    }


class Storefront:
    """The storefront's routes for one pipeline and one catalog."""

    def __init__(self, base_url: str, api_keys: dict[str, str], events: Iterable[dict[str, Any]]) -> None:
        self._base_url = base_url
        self._producer_key = api_keys["producer"]
        self._reader_key = api_keys["reader"]
        views: Counter[str] = Counter()
        users: Counter[str] = Counter()
        category: dict[str, str] = {}
        for event in events:  # ids that are not strings are not events the API accepts: not shown
            item, user = event.get("item_id"), event.get("user_id")
            if item and isinstance(item, str) and event.get("category"):
                views[item] += 1
                category[item] = str(event["category"])
            if user and isinstance(user, str):
                users[user] += 1
        self.catalog = [readable(item, category[item]) for item, _ in views.most_common(CATALOG_SIZE)]
        self.users = [user for user, _ in users.most_common(KNOWN_USERS)]
        self._freshness: deque[tuple[float, float]] = deque(maxlen=FRESHNESS_KEPT)
        self._lock = threading.Lock()
        self.experiment_id: str | None = None  # the experiment the last answer was in
        self._experiment_lock = threading.Lock()
        self._experiment_read: tuple[float, str, dict[str, Any]] | None = None  # (monotonic, id, answer)
        self.token = secrets.token_urlsafe(32)  # this run's, for POST freshness (module docstring)

    def install(self, runtime: Any) -> None:
        """Serve the routes at ``/_local/storefront`` of `runtime` and draw its sections on its console."""
        runtime.add_local_route(ROUTE, self.handle)
        for name, section in self.console_sections().items():
            runtime.add_console_section(name, section)

    def handle(
        self, verb: str, path: str, query: str, body: bytes, headers: Mapping[str, str] = NO_HEADERS
    ) -> Answer:
        """Answer ``/_local/storefront/<path>``; `headers` by lower-cased name."""
        if path == "freshness" and verb == "POST":
            refusal = self._token_refusal(headers.get(TOKEN_HEADER))
            return refusal or self._record_freshness(body)
        if verb not in ("GET", "HEAD"):  # the server sends no body to a HEAD
            return json_answer({"message": f"{verb} is not allowed here: use GET"}, 405)
        if path == "":
            return 200, [("Content-Type", "text/html; charset=utf-8")], PAGE.read_bytes()
        if path == "config.json":
            return json_answer(
                {
                    "api_url": self._base_url,
                    "producer_key": self._producer_key,
                    "catalog": self.catalog,
                    "users": self.users,
                    "token_header": TOKEN_HEADER,
                    "token": self.token,
                }
            )
        if path == "recommendations":
            return self._recommendations(urllib.parse.parse_qs(query))
        return json_answer({"message": f"no storefront route {path!r}"}, 404)

    def _recommendations(self, params: dict[str, list[str]]) -> Answer:
        user_id = (params.get("user_id") or [""])[0]
        if not user_id:
            return json_answer({"message": "user_id is required"}, 400)
        # k and exclude are checked by the API itself (one rule, one place): a bad value gets its 400
        # passed on. The page excludes what the visitor clicked here: a shop shows what is new to them.
        k = (params.get("k") or [str(DEFAULT_K)])[0]
        exclude = params.get("exclude") or None
        url = routes.RECOMMENDATIONS.url(self._base_url, user_id=user_id, k=k, exclude=exclude)
        request = urllib.request.Request(url, method=routes.RECOMMENDATIONS.method)
        request.add_header("x-api-key", self._reader_key)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, answer = response.status, response.read()
        except urllib.error.HTTPError as error:  # the API's own answer (400 on a bad user id, 429, ...)
            status, answer = error.code, error.read()
        except OSError as error:
            return json_answer({"message": f"the recommendations API could not be reached: {error}"}, 502)
        if status == 200:
            self.experiment_id = json.loads(answer).get("experiment_id") or self.experiment_id
        return status, [("Content-Type", "application/json")], answer

    def _token_refusal(self, sent: str | None) -> Answer | None:
        """403 unless `sent` is this run's token (compared in constant time)."""
        rule = f"POST freshness needs the {TOKEN_HEADER} header with the token of this page's config.json"
        if not sent:
            return json_answer({"message": f"{rule}: the header is missing"}, 403)
        if not hmac.compare_digest(sent.encode(), self.token.encode()):
            return json_answer({"message": f"{rule}: this one is not it"}, 403)
        return None

    def _record_freshness(self, body: bytes) -> Answer:
        rule = f'the body must be a JSON object {{"ms": N}} of at most {MAX_FRESHNESS_BODY} bytes'
        if len(body) > MAX_FRESHNESS_BODY:
            return json_answer({"message": rule}, 413)
        try:
            ms = json.loads(body).get("ms")
        except (ValueError, AttributeError):
            return json_answer({"message": rule}, 400)
        if isinstance(ms, bool) or not isinstance(ms, int | float) or not 0 <= ms <= MAX_FRESHNESS_MS:
            return json_answer({"message": f"ms must be a number from 0 to {MAX_FRESHNESS_MS}"}, 400)
        with self._lock:
            self._freshness.append((time.time(), float(ms)))
        return json_answer({"recorded": ms})

    def console_sections(self) -> dict[str, Callable[[float, float], dict[str, Any]]]:
        """The console's local-only sections this storefront draws, by name."""
        return {
            "storefront-freshness": self.freshness_section,
            "storefront-experiment": self.experiment_section,
        }

    def freshness_section(self, now: float, window_s: float) -> dict[str, Any]:
        """Each click's freshness (ms) in the window, as [time, ms] points."""
        with self._lock:
            points = [[at, ms] for at, ms in self._freshness if now - window_s < at <= now]
        title = "Storefront: freshness per click"
        return {"kind": "points", "title": title, "unit": "ms", "note": LOCAL_ONLY, "points": points}

    def experiment_section(self, now: float, window_s: float) -> dict[str, Any]:
        """The CTR per variant, with its interval, of the experiment the storefront's answers were in."""
        section: dict[str, Any] = {"kind": "intervals", "note": LOCAL_ONLY, "variants": []}
        if self.experiment_id is None:
            return {**section, "title": "Experiment: CTR per variant", "message": "no experiment answer yet"}
        section["title"] = f"Experiment {self.experiment_id}: CTR per variant (95% interval)"
        try:
            result = self._read_experiment(self.experiment_id)
        except (OSError, ValueError) as error:
            return {**section, "message": f"the experiments API could not be read: {error}"}
        section["variants"] = [
            {"variant": v["variant"], "impressions": v["impressions"], "clicks": v["clicks"], **v["ctr"]}
            for v in result.get("variants", [])
        ]
        return section

    def _read_experiment(self, experiment_id: str) -> dict[str, Any]:
        """GET /v1/experiments/{id} with the reader key, at most once per EXPERIMENT_READ_EVERY_S."""
        with self._experiment_lock:  # concurrent consoles wait for one read instead of each making one
            read = self._experiment_read
            if read and read[1] == experiment_id and time.monotonic() - read[0] < EXPERIMENT_READ_EVERY_S:
                return read[2]
            url = routes.EXPERIMENT.url(self._base_url, experiment_id=experiment_id)
            request = urllib.request.Request(url, method=routes.EXPERIMENT.method)
            request.add_header("x-api-key", self._reader_key)
            with urllib.request.urlopen(request, timeout=10) as response:
                result: dict[str, Any] = json.loads(response.read())
            self._experiment_read = (time.monotonic(), experiment_id, result)
            return result
