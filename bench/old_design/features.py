# The previous design, frozen for the benchmarks' same-run baselines: lambdas/streamrec_core/features.py
# at 6aa4c9a (main before issue 12), unchanged but for its imports. Do not edit: bench/old_design/__init__.py.
"""Feature logic: how one event changes the feature rows. Pure Python, no AWS.

A *row* is a plain dict holding exactly the attributes stored in DynamoDB (keys included), so the
feature store can write it as is and serve, tools and tests can read it back. Rows are addressed by a
`Key` = (table, partition key, sort key): ``("users", user_id, "")`` or ``("items", pk, sk)``.

Every state change is a per-event fold: ``plan_event`` decides what a record does (apply it, skip it as
already applied or as a client resend, apply it as late) and which rows it touches, ``apply_event``
changes those rows. The process function folds a shard's records in sequence order and commits the
touched rows of consecutive records atomically (see docs/processing.md); the offline evaluation and the
tests fold the same functions over an in-memory dict (`MemoryFeatures`). Because the fold is per event,
the result does not depend on where batch boundaries fall.

Numbers: counts and popularity weights are integers (exact, order-independent sums); decayed scores
are floats. Sequence numbers are compared as integers but stored as strings (AWS's have 56 digits,
more than a DynamoDB number holds).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from bench.old_design.constants import (
    ATTR_VERSION,
    DEFAULT_EXPERIMENT_ID,
    EXPERIMENT_CLICKS,
    EXPERIMENT_ID_ATTR,
    EXPERIMENT_IMPRESSIONS,
    EXPERIMENT_PK_PREFIX,
    EXPERIMENT_PURCHASES,
    EXPERIMENT_VARIANT_ATTR,
    EXPERIMENT_VARIANT_SK_PREFIX,
    ITEM_CATEGORY,
    ITEM_COUNTS,
    ITEM_COVISIT,
    ITEM_ID_ATTR,
    ITEM_MAX_HOUR,
    ITEM_PK_PREFIX,
    ITEM_POPULARITY,
    ITEM_PROFILE_SK,
    ITEM_SCORE,
    ITEMS_PK,
    ITEMS_SK,
    RECORD_RECEIVED_AT,
    TRENDING_CATEGORY_PK_PREFIX,
    TRENDING_ENTRIES,
    TRENDING_GLOBAL_PK,
    TRENDING_SLOT_SK_PREFIX,
    TTL_ATTRIBUTE,
    USER_AFFINITY,
    USER_AFFINITY_AT,
    USER_BOUGHT,
    USER_COUNTS,
    USER_HISTORY,
    USER_LAST_EVENT_AT,
    USER_RECENT_IDS,
    USER_WATERMARKS,
    USERS_PK,
)

Key = tuple[str, str, str]
Row = dict[str, Any]

USERS: Final = "users"
ITEMS: Final = "items"

HOUR_MS: Final = 3_600_000

# Evidence of interest per event type: purchase > cart > favourite > view (DESIGN, covisit-v1).
TYPE_WEIGHTS: Final[Mapping[str, int]] = {
    "view": 1,
    "click": 1,
    "favorite": 2,
    "add_to_cart": 3,
    "purchase": 4,
}
# Event types that change item features when they name an item.
ITEM_EVENT_TYPES: Final = frozenset(TYPE_WEIGHTS)
# Attributed event types counted per experiment variant, and the counter each increments.
EXPERIMENT_COUNTERS: Final[Mapping[str, str]] = {
    "impression": EXPERIMENT_IMPRESSIONS,
    "click": EXPERIMENT_CLICKS,
    "purchase": EXPERIMENT_PURCHASES,
}

# What a record does (plan_event's verdict).
APPLY: Final = "apply"  # a new event: user row, item rows, trending, experiment counters
LATE: Final = "late"  # a new event later than the allowed lateness: user row (+ experiment counters) only
DUPLICATE: Final = "duplicate"  # a client resend of an applied event_id: only the watermark moves
SEEN: Final = "seen"  # sequence number at or below the user's watermark: already processed, no effect


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """Tunables of the feature fold. Caps keep every row far below DynamoDB's 400 KB item limit."""

    user_ttl_seconds: int
    item_ttl_seconds: int
    allowed_lateness_ms: int
    trending_slots: int
    history_cap: int = 50
    recent_ids_cap: int = 200
    bought_cap: int = 50
    affinity_cap: int = 20
    affinity_half_life_ms: int = 3 * 24 * HOUR_MS
    session_gap_ms: int = 30 * 60_000
    covisit_partners: int = 5
    covisit_max: int = 100  # when a neighbour map grows past this ...
    covisit_keep: int = 75  # ... it is cut to the best this many (amortizes the sort)
    popularity_window_hours: int = 48
    trending_half_life_hours: float = 6.0
    trending_max: int = 100
    trending_keep: int = 75
    # A watermark entry of a shard that has not written the row for this long is dropped: no record of
    # that shard can be delivered again by then (record age, on-failure queue retention, redrive).
    watermark_horizon_ms: int = 30 * 24 * HOUR_MS
    watermark_cap: int = 32

    def __post_init__(self) -> None:
        if self.trending_slots < 1:
            raise ValueError("trending_slots must be >= 1")
        if not 0 < self.covisit_keep <= self.covisit_max:
            raise ValueError("need 0 < covisit_keep <= covisit_max")
        if not 0 < self.trending_keep <= self.trending_max:
            raise ValueError("need 0 < trending_keep <= trending_max")


