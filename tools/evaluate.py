"""Measure recommendation quality on a time split: HitRate@k and MRR@k of covisit-v1 and two baselines.

    python -m tools.evaluate offline [--events PATH] [--train-fraction 0.8] [--k 10] [--max-queries N]
    python -m tools.evaluate offline --validation          # tune here: split inside the training part
    python -m tools.evaluate online [--events PATH] [--limit N] [--max-queries 300]

The protocol (both modes):

- The events file is time-ordered. The first ``train_fraction`` of its events (by count, so a time
  prefix) is the training part; the rest is held out. ``--validation`` evaluates inside the training
  part only (its own first ``train_fraction`` trains, the rest validates), so the test part is never
  used to choose parameters.
- The training part is folded into the features with the real fold (``ReferenceFold`` offline, the
  deployed process function online).
- The held-out part is walked in time order. Every held-out event of a *known* user (one with at least
  one item event in the training part) is a query: recommendations are asked for as of just before it
  (every earlier event, held-out ones included, is folded in; the event itself is not), then the event
  is folded in, because the system is real-time.
- A query is a hit when the event's item is in the top k; its reciprocal rank is 1/rank (0 beyond k).
  Targets: ``all`` (every item event) and ``non_view`` (add_to_cart, favorite, purchase), both from
  the same walk.
- Models, on the same queries: ``covisit-v1`` through serve's own ``Recommender`` (the same rows serve
  would read, the same ranking code); ``popularity`` (the global trending list of the features so far);
  ``recent`` (the user's own latest distinct items, newest first).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serve.logic import Recommender, ServeSettings
from streamrec_core import routes
from streamrec_core.constants import API_KEY_HEADER, MODEL_NAME
from streamrec_core.experiments import Experiment, Variant, parse_experiments
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.events import ITEM_EVENT_TYPES
from streamrec_core.features.reference import ReferenceFold

from tools.replay import (
    Replayer,
    ReplaySummary,
    Retimer,
    format_timestamp,
    read_events,
    source_time,
    to_schema_event,
)

_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_EVENTS = _ROOT.parent / "shared" / "data" / "taobao-userbehavior" / "events.jsonl"
DEFAULT_K = 10
DEFAULT_TRAIN_FRACTION = 0.8
DEFAULT_ONLINE_QUERIES = 300
TARGET_ALL = "all"
TARGET_NON_VIEW = "non_view"
TARGETS = (TARGET_ALL, TARGET_NON_VIEW)
MODEL_POPULARITY = "popularity"
MODEL_RECENT = "recent"
# Offline features keep every event: no lateness (events arrive at their own time), long TTLs.
OFFLINE_CONFIG = FeatureConfig(
    user_ttl_seconds=90 * 86_400, item_ttl_seconds=90 * 86_400, allowed_lateness_ms=3_600_000
)


# --- Scoring ---------------------------------------------------------------------------------------
def reciprocal_rank(items: Sequence[str], target: str, k: int) -> float:
    """1/rank of `target` in the first `k` of `items` (rank 1 = first), 0 when absent."""
    for position, item in enumerate(items[:k]):
        if item == target:
            return 1.0 / (position + 1)
    return 0.0


@dataclass
class Score:
    """Running HitRate@k and MRR@k over queries."""

    queries: int = 0
    hits: int = 0
    rr_sum: float = 0.0

    def add(self, items: Sequence[str], target: str, k: int) -> None:
        rr = reciprocal_rank(items, target, k)
        self.queries += 1
        self.hits += rr > 0
        self.rr_sum += rr

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0

    @property
    def mrr(self) -> float:
        return self.rr_sum / self.queries if self.queries else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"queries": self.queries, "hit_rate": round(self.hit_rate, 4), "mrr": round(self.mrr, 4)}


@dataclass
class Report:
    """Scores by target set, then by model."""

    k: int
    split: dict[str, Any]
    scores: dict[str, dict[str, Score]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def add(self, model: str, items: Sequence[str], target_item: str, event_type: str) -> None:
        for target in targets_of(event_type):
            self.scores.setdefault(target, {}).setdefault(model, Score()).add(items, target_item, self.k)

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "split": self.split,
            "notes": self.notes,
            "targets": {
                target: {model: score.as_dict() for model, score in models.items()}
                for target, models in self.scores.items()
            },
        }

    def table(self) -> str:
        lines = [f"| targets | model | queries | HitRate@{self.k} | MRR@{self.k} |", "|---|---|---|---|---|"]
        for target, models in self.scores.items():
            for model, score in models.items():
                lines.append(
                    f"| {target} | {model} | {score.queries} | {score.hit_rate:.3f} | {score.mrr:.3f} |"
                )
        return "\n".join(lines)


def targets_of(event_type: str) -> tuple[str, ...]:
    """Which target sets an event of this type counts in."""
    return (TARGET_ALL,) if event_type == "view" else TARGETS


# --- Data ------------------------------------------------------------------------------------------
def load_events(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The item events of a time-ordered JSON Lines file (the first `limit` lines when given)."""
    events = []
    for number, event in enumerate(read_events(path)):
        if limit is not None and number >= limit:
            break
        if event.get("item_id") and event.get("event_type") in ITEM_EVENT_TYPES:
            events.append(event)
    return events


