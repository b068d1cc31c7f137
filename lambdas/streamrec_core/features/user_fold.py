"""The user fold: how one user's events change their row, the hot path's only write.

The process function reads a user's row, folds the user's records of the batch into it in sequence
order and writes it back once, conditional on the version it read. A record's verdict:

- SEEN: its sequence number is at or below the user's watermark for its shard: already applied;
- DUPLICATE: its event id's digest is among the user's recent ones (a client resend): only the
  watermark moves;
- LATE: received later than the allowed lateness after its event time: the user's own features only;
- APPLY: everything.

What the aggregate branches need from the hot path goes into the row's *outbox*: for every record with
an item effect (APPLY of an item event) or an experiment effect (an attributed impression, click or
purchase, APPLY or LATE) an entry names the record (low 32 bits of its sequence number), the category
the fold resolved for its item and the item the user looked at just before it in the session (its
co-visitation partner). The aggregators read the row, find the record's entry and apply exactly that;
a record without an entry has no aggregate effect. See docs/processing.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.events import COUNTED_TYPES, ITEM_EVENT_TYPES, TYPE_WEIGHTS, Event

APPLY: Final = "apply"
LATE: Final = "late"
DUPLICATE: Final = "duplicate"
SEEN: Final = "seen"
VERDICTS: Final = (APPLY, LATE, DUPLICATE, SEEN)

# Affinity scores are kept in 1/256 steps: exact in a float, and small integers in the stored row.
AFFINITY_STEPS: Final = 256
# Outbox entry flags: which aggregate branch the record feeds, and whether redrive applied it (then
# redrive also applies its aggregate effects, once; the aggregate branches, long past it, leave it).
ITEM_EFFECT: Final = 1
EXPERIMENT_EFFECT: Final = 2
REDRIVEN: Final = 4


class HistoryEntry(NamedTuple):
    item: str
    event_type: str
    time_ms: int  # event time, to the second (`whole_second`: a stored row keeps seconds)
    category: str


class RecentId(NamedTuple):
    """An applied event id's digest and when ingest received the event (the dedup window)."""

    digest: bytes
    received_ms: int  # to the second, like history times


def whole_second(ms: int) -> int:
    """Times a user row keeps per entry are whole seconds: they store in 1-3 bytes where milliseconds
    take 3-5, and no feature needs finer (sessions, decay and the dedup window are minutes and hours)."""
    return ms - ms % 1000


class Watermark(NamedTuple):
    """The highest sequence number of one shard applied to a row, and its arrival time (for pruning)."""

    sequence_number: str
    arrival_ms: int


class OutboxEntry(NamedTuple):
    shard_id: str  # with `seqtag`, names the record (sequence numbers are per shard)
    seqtag: int  # low 32 bits of the record's sequence number
    arrival_ms: int
    category: str  # the item's category as the fold resolved it ('' unknown)
    pred: str  # the user's item just before this one in the session ('' none)
    pred_category: str
    flags: int  # ITEM_EFFECT | EXPERIMENT_EFFECT


@dataclass(slots=True)
class UserRow:
    user_id: str
    version: int = 0  # committed writes; 0 = not in the table
    expires_at: int = 0  # TTL, epoch seconds
    last_event_ms: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # event type -> distinct events
    history: list[HistoryEntry] = field(default_factory=list)  # by event time, oldest first
    affinity: dict[str, float] = field(default_factory=dict)  # category -> score decayed to affinity_at
    affinity_at: int = 0
    bought: list[str] = field(default_factory=list)  # latest last
    recent: list[RecentId] = field(default_factory=list)
    watermarks: dict[str, Watermark] = field(default_factory=dict)
    outbox: list[OutboxEntry] = field(default_factory=list)
    # Every record with an aggregate effect that arrived at or after this time has its outbox entry.
    outbox_floor_ms: int = 0

    def watermark(self, shard_id: str) -> int | None:
        mark = self.watermarks.get(shard_id)
        return None if mark is None else int(mark.sequence_number)

    def outbox_entry(self, shard_id: str, tag: int) -> OutboxEntry | None:
        for entry in reversed(self.outbox):
            if entry.seqtag == tag and entry.shard_id == shard_id:
                return entry
        return None