@dataclass(slots=True)
class Event:
    """One validated record, as the fold sees it."""

    event_id: str
    event_type: str
    user_id: str
    item_id: str | None
    category: str | None
    time_ms: int  # event time
    received_ms: int  # ingest receipt time (fixed in the record, so lateness is deterministic)
    shard_id: str
    seq: int
    sequence_number: str
    arrival_ms: int  # Kinesis approximate arrival time
    experiment_id: str | None = None
    variant: str | None = None
    digest: str = ""  # event_digest(event_id), computed once

    def id_digest(self) -> str:
        if not self.digest:
            self.digest = event_digest(self.event_id)
        return self.digest


# --- Time -------------------------------------------------------------------------------------------
_HOUR_PREFIX_CACHE: dict[str, int] = {}


def timestamp_ms(value: str) -> int:
    """Epoch milliseconds of an RFC 3339 timestamp (fast path: the normalized form, ms and 'Z')."""
    if len(value) == 24 and value[-1] == "Z" and value[19] == ".":
        prefix = value[:13]
        base = _HOUR_PREFIX_CACHE.get(prefix)
        if base is None:
            base = int(datetime.fromisoformat(prefix + ":00:00+00:00").timestamp()) * 1000
            if len(_HOUR_PREFIX_CACHE) > 10_000:
                _HOUR_PREFIX_CACHE.clear()
            _HOUR_PREFIX_CACHE[prefix] = base
        return base + int(value[14:16]) * 60_000 + int(value[17:19]) * 1000 + int(value[20:23])
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def event_from_record(
    event: Mapping[str, Any], *, shard_id: str, sequence_number: str, arrival_ms: int
) -> Event:
    """Build the fold's view of a validated, normalized event (schema v1 plus `received_at`)."""
    time_ms = timestamp_ms(event["timestamp"])
    received = event.get(RECORD_RECEIVED_AT)
    attribution = event.get("attribution")
    experiment_id = variant = None
    if isinstance(attribution, Mapping):
        variant = attribution.get("variant")
        experiment_id = attribution.get("experiment_id") or DEFAULT_EXPERIMENT_ID
    return Event(
        event_id=event["event_id"],
        event_type=event["event_type"],
        user_id=event["user_id"],
        item_id=event.get("item_id"),
        category=event.get("category"),
        time_ms=time_ms,
        received_ms=timestamp_ms(received) if isinstance(received, str) else time_ms,
        shard_id=shard_id,
        seq=int(sequence_number),
        sequence_number=sequence_number,
        arrival_ms=arrival_ms,
        experiment_id=experiment_id,
        variant=variant,
    )