def split_events(
    events: Sequence[dict[str, Any]], train_fraction: float, *, validation: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training part, held-out part): a time prefix by count. `validation` splits the training part again."""
    if not 0 < train_fraction < 1:
        raise ValueError("train_fraction must be between 0 and 1")
    cut = int(len(events) * train_fraction)
    train, test = list(events[:cut]), list(events[cut:])
    if validation:
        return split_events(train, train_fraction)
    return train, test


def known_users(train: Iterable[Mapping[str, Any]]) -> set[str]:
    """Users with at least one item event in the training part."""
    return {event["user_id"] for event in train if event.get("item_id")}


# --- Models over in-memory features ----------------------------------------------------------------
def covisit_model(
    features: ReferenceFold, params: Mapping[str, Any] | None = None
) -> Callable[[str, int], list[str]]:
    """covisit-v1 as serve runs it, with `params` as the (single) variant's model parameters."""
    experiments = (Experiment("evaluate", (Variant("evaluate", 1.0, dict(params or {})),)),) if params else ()
    # The fold changes between queries: no trending cache.
    recommender = Recommender(features, ServeSettings(experiments=experiments, trending_cache_seconds=0))

    def ask(user_id: str, k: int) -> list[str]:
        body = recommender.recommendations(user_id, k=k, request_id="evaluate").body
        return [entry.item_id for entry in body.items]

    return ask


def popularity_model(features: ReferenceFold) -> Callable[[str, int], list[str]]:
    """The global trending list as the features hold it now, the same for every user."""

    def ask(user_id: str, k: int) -> list[str]:
        return [trend.item for trend in features.trending()[:k]]

    return ask


def recent_model(features: ReferenceFold) -> Callable[[str, int], list[str]]:
    """The user's own latest distinct items, newest first."""

    def ask(user_id: str, k: int) -> list[str]:
        user = features.users.get(user_id)
        found: list[str] = []
        for item, _type, _when, _category in reversed(user.history if user else []):
            if item not in found:
                found.append(item)
                if len(found) >= k:
                    break
        return found

    return ask


def _fold(features: ReferenceFold, event: Mapping[str, Any], seq: int) -> None:
    features.apply_dict(to_schema_event(dict(event), event["timestamp"]), sequence_number=seq)


# --- Offline ---------------------------------------------------------------------------------------
def evaluate_offline(
    events: Sequence[dict[str, Any]],
    *,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
    k: int = DEFAULT_K,
    max_queries: int | None = None,
    params: Mapping[str, Any] | None = None,
    validation: bool = False,
    cfg: FeatureConfig = OFFLINE_CONFIG,
) -> Report:
    """Fold the training part, then query before each held-out event of a known user (see module doc)."""
    train, test = split_events(events, train_fraction, validation=validation)
    known = known_users(train)
    features = ReferenceFold(cfg)
    models = {
        MODEL_NAME: covisit_model(features, params),
        MODEL_RECENT: recent_model(features),
        MODEL_POPULARITY: popularity_model(features),
    }
    report = Report(k, _split_info(train, test, known, train_fraction, validation))
    report.notes["params"] = dict(params or {})
    seq = 0
    for event in train:
        seq += 1
        _fold(features, event, seq)
    queries = 0
    for event in test:
        if max_queries is not None and queries >= max_queries:
            break
        if event["user_id"] in known:
            queries += 1
            for name, ask in models.items():
                report.add(name, ask(event["user_id"], k), event["item_id"], event["event_type"])
        seq += 1
        _fold(features, event, seq)
    return report