def fold(row: UserRow, event: Event, cfg: FeatureConfig, *, redrive: bool = False) -> str:
    """Apply one event to its user's row; return the verdict.

    `redrive=True` is for records re-read after the event source mapping gave up on them: later records
    may have raised the watermark past them, so only the recent event ids decide what was applied.
    """
    if not redrive:
        mark = row.watermarks.get(event.shard_id)
        if mark is not None and int(mark.sequence_number) >= event.seq:
            return SEEN
    digest = event.digest
    for recent in row.recent:
        if recent.digest == digest:
            _advance_watermark(row.watermarks, event, cfg.watermark_horizon_ms, cfg.watermark_cap)
            return DUPLICATE
    _advance_watermark(row.watermarks, event, cfg.watermark_horizon_ms, cfg.watermark_cap)
    late = event.received_ms - event.time_ms > cfg.allowed_lateness_ms
    item = event.item_id
    item_event = item is not None and event.event_type in ITEM_EVENT_TYPES
    category = event.category
    if not category and item is not None:
        category = known_category(row.history, item)
    flags = 0
    pred = pred_category = ""
    if item_event and not late:
        flags = ITEM_EFFECT
        pred, pred_category = predecessor(row.history, event, cfg.session_gap_ms)
    if event.variant is not None and event.event_type in COUNTED_TYPES:
        flags |= EXPERIMENT_EFFECT
    _apply_user(row, event, digest, category, item_event, cfg)
    if flags and redrive:
        flags |= REDRIVEN
    if flags:
        row.outbox.append(
            OutboxEntry(event.shard_id, event.seqtag, event.arrival_ms, category, pred, pred_category, flags)
        )
    _trim_outbox(row, event.arrival_ms, cfg)
    return LATE if late else APPLY


# Arrival times are approximate: an entry is released this long after its branch consumed its arrival.
RELEASE_MARGIN_MS: Final = 1_000


def release(row: UserRow, consumed: Mapping[tuple[int, str], int]) -> None:
    """Drop the outbox entries every branch that needs them has consumed.

    `consumed` maps (outbox flag, shard id) to the arrival time up to which the branch reading that flag
    has consumed the shard (from `features.progress`); a branch that has not reported consumes nothing.
    Consumed entries need no floor: their records resolve to "no effect", which their rows' watermarks
    already record.
    """
    if not row.outbox:
        return
    kept = []
    for entry in row.outbox:
        needed = False
        for flag in (ITEM_EFFECT, EXPERIMENT_EFFECT):
            if entry.flags & flag and entry.arrival_ms + RELEASE_MARGIN_MS > consumed.get(
                (flag, entry.shard_id), 0
            ):
                needed = True
        if needed:
            kept.append(entry)
    row.outbox = kept


def redrive_uncertain(row: UserRow, event: Event, cfg: FeatureConfig) -> bool:
    """A redriven record below the watermark whose id may be older than the kept digests: applying it
    may count it twice (the RedriveUncertain metric)."""
    mark = row.watermark(event.shard_id)
    if mark is None or event.seq > mark or not row.recent:
        return False
    # Digest times are whole seconds: a record of the oldest kept digest's second may be older than it.
    return len(row.recent) >= cfg.dedup_min and row.recent[0].received_ms >= whole_second(event.received_ms)


def predecessor(history: list[HistoryEntry], event: Event, gap_ms: int) -> tuple[str, str]:
    """(item, category) the user looked at last before this event in the same session, or ('', '').

    Taken from the history as it stands before the event, so the same events in the same order always
    give the same pairs. One partner per event, both directions (features.item_aggregates): consecutive
    items carry the co-visitation signal (Taobao split: HitRate@10 0.1806 -> 0.1810 and MRR@10
    0.095 -> 0.101 against the five latest items), and each event touches at most two item rows.
    """
    time_ms = event.time_ms
    start = time_ms - gap_ms
    item = event.item_id
    for index in range(len(history) - 1, -1, -1):
        entry = history[index]
        if entry.time_ms > time_ms:
            continue
        if entry.time_ms < start:
            break
        if entry.item != item:
            return entry.item, entry.category
    return "", ""


def known_category(history: list[HistoryEntry], item: str) -> str:
    """The category the user's history gives an item ('' when none)."""
    for index in range(len(history) - 1, -1, -1):
        entry = history[index]
        if entry.item == item and entry.category:
            return entry.category
    return ""


def _advance_watermark(marks: dict[str, Watermark], event: Event, horizon_ms: int, cap: int) -> None:
    mark = marks.get(event.shard_id)
    if mark is None or int(mark.sequence_number) < event.seq:
        marks[event.shard_id] = Watermark(event.sequence_number, event.arrival_ms)
    prune_watermarks(marks, event.arrival_ms, horizon_ms, cap)