def event_digest(event_id: str) -> str:
    """What the user row keeps of an event id for dedup: 64 bits of BLAKE2b, 11 base64url characters.

    Client ids run up to 64 characters (UUIDs: 36); 200 of them would make every user row several KB
    heavier, and every write of it costlier. Two different ids of one user collide with probability
    about 200 / 2**64 per event: negligible.
    """
    digest = hashlib.blake2b(event_id.encode("utf-8"), digest_size=8).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


# --- Keys -------------------------------------------------------------------------------------------
def user_key(user_id: str) -> Key:
    return (USERS, user_id, "")


def item_key(item_id: str) -> Key:
    return (ITEMS, ITEM_PK_PREFIX + item_id, ITEM_PROFILE_SK)


def trending_pk(category: str | None) -> str:
    return TRENDING_GLOBAL_PK if category is None else TRENDING_CATEGORY_PK_PREFIX + category


def trending_key(category: str | None, slot: int) -> Key:
    """Trending slot `slot` of the global list (category None) or of one category's list."""
    return (ITEMS, trending_pk(category), f"{TRENDING_SLOT_SK_PREFIX}{slot}")


def trending_keys(category: str | None, slots: int) -> list[Key]:
    """Every slot of one trending list: what a reader merges."""
    return [trending_key(category, slot) for slot in range(slots)]


def experiment_key(experiment_id: str, variant: str) -> Key:
    return (ITEMS, EXPERIMENT_PK_PREFIX + experiment_id, EXPERIMENT_VARIANT_SK_PREFIX + variant)


_SLOTS: dict[tuple[str, int], int] = {}


def slot_for_shard(shard_id: str, slots: int) -> int:
    """The trending slot a shard writes first: a stable hash of the shard id.

    Any slot is correct (readers sum every slot). Keeping a shard's contributions in one row keeps its
    share of every item whole under the per-row cap; the process function moves a shard to another slot
    only after a version conflict (concurrent lanes, ParallelizationFactor > 1), see `other_slot`.
    """
    slot = _SLOTS.get((shard_id, slots))
    if slot is None:
        if len(_SLOTS) > 4096:
            _SLOTS.clear()
        slot = _SLOTS[(shard_id, slots)] = zlib.crc32(shard_id.encode("utf-8")) % slots
    return slot


def other_slot(slot: int, slots: int, draw: float) -> int:
    """A slot other than `slot`, chosen by `draw` in [0, 1): where a batch moves after a version conflict."""
    if slots <= 1:
        return slot
    return (slot + 1 + min(int(draw * (slots - 1)), slots - 2)) % slots


def key_attributes(key: Key) -> dict[str, str]:
    """The DynamoDB key attributes of a key."""
    table, pk, sk = key
    if table == USERS:
        return {USERS_PK: pk}
    return {ITEMS_PK: pk, ITEMS_SK: sk}


def new_row(key: Key) -> Row:
    """The row a key holds before anything was written to it (version 0 = not in the table)."""
    table, pk, sk = key
    if table == USERS:
        return {
            USERS_PK: pk,
            ATTR_VERSION: 0,
            USER_HISTORY: [],
            USER_AFFINITY: {},
            USER_AFFINITY_AT: 0,
            USER_COUNTS: {},
            USER_RECENT_IDS: [],
            USER_BOUGHT: [],
            USER_LAST_EVENT_AT: 0,
            USER_WATERMARKS: {},
            TTL_ATTRIBUTE: 0,
        }
    row: Row = {ITEMS_PK: pk, ITEMS_SK: sk, ATTR_VERSION: 0}
    if pk.startswith(ITEM_PK_PREFIX):
        row.update(
            {
                ITEM_ID_ATTR: pk[len(ITEM_PK_PREFIX) :],
                ITEM_CATEGORY: "",
                ITEM_POPULARITY: {},
                ITEM_MAX_HOUR: 0,
                ITEM_SCORE: 0.0,
                ITEM_COVISIT: {},
                ITEM_COUNTS: {},
                TTL_ATTRIBUTE: 0,
            }
        )
    elif pk.startswith(EXPERIMENT_PK_PREFIX):
        row.update(
            {
                EXPERIMENT_ID_ATTR: pk[len(EXPERIMENT_PK_PREFIX) :],
                EXPERIMENT_VARIANT_ATTR: sk[len(EXPERIMENT_VARIANT_SK_PREFIX) :],
                EXPERIMENT_IMPRESSIONS: 0,
                EXPERIMENT_CLICKS: 0,
                EXPERIMENT_PURCHASES: 0,
            }
        )
    else:  # trending slot
        row.update({TRENDING_ENTRIES: {}, ITEM_MAX_HOUR: 0, TTL_ATTRIBUTE: 0})
    return row