def _split_info(
    train: Sequence[Mapping[str, Any]],
    test: Sequence[Mapping[str, Any]],
    known: set[str],
    train_fraction: float,
    validation: bool,
) -> dict[str, Any]:
    return {
        "part": "validation (inside the training part)" if validation else "test",
        "train_fraction": train_fraction,
        "train_events": len(train),
        "held_out_events": len(test),
        "train_until": train[-1]["timestamp"] if train else None,
        "held_out_until": test[-1]["timestamp"] if test else None,
        "known_users": len(known),
        "held_out_events_of_known_users": sum(1 for e in test if e["user_id"] in known),
    }


# --- Online ----------------------------------------------------------------------------------------
@dataclass
class Api:
    """The public API of a running pipeline: POST events, GET recommendations."""

    base_url: str
    producer_key: str
    reader_key: str
    timeout: float = 30.0

    def recommendations(self, user_id: str, k: int) -> dict[str, Any]:
        url = routes.RECOMMENDATIONS.url(self.base_url, user_id=user_id, k=k)
        request = urllib.request.Request(url, headers={API_KEY_HEADER: self.reader_key})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            body: dict[str, Any] = json.loads(response.read())
        return body


def variant_params(profile: str, cdk_json: Path = _ROOT / "cdk.json") -> dict[str, dict[str, Any]]:
    """Variant name -> model params of the profile's first experiment in cdk.json (what serve assigns),
    parsed by the rules serve and the stack's settings use, so a broken experiment is refused here too."""
    profiles = json.loads(cdk_json.read_text(encoding="utf-8"))["context"]["profiles"]
    if profile not in profiles:
        raise SystemExit(f"--profile: no profile {profile!r} in cdk.json (profiles: {', '.join(profiles)})")
    try:
        experiments = parse_experiments(profiles[profile].get("experiments") or [])
    except ValueError as error:
        raise SystemExit(f"cdk.json profiles.{profile}.{error}") from error
    if not experiments:
        return {}
    return {v.name: dict(v.params) for v in experiments[0].variants}


def evaluate_online(
    events: Sequence[dict[str, Any]],
    *,
    api: Api,
    wait_until_idle: Callable[[], None],
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
    k: int = DEFAULT_K,
    max_queries: int = DEFAULT_ONLINE_QUERIES,
    span_seconds: float = 1800.0,
    variant_params: Mapping[str, Mapping[str, Any]] | None = None,
    log: Callable[[str], None] = lambda _line: None,
) -> Report:
    """The offline protocol through the running pipeline's API.

    All events are re-timed with one mapping (tools.replay's ``--speed 0`` mapping over the whole
    selection: order and relative gaps kept, squeezed into `span_seconds` before now), so held-out events
    continue the training stream. An in-memory mirror folds the same re-timed events, giving the
    baselines and covisit-v1 offline on exactly the same stream and queries (``covisit-v1 (mirror)``).
    """
    train, test = split_events(events, train_fraction)
    known = known_users(train)
    report = Report(k, _split_info(train, test, known, train_fraction, False))
    first, last = source_time(events[0]), source_time(events[-1])
    retimer = Retimer.for_speed(0, first, last, now=time.time(), span_seconds=span_seconds)
    salt = uuid.uuid4().hex  # fresh event ids: a pipeline that saw this file before does not drop them
    sender = Replayer(api.base_url, api.producer_key)
    summary = ReplaySummary()

    mirror = ReferenceFold(OFFLINE_CONFIG)
    mirror_models: dict[str, Callable[[str, int], list[str]]] = {
        name: covisit_model(mirror, params) for name, params in (variant_params or {}).items()
    }
    default_mirror = covisit_model(mirror)
    baselines = {MODEL_RECENT: recent_model(mirror), MODEL_POPULARITY: popularity_model(mirror)}
    seq = 0
    pending: list[dict[str, Any]] = []

    def stamp(event: dict[str, Any]) -> dict[str, Any]:
        nonlocal seq
        timed = to_schema_event(event, format_timestamp(retimer(source_time(event))), id_salt=salt)
        seq += 1
        mirror.apply_dict(timed, sequence_number=seq)
        return timed

    def flush() -> None:
        summary.sent += len(pending)
        for start in range(0, len(pending), 500):
            outcome = sender.send(pending[start : start + 500], summary)
            if outcome.failed or outcome.rejected:
                log(f"batch: {len(outcome.rejected)} rejected, {len(outcome.failed)} failed")
        pending.clear()
        wait_until_idle()

    started = time.monotonic()
    pending.extend(stamp(event) for event in train)
    flush()
    log(f"training part sent: {summary.accepted} accepted in {time.monotonic() - started:.1f} s")
    variants: dict[str, int] = {}
    queries = 0
    for event in test:
        if queries >= max_queries:
            break
        if event["user_id"] in known:
            if pending:
                flush()
            queries += 1
            body = api.recommendations(event["user_id"], k)
            variant = str(body.get("variant"))
            variants[variant] = variants.get(variant, 0) + 1
            items = [entry["item_id"] for entry in body.get("items", [])]
            report.add(f"{MODEL_NAME} (online)", items, event["item_id"], event["event_type"])
            mirror_ask = mirror_models.get(variant, default_mirror)
            report.add(
                f"{MODEL_NAME} (mirror)",
                mirror_ask(event["user_id"], k),
                event["item_id"],
                event["event_type"],
            )
            for name, ask in baselines.items():
                report.add(name, ask(event["user_id"], k), event["item_id"], event["event_type"])
            if queries % 50 == 0:
                log(f"{queries} queries")
        pending.append(stamp(event))
    report.notes.update(
        {
            "variants": variants,
            "replay": summary.to_dict(),
            "retime_scale_source_seconds_per_second": round(retimer.scale, 1),
            "elapsed_seconds": round(time.monotonic() - started, 1),
        }
    )
    return report