def prune_watermarks(marks: dict[str, Watermark], now_ms: int, horizon_ms: int, cap: int) -> None:
    """Drop shards idle for longer than the horizon, then the least recent beyond `cap`."""
    if len(marks) <= 1:
        return
    floor = now_ms - horizon_ms
    for shard in [shard for shard, mark in marks.items() if mark.arrival_ms < floor]:
        del marks[shard]
    if len(marks) > cap:
        for shard in sorted(marks, key=lambda s: (marks[s].arrival_ms, s))[: len(marks) - cap]:
            del marks[shard]


def _apply_user(
    row: UserRow, event: Event, digest: bytes, category: str, item_event: bool, cfg: FeatureConfig
) -> None:
    event_type = event.event_type
    time_ms = event.time_ms
    row.counts[event_type] = row.counts.get(event_type, 0) + 1
    recent = row.recent
    recent.append(RecentId(digest, whole_second(event.received_ms)))
    _trim_recent(recent, event.received_ms, cfg)
    if time_ms > row.last_event_ms:
        row.last_event_ms = time_ms
    expires = event.received_ms // 1000 + cfg.user_ttl_seconds
    if expires > row.expires_at:
        row.expires_at = expires
    if not item_event:
        return
    item = event.item_id
    assert item is not None
    history = row.history
    second = whole_second(time_ms)
    entry = HistoryEntry(item, event_type, second, category)
    if not history or history[-1].time_ms <= second:
        history.append(entry)
    else:  # out of order within the lateness: keep the history sorted by event time
        index = len(history)
        while index > 0 and history[index - 1].time_ms > second:
            index -= 1
        history.insert(index, entry)
    if len(history) > cfg.history_cap:
        del history[: len(history) - cfg.history_cap]
    if event_type == "purchase":
        bought = row.bought
        if item in bought:
            bought.remove(item)
        bought.append(item)
        if len(bought) > cfg.bought_cap:
            del bought[: len(bought) - cfg.bought_cap]
    if category:
        _add_affinity(row, category, TYPE_WEIGHTS[event_type], time_ms, cfg)


def _trim_recent(recent: list[RecentId], received_ms: int, cfg: FeatureConfig) -> None:
    """Keep digests received within the window; always the latest dedup_min, never more than dedup_cap."""
    excess = len(recent) - cfg.dedup_min
    if excess <= 0:
        return
    floor = received_ms - cfg.dedup_window_ms
    drop = 0
    while drop < excess and recent[drop].received_ms < floor:
        drop += 1
    drop = max(drop, len(recent) - cfg.dedup_cap)
    if drop:
        del recent[:drop]


def _trim_outbox(row: UserRow, arrival_ms: int, cfg: FeatureConfig) -> None:
    outbox = row.outbox
    if not outbox:
        return
    floor = arrival_ms - cfg.outbox_retention_ms
    drop = 0
    while drop < len(outbox) and outbox[drop].arrival_ms < floor:
        drop += 1
    drop = max(drop, len(outbox) - cfg.outbox_cap)
    if drop:
        row.outbox_floor_ms = max(row.outbox_floor_ms, max(e.arrival_ms for e in outbox[:drop]) + 1)
        del outbox[:drop]


def _add_affinity(row: UserRow, category: str, weight: int, time_ms: int, cfg: FeatureConfig) -> None:
    """Decayed category scores, kept in 1/AFFINITY_STEPS steps (they store as small integers)."""
    scores = row.affinity
    ref = row.affinity_at
    half_life = cfg.affinity_half_life_ms
    if time_ms > ref:
        if scores and ref:
            factor = 0.5 ** ((time_ms - ref) / half_life)
            row.affinity = scores = {name: _step(value * factor) for name, value in scores.items()}
        row.affinity_at = time_ms
        scores[category] = _step(scores.get(category, 0.0) + weight)
    else:
        scores[category] = _step(scores.get(category, 0.0) + weight * 0.5 ** ((ref - time_ms) / half_life))
    if len(scores) > cfg.affinity_cap:
        weakest = min(scores, key=lambda name: (scores[name], name))
        del scores[weakest]


def _step(score: float) -> float:
    return round(score * AFFINITY_STEPS) / AFFINITY_STEPS