# --- Decay ------------------------------------------------------------------------------------------
class _Decay:
    """0.5 ** (steps / half_life) with a table for small integer steps."""

    __slots__ = ("half_life", "table")

    def __init__(self, half_life: float, size: int = 512) -> None:
        self.half_life = half_life
        self.table = [0.5 ** (step / half_life) for step in range(size)]

    def __call__(self, steps: int) -> float:
        if steps < len(self.table):
            return self.table[steps]
        return 0.5 ** (steps / self.half_life)


_DECAYS: dict[float, _Decay] = {}


def hour_decay(half_life_hours: float) -> _Decay:
    decay = _DECAYS.get(half_life_hours)
    if decay is None:
        decay = _DECAYS[half_life_hours] = _Decay(half_life_hours)
    return decay


def decayed(score: float, hour: int, to_hour: int, half_life_hours: float) -> float:
    """A score kept at `hour`, decayed to `to_hour` (never grown when `to_hour` is earlier)."""
    if to_hour <= hour:
        return float(score)
    return float(score) * hour_decay(half_life_hours)(to_hour - hour)


# --- Planning and applying one event ----------------------------------------------------------------
@dataclass(slots=True)
class Plan:
    """What one record will do and the rows it touches (the user row first)."""

    verdict: str
    keys: list[Key]
    category: str = ""
    partners: tuple[tuple[str, str], ...] = ()  # (item_id, category) paired with this event's item
    # Keys apply_event uses, computed once by plan_event (set for every APPLY plan of an item event).
    item: Key | None = None
    partner_keys: tuple[Key, ...] = ()
    trending: tuple[Key, ...] = ()


def event_category(rows: Mapping[Key, Row], event: Event) -> str:
    """The event's category, else the item's stored category, else ''."""
    if event.category:
        return event.category
    if event.item_id is not None:
        profile = rows.get(item_key(event.item_id))
        if profile is not None:
            return profile.get(ITEM_CATEGORY) or ""
    return ""


def covisit_partners(
    history: list[list[Any]], event: Event, cfg: FeatureConfig
) -> tuple[tuple[str, str], ...]:
    """Items the event's item is paired with: the user's latest distinct items before it, in one session.

    Taken from the user's stored history as it stands before the event, so a redelivery of the same
    events in the same order always forms the same pairs.
    """
    item = event.item_id
    time_ms = event.time_ms
    start = time_ms - cfg.session_gap_ms
    limit = cfg.covisit_partners
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index in range(len(history) - 1, -1, -1):
        other, _type, when, category = history[index]
        if when > time_ms:
            continue
        if when < start:
            break
        if other == item or other in seen:
            continue
        seen.add(other)
        found.append((other, category))
        if len(found) >= limit:
            break
    return tuple(found)


def user_watermark(user: Row | None, shard_id: str) -> int | None:
    if user is None:
        return None
    entry = user[USER_WATERMARKS].get(shard_id)
    return None if entry is None else int(entry[0])