# --- Command line ----------------------------------------------------------------------------------
def _parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, _, raw = pair.partition("=")
        params[name] = json.loads(raw)
    return params


def _print(report: Report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
        return
    split = report.split
    print(
        f"{split['part']}: {split['train_events']} training events (until {split['train_until']}), "
        f"{split['held_out_events']} held out (until {split['held_out_until']}); "
        f"{split['known_users']} known users"
    )
    print(report.table())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="HitRate@k and MRR@k of covisit-v1 and baselines on a time split."
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode in ("offline", "online"):
        p = sub.add_parser(mode)
        p.add_argument("--events", type=Path, default=DEFAULT_EVENTS)
        p.add_argument("--train-fraction", type=float, default=DEFAULT_TRAIN_FRACTION)
        p.add_argument("--k", type=int, default=DEFAULT_K)
        p.add_argument("--limit", type=int, help="use only the first N lines of the file")
        p.add_argument("--json", action="store_true")
    offline = sub.choices["offline"]
    offline.add_argument("--max-queries", type=int)
    offline.add_argument("--validation", action="store_true", help="split inside the training part (tuning)")
    offline.add_argument("--param", action="append", default=[], help="model parameter name=value (JSON)")
    online = sub.choices["online"]
    online.add_argument("--max-queries", type=int, default=DEFAULT_ONLINE_QUERIES)
    online.add_argument("--profile", default="dev")
    online.add_argument("--span-seconds", type=float, default=1800.0)
    online.add_argument(
        "--attach", type=Path, help="use a running pipeline's endpoint.json instead of starting one"
    )
    args = parser.parse_args(argv)

    events = load_events(args.events, args.limit)
    if args.mode == "offline":
        report = evaluate_offline(
            events,
            train_fraction=args.train_fraction,
            k=args.k,
            max_queries=args.max_queries,
            params=_parse_params(args.param),
            validation=args.validation,
        )
        _print(report, args.json)
        return 0

    def log(line: str) -> None:
        print(f"evaluate: {line}", file=sys.stderr, flush=True)

    variants = variant_params(args.profile)
    if args.attach:
        endpoint = json.loads(args.attach.read_text(encoding="utf-8"))
        api = Api(endpoint["base_url"], endpoint["api_keys"]["producer"], endpoint["api_keys"]["reader"])
        report = evaluate_online(
            events,
            api=api,
            wait_until_idle=lambda: time.sleep(5.0),  # no handle on the runtime: give the stream time
            train_fraction=args.train_fraction,
            k=args.k,
            max_queries=args.max_queries,
            span_seconds=args.span_seconds,
            variant_params=variants,
            log=log,
        )
    else:
        from local_emulator.pipeline import LocalPipeline

        log("starting the local pipeline")
        with LocalPipeline.start(profile=args.profile) as pipeline:
            api = Api(pipeline.base_url, pipeline.api_keys["producer"], pipeline.api_keys["reader"])
            report = evaluate_online(
                events,
                api=api,
                wait_until_idle=lambda: pipeline.wait_until_idle(timeout_s=600.0),
                train_fraction=args.train_fraction,
                k=args.k,
                max_queries=args.max_queries,
                span_seconds=args.span_seconds,
                variant_params=variants,
                log=log,
            )
    _print(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