def plan_event(
    rows: Mapping[Key, Row],
    event: Event,
    cfg: FeatureConfig,
    *,
    redrive: bool = False,
    slot: int | None = None,
) -> Plan:
    """Decide what `event` does given the current rows (read-only), and which rows it touches.

    `slot` is the trending slot the event adds to (default: `slot_for_shard` of its shard).

    `rows` must hold the user's row and the event item's profile when they exist (absent = new).
    In redrive mode a sequence number at or below the watermark does not prove the record was applied
    (the event source mapping skipped a range and went on); the user's recent event ids decide instead.
    """
    ukey = (USERS, event.user_id, "")
    user = rows.get(ukey)
    if user is not None:
        entry = user[USER_WATERMARKS].get(event.shard_id)
        if entry is not None and not redrive and event.seq <= int(entry[0]):
            return Plan(SEEN, [])
        if event.id_digest() in user[USER_RECENT_IDS]:
            return Plan(DUPLICATE, [ukey])
    keys = [ukey]
    event_type = event.event_type
    if event.variant is not None and event_type in EXPERIMENT_COUNTERS:
        keys.append(experiment_key(event.experiment_id or DEFAULT_EXPERIMENT_ID, event.variant))
    item_id = event.item_id
    ikey = None if item_id is None else (ITEMS, ITEM_PK_PREFIX + item_id, ITEM_PROFILE_SK)
    category = event.category
    if not category:
        category = ""
        if ikey is not None:
            profile = rows.get(ikey)
            if profile is not None:
                category = profile.get(ITEM_CATEGORY) or ""
    if event.received_ms - event.time_ms > cfg.allowed_lateness_ms:
        return Plan(LATE, keys, category)
    if ikey is None or event_type not in ITEM_EVENT_TYPES:
        return Plan(APPLY, keys, category)
    partners = covisit_partners(user[USER_HISTORY], event, cfg) if user is not None else ()
    keys.append(ikey)
    partner_keys = tuple([(ITEMS, ITEM_PK_PREFIX + other, ITEM_PROFILE_SK) for other, _ in partners])
    keys.extend(partner_keys)
    if slot is None:
        slot = slot_for_shard(event.shard_id, cfg.trending_slots)
    trending = _slot_keys(slot, category)
    keys.extend(trending)
    return Plan(APPLY, keys, category, partners, ikey, partner_keys, trending)


_SLOT_KEYS: dict[tuple[int, str], tuple[Key, ...]] = {}


def _slot_keys(slot: int, category: str) -> tuple[Key, ...]:
    """The trending slot keys an event in `category` adds to in `slot`: global, then the category's."""
    found = _SLOT_KEYS.get((slot, category))
    if found is None:
        global_key = trending_key(None, slot)
        found = (global_key, trending_key(category, slot)) if category else (global_key,)
        if len(_SLOT_KEYS) > 65_536:
            _SLOT_KEYS.clear()
        _SLOT_KEYS[(slot, category)] = found
    return found


def apply_event(rows: MutableMapping[Key, Row], event: Event, plan: Plan, cfg: FeatureConfig) -> None:
    """Apply a planned event to the rows (creating absent rows). SEEN plans do nothing."""
    verdict = plan.verdict
    if verdict == SEEN:
        return
    keys = plan.keys
    get = rows.get
    for key in keys:
        if get(key) is None:
            rows[key] = new_row(key)
    user = rows[keys[0]]
    _advance_watermark(user, event, cfg)
    if verdict == DUPLICATE:
        return
    _apply_user(user, event, plan.category, cfg)
    if event.variant is not None:
        counter = EXPERIMENT_COUNTERS.get(event.event_type)
        if counter is not None:
            rows[experiment_key(event.experiment_id or DEFAULT_EXPERIMENT_ID, event.variant)][counter] += 1
    if verdict == LATE or event.item_id is None or event.event_type not in ITEM_EVENT_TYPES:
        return
    _apply_item(rows, event, plan, cfg)


def _advance_watermark(user: Row, event: Event, cfg: FeatureConfig) -> None:
    marks: dict[str, list[Any]] = user[USER_WATERMARKS]
    entry = marks.get(event.shard_id)
    if entry is None or int(entry[0]) < event.seq:
        marks[event.shard_id] = [event.sequence_number, event.arrival_ms]
    if len(marks) > 1:
        horizon = event.arrival_ms - cfg.watermark_horizon_ms
        for shard in [s for s, (_seq, arrival) in marks.items() if arrival < horizon]:
            del marks[shard]
        if len(marks) > cfg.watermark_cap:
            oldest = sorted(marks, key=lambda s: (marks[s][1], s))[: len(marks) - cfg.watermark_cap]
            for shard in oldest:
                del marks[shard]


def _apply_user(user: Row, event: Event, category: str, cfg: FeatureConfig) -> None:
    event_type = event.event_type
    time_ms = event.time_ms
    counts = user[USER_COUNTS]
    counts[event_type] = counts.get(event_type, 0) + 1
    ids: list[str] = user[USER_RECENT_IDS]
    ids.append(event.id_digest())
    cap = cfg.recent_ids_cap
    if len(ids) > cap:
        del ids[: len(ids) - cap]
    if time_ms > user[USER_LAST_EVENT_AT]:
        user[USER_LAST_EVENT_AT] = time_ms
    expires = event.received_ms // 1000 + cfg.user_ttl_seconds
    if expires > user[TTL_ATTRIBUTE]:
        user[TTL_ATTRIBUTE] = expires
    item_id = event.item_id
    if item_id is None or event_type not in ITEM_EVENT_TYPES:
        return
    history: list[list[Any]] = user[USER_HISTORY]
    entry = [item_id, event_type, time_ms, category]
    if not history or history[-1][2] <= time_ms:
        history.append(entry)
    else:  # out of order within the lateness: keep the history sorted by event time
        index = len(history)
        while index > 0 and history[index - 1][2] > time_ms:
            index -= 1
        history.insert(index, entry)
    cap = cfg.history_cap
    if len(history) > cap:
        del history[: len(history) - cap]
    if event_type == "purchase":
        bought: list[str] = user[USER_BOUGHT]
        if item_id in bought:
            bought.remove(item_id)
        bought.append(item_id)
        if len(bought) > cfg.bought_cap:
            del bought[: len(bought) - cfg.bought_cap]
    if category:
        _add_affinity(user, category, TYPE_WEIGHTS[event_type], time_ms, cfg)


def _add_affinity(user: Row, category: str, weight: int, time_ms: int, cfg: FeatureConfig) -> None:
    scores: dict[str, float] = user[USER_AFFINITY]
    ref = user[USER_AFFINITY_AT]
    half_life = cfg.affinity_half_life_ms
    if time_ms > ref:
        if scores and ref:
            factor = 0.5 ** ((time_ms - ref) / half_life)
            user[USER_AFFINITY] = scores = {name: float(value) * factor for name, value in scores.items()}
        user[USER_AFFINITY_AT] = time_ms
        scores[category] = float(scores.get(category, 0.0)) + weight
    else:
        scores[category] = float(scores.get(category, 0.0)) + weight * 0.5 ** ((ref - time_ms) / half_life)
    if len(scores) > cfg.affinity_cap:
        weakest = min(scores, key=lambda name: (scores[name], name))
        del scores[weakest]


def _apply_item(rows: MutableMapping[Key, Row], event: Event, plan: Plan, cfg: FeatureConfig) -> None:
    item = event.item_id
    assert item is not None
    event_type = event.event_type
    weight = TYPE_WEIGHTS[event_type]
    hour = event.time_ms // HOUR_MS
    item_expires = event.received_ms // 1000 + cfg.item_ttl_seconds
    category = plan.category
    ikey, partner_keys, trending = plan.item, plan.partner_keys, plan.trending
    assert ikey is not None, "only plan_event's item plans reach the item rows"
    profile = rows[ikey]
    if event.category:
        profile[ITEM_CATEGORY] = event.category
    counts = profile[ITEM_COUNTS]
    counts[event_type] = counts.get(event_type, 0) + 1
    decay = hour_decay(cfg.trending_half_life_hours)
    _add_popularity(profile, hour, weight, cfg, decay)
    if item_expires > profile[TTL_ATTRIBUTE]:
        profile[TTL_ATTRIBUTE] = item_expires
    if partner_keys:
        covisit_max = cfg.covisit_max
        neighbours = profile[ITEM_COVISIT]
        for (other, other_category), partner_key in zip(plan.partners, partner_keys, strict=True):
            # _add_neighbour(profile, other, other_category, weight, cfg), inlined
            entry = neighbours.get(other)
            if entry is None:
                neighbours[other] = [weight, other_category]
                if len(neighbours) > covisit_max:
                    _cut_neighbours(profile, cfg)
                    neighbours = profile[ITEM_COVISIT]
            else:
                entry[0] += weight
                if other_category and not entry[1]:
                    entry[1] = other_category
            partner = rows[partner_key]
            _add_neighbour(partner, item, category, weight, cfg)
            if item_expires > partner[TTL_ATTRIBUTE]:
                partner[TTL_ATTRIBUTE] = item_expires
    for slot_key in trending:
        _add_trending(rows[slot_key], item, category, hour, weight, item_expires, cfg, decay)


def _add_popularity(
    profile: Row, hour: int, weight: int, cfg: FeatureConfig, decay: _Decay | None = None
) -> None:
    """Event-time hour buckets, windowed relative to the latest hour seen; score = decayed sum.

    The kept buckets are those within the window of the highest hour ever seen, whatever the order
    events arrive in, so the buckets are a function of the set of applied events.
    """
    buckets: dict[str, int] = profile[ITEM_POPULARITY]
    max_hour = profile[ITEM_MAX_HOUR]
    window = cfg.popularity_window_hours
    if decay is None:
        decay = hour_decay(cfg.trending_half_life_hours)
    table = decay.table
    size = len(table)
    if hour > max_hour:
        profile[ITEM_MAX_HOUR] = max_hour = hour
        if buckets:
            floor = hour - window
            stale = [h for h in buckets if int(h) <= floor]
            for name in stale:
                del buckets[name]
        name = str(hour)
        buckets[name] = buckets.get(name, 0) + weight
        if len(buckets) == 1:  # the usual case: only this hour's bucket (0 steps back)
            profile[ITEM_SCORE] = sum([buckets[name] * table[0]])
            return
        # sum() of a list, as before (sum's float rounding differs from a loop of += on Python >= 3.12)
        profile[ITEM_SCORE] = sum(
            [
                count * (table[steps] if (steps := hour - int(h)) < size else decay(steps))
                for h, count in buckets.items()
            ]
        )
        return
    if hour <= max_hour - window:
        return  # older than the window: counted (ITEM_COUNTS) but no longer popular
    name = str(hour)
    buckets[name] = buckets.get(name, 0) + weight
    steps = max_hour - hour
    factor = table[steps] if steps < size else decay(steps)
    profile[ITEM_SCORE] = float(profile[ITEM_SCORE]) + weight * factor


def _add_neighbour(profile: Row, other: str, other_category: str, weight: int, cfg: FeatureConfig) -> None:
    neighbours: dict[str, list[Any]] = profile[ITEM_COVISIT]
    entry = neighbours.get(other)
    if entry is None:
        neighbours[other] = [weight, other_category]
        if len(neighbours) > cfg.covisit_max:
            _cut_neighbours(profile, cfg)
    else:
        entry[0] += weight
        if other_category and not entry[1]:
            entry[1] = other_category


def _cut_neighbours(profile: Row, cfg: FeatureConfig) -> None:
    neighbours: dict[str, list[Any]] = profile[ITEM_COVISIT]
    ranked = sorted(neighbours.items(), key=lambda kv: (-kv[1][0], kv[0]))
    profile[ITEM_COVISIT] = dict(ranked[: cfg.covisit_keep])


def _add_trending(
    slot_row: Row,
    item: str,
    category: str,
    hour: int,
    weight: int,
    expires: int,
    cfg: FeatureConfig,
    decay: _Decay | None = None,
) -> None:
    """One shard's decayed contribution to an item's trending score (a sharded counter per slot)."""
    entries: dict[str, list[Any]] = slot_row[TRENDING_ENTRIES]
    if decay is None:
        decay = hour_decay(cfg.trending_half_life_hours)
    table = decay.table
    entry = entries.get(item)
    if entry is None:
        entries[item] = [float(weight), hour, category]
    else:
        score, at = float(entry[0]), entry[1]
        if hour >= at:
            steps = hour - at
            entry[0] = score * (table[steps] if steps < len(table) else decay(steps)) + weight
            entry[1] = hour
        else:
            steps = at - hour
            entry[0] = score + weight * (table[steps] if steps < len(table) else decay(steps))
        if category and not entry[2]:
            entry[2] = category
    if hour > slot_row[ITEM_MAX_HOUR]:
        slot_row[ITEM_MAX_HOUR] = hour
    if expires > slot_row[TTL_ATTRIBUTE]:
        slot_row[TTL_ATTRIBUTE] = expires
    if len(entries) > cfg.trending_max:
        # Rank by score decayed to the slot's newest hour (as `decayed` computes it), then item id.
        now_hour = slot_row[ITEM_MAX_HOUR]
        size = len(table)
        ranked = []
        append = ranked.append
        for name, (score, at, _category) in entries.items():
            score = float(score)
            if now_hour > at:
                steps = now_hour - at
                score = score * (table[steps] if steps < size else decay(steps))
            append((-score, name))
        ranked.sort()
        slot_row[TRENDING_ENTRIES] = {name: entries[name] for _score, name in ranked[: cfg.trending_keep]}


# --- Reading helpers shared by serve, ranking and tools ---------------------------------------------
def merge_trending(slot_rows: Iterable[Row | None], half_life_hours: float) -> list[tuple[str, float, str]]:
    """Merge a trending list's slots: (item, score decayed to the newest hour, category), best first.

    Each slot holds a share of an item's decayed score (from whichever batches wrote that slot), so an
    item's score is the sum of its shares, all decayed to the same hour.
    """
    rows = [row for row in slot_rows if row]
    if not rows:
        return []
    now_hour = max(int(row.get(ITEM_MAX_HOUR, 0)) for row in rows)
    totals: dict[str, float] = {}
    categories: dict[str, str] = {}
    for row in rows:
        for item, (score, hour, category) in row.get(TRENDING_ENTRIES, {}).items():
            totals[item] = totals.get(item, 0.0) + decayed(score, int(hour), now_hour, half_life_hours)
            if category and item not in categories:
                categories[item] = category
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(item, score, categories.get(item, "")) for item, score in ranked]


# --- An in-memory fold (offline evaluation, reference model in tests) -------------------------------
class MemoryFeatures:
    """Folds events into an in-memory table of rows with the same logic the process function uses.

    `apply(event_dict, shard_id, sequence_number)` takes a normalized event (schema v1 fields, optional
    `received_at`); records with the same shard must come in increasing sequence number order.
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self.rows: dict[Key, Row] = {}
        self.verdicts: dict[str, int] = {APPLY: 0, LATE: 0, DUPLICATE: 0, SEEN: 0}

    def apply(
        self,
        event: Mapping[str, Any],
        shard_id: str = "offline",
        sequence_number: str | int = 0,
        arrival_ms: int | None = None,
    ) -> str:
        parsed = event_from_record(
            event,
            shard_id=shard_id,
            sequence_number=str(sequence_number),
            arrival_ms=arrival_ms if arrival_ms is not None else timestamp_ms(event["timestamp"]),
        )
        return self.apply_event(parsed)

    def apply_event(self, event: Event) -> str:
        plan = plan_event(self.rows, event, self.cfg)
        apply_event(self.rows, event, plan, self.cfg)
        self.verdicts[plan.verdict] += 1
        return plan.verdict

    def user(self, user_id: str) -> Row | None:
        return self.rows.get(user_key(user_id))

    def item(self, item_id: str) -> Row | None:
        return self.rows.get(item_key(item_id))

    def trending(self, category: str | None = None) -> list[tuple[str, float, str]]:
        slots = [self.rows.get(key) for key in trending_keys(category, self.cfg.trending_slots)]
        return merge_trending(slots, self.cfg.trending_half_life_hours)
