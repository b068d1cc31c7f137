"""The DynamoDB form of every row: key attributes, version, TTL and one compact binary attribute.

DynamoDB bills a write per started KB of the item (attribute names included), and a user row is
written once per batch its user appears in, so rows are stored compactly: everything but the key, the
version (write conditions) and the TTL (DynamoDB's TTL needs a top-level number) goes into one msgpack
blob with a table of the row's distinct strings; ids that are decimal numbers (as in the Taobao data)
are stored as integers. Encoding is lossless: `decode(encode(row)) == row`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from streamrec_core.constants import ATTR_DATA, ATTR_VERSION, EVENT_TYPES, TTL_ATTRIBUTE
from streamrec_core.features.counters import CounterRow
from streamrec_core.features.item_aggregates import ItemRow, Neighbour
from streamrec_core.features.keys import (
    Key,
    category_of,
    experiment_key,
    experiment_of,
    item_key,
    item_of,
    key_attributes,
    kind_of,
    partial_key,
    progress_key,
    trending_key,
    user_key,
)
from streamrec_core.features.progress import ProgressRow
from streamrec_core.features.trending import PartialRow, Trend, TrendEntry, TrendingList
from streamrec_core.features.user_fold import (
    AFFINITY_STEPS,
    HistoryEntry,
    OutboxEntry,
    RecentId,
    UserRow,
    Watermark,
    whole_second,
)

Row = UserRow | ItemRow | PartialRow | TrendingList | CounterRow | ProgressRow
FORMAT: Final = 1
_TYPE_CODES: Final = {name: code for code, name in enumerate(EVENT_TYPES)}
_SHARD_RE = re.compile(r"shardId-([0-9]{12})")
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


class _Strings:
    """A row's table of distinct strings; decimal ids are kept as integers (fewer bytes)."""

    __slots__ = ("index", "values")

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.values: list[int | str] = []

    def ref(self, value: str) -> int:
        found = self.index.get(value)
        if found is None:
            found = self.index[value] = len(self.values)
            self.values.append(_compact(value))
        return found


def _compact(value: str) -> int | str:
    if 0 < len(value) <= 18 and value.isdigit() and value.isascii() and (value[0] != "0" or value == "0"):
        return int(value)
    return value


def _expand(values: list[Any]) -> list[str]:
    return [value if type(value) is str else str(value) for value in values]


def _shard_out(shard_id: str) -> int | str:
    match = _SHARD_RE.fullmatch(shard_id)
    return int(match.group(1)) if match else shard_id


def _shard_in(value: int | str) -> str:
    return f"shardId-{value:012d}" if type(value) is int else str(value)


def _seq_out(sequence_number: str) -> int | bytes | str:
    if (
        sequence_number.isdigit()
        and sequence_number.isascii()
        and str(int(sequence_number)) == sequence_number
    ):
        number = int(sequence_number)
        if number < 2**64:
            return number
        return number.to_bytes((number.bit_length() + 7) // 8, "big")
    return sequence_number


def _seq_in(value: int | bytes | str) -> str:
    if type(value) is bytes:
        return str(int.from_bytes(value, "big"))
    return str(value)


def _marks_out(marks: Mapping[str, Watermark]) -> list[Any]:
    flat: list[Any] = []
    for shard, mark in marks.items():
        flat += (_shard_out(shard), _seq_out(mark.sequence_number), mark.arrival_ms)
    return flat


def _marks_in(flat: list[Any]) -> dict[str, Watermark]:
    return {_shard_in(flat[i]): Watermark(_seq_in(flat[i + 1]), flat[i + 2]) for i in range(0, len(flat), 3)}


# --- users ---------------------------------------------------------------------------------------------


def _user_blob(row: UserRow) -> bytes:
    strings = _Strings()
    ref = strings.ref
    last = row.last_event_ms
    # Times as differences (history: to the previous entry, by event time; others: to the newest event),
    # which store in 1-3 bytes where epoch milliseconds take 9. History and digest times are whole seconds
    # (user_fold.whole_second) and are stored in seconds.
    history: list[int] = []
    previous = whole_second(last)
    for entry in row.history:
        history += (
            ref(entry.item),
            ref(entry.category),
            _TYPE_CODES[entry.event_type],
            (entry.time_ms - previous) // 1000,
        )
        previous = whole_second(entry.time_ms)
    counts = [row.counts.get(name, 0) for name in EVENT_TYPES]
    while counts and counts[-1] == 0:
        counts.pop()
    affinity: list[int] = []
    for name, score in row.affinity.items():
        affinity += (ref(name), round(score * AFFINITY_STEPS))
    newest = row.recent[-1].received_ms if row.recent else 0
    recent_ages = [(newest - r.received_ms) // 1000 for r in row.recent]
    outbox: list[int] = []
    for e in row.outbox:
        outbox += (
            ref(e.shard_id),
            e.seqtag,
            last - e.arrival_ms,
            ref(e.category),
            ref(e.pred),
            ref(e.pred_category),
            e.flags,
        )
    body = [
        FORMAT,
        last,
        counts,
        history,
        affinity,
        last - row.affinity_at,
        [ref(item) for item in row.bought],
        b"".join(r.digest for r in row.recent),
        last - newest,
        recent_ages,
        _marks_out(row.watermarks),
        outbox,
        last - row.outbox_floor_ms,
        strings.values,
    ]
    return _encode(body)


def _user_row(user_id: str, version: int, expires_at: int, blob: bytes) -> UserRow:
    (
        _format,
        last,
        counts,
        history,
        affinity,
        affinity_age,
        bought,
        digests,
        newest_age,
        recent_ages,
        marks,
        outbox,
        floor_age,
        values,
    ) = _decode(blob)
    s = _expand(values)
    newest = last - newest_age
    times: list[int] = []
    previous = whole_second(last)
    for i in range(3, len(history), 4):
        previous += history[i] * 1000
        times.append(previous)
    return UserRow(
        user_id=user_id,
        version=version,
        expires_at=expires_at,
        last_event_ms=last,
        counts={EVENT_TYPES[i]: n for i, n in enumerate(counts) if n},
        history=[
            HistoryEntry(s[history[i]], EVENT_TYPES[history[i + 2]], times[i // 4], s[history[i + 1]])
            for i in range(0, len(history), 4)
        ],
        affinity={s[affinity[i]]: affinity[i + 1] / AFFINITY_STEPS for i in range(0, len(affinity), 2)},
        affinity_at=last - affinity_age,
        bought=[s[i] for i in bought],
        recent=[
            RecentId(digests[6 * i : 6 * i + 6], newest - age * 1000) for i, age in enumerate(recent_ages)
        ],
        watermarks=_marks_in(marks),
        outbox=[
            OutboxEntry(
                s[outbox[i]],
                outbox[i + 1],
                last - outbox[i + 2],
                s[outbox[i + 3]],
                s[outbox[i + 4]],
                s[outbox[i + 5]],
                outbox[i + 6],
            )
            for i in range(0, len(outbox), 7)
        ],
        outbox_floor_ms=last - floor_age,
    )


# --- items ---------------------------------------------------------------------------------------------
def _item_blob(row: ItemRow) -> bytes:
    strings = _Strings()
    ref = strings.ref
    neighbours: list[int] = []
    for other, (score, category) in row.neighbours.items():
        neighbours += (ref(other), score, ref(category))
    return _encode([FORMAT, ref(row.category), neighbours, _marks_out(row.watermarks), strings.values])


def _item_row(item_id: str, version: int, expires_at: int, blob: bytes) -> ItemRow:
    _format, category, neighbours, marks, values = _decode(blob)
    s = _expand(values)
    return ItemRow(
        item_id=item_id,
        version=version,
        expires_at=expires_at,
        category=s[category],
        neighbours={
            s[neighbours[i]]: Neighbour(neighbours[i + 1], s[neighbours[i + 2]])
            for i in range(0, len(neighbours), 3)
        },
        watermarks=_marks_in(marks),
    )


# --- trending ------------------------------------------------------------------------------------------
def _partial_blob(row: PartialRow) -> bytes:
    strings = _Strings()
    ref = strings.ref
    entries: list[Any] = []
    for item, (score, hour, category) in row.entries.items():
        entries += (ref(item), score, row.max_hour - hour, ref(category))
    mark = _marks_out({row.shard_id: row.watermark}) if row.watermark else []
    return _encode([FORMAT, row.max_hour, entries, mark, strings.values])


def _partial_row(shard_id: str, version: int, expires_at: int, blob: bytes) -> PartialRow:
    _format, max_hour, entries, mark, values = _decode(blob)
    s = _expand(values)
    marks = _marks_in(mark)
    return PartialRow(
        shard_id=shard_id,
        version=version,
        expires_at=expires_at,
        entries={
            s[entries[i]]: TrendEntry(float(entries[i + 1]), max_hour - entries[i + 2], s[entries[i + 3]])
            for i in range(0, len(entries), 4)
        },
        max_hour=max_hour,
        watermark=marks.get(shard_id),
    )


def _list_blob(row: TrendingList) -> bytes:
    strings = _Strings()
    ref = strings.ref
    items: list[Any] = []
    for item, score, category in row.items:
        items += (ref(item), score, ref(category))
    return _encode([FORMAT, row.merged_ms, items, strings.values])


def _list_row(category: str | None, version: int, expires_at: int, blob: bytes) -> TrendingList:
    _format, merged_ms, items, values = _decode(blob)
    s = _expand(values)
    return TrendingList(
        category=category,
        version=version,
        expires_at=expires_at,
        items=[Trend(s[items[i]], float(items[i + 1]), s[items[i + 2]]) for i in range(0, len(items), 3)],
        merged_ms=merged_ms,
    )


# --- counters ------------------------------------------------------------------------------------------
def _counter_blob(row: CounterRow) -> bytes:
    return _encode([FORMAT, row.impressions, row.clicks, row.purchases, _marks_out(row.watermarks)])


def _counter_row(key: Key, version: int, expires_at: int, blob: bytes) -> CounterRow:
    _format, impressions, clicks, purchases, marks = _decode(blob)
    experiment_id, variant = experiment_of(key)
    return CounterRow(
        experiment_id=experiment_id,
        variant=variant,
        version=version,
        expires_at=expires_at,
        impressions=impressions,
        clicks=clicks,
        purchases=purchases,
        watermarks=_marks_in(marks),
    )


# --- branch progress -----------------------------------------------------------------------------------
def _progress_blob(row: ProgressRow) -> bytes:
    return _encode([FORMAT, row.arrival_ms, _seq_out(row.sequence_number) if row.sequence_number else ""])


def _progress_row(key: Key, version: int, expires_at: int, blob: bytes) -> ProgressRow:
    _format, arrival_ms, sequence = _decode(blob)
    branch = key.pk.split("#", 1)[1]
    return ProgressRow(
        branch, key.sk, version, expires_at, arrival_ms, _seq_in(sequence) if sequence != "" else ""
    )


# --- rows <-> items -----------------------------------------------------------------------------------
def key_of(row: Row) -> Key:
    """The key a row is stored under."""
    if isinstance(row, UserRow):
        return user_key(row.user_id)
    if isinstance(row, ItemRow):
        return item_key(row.item_id)
    if isinstance(row, PartialRow):
        return partial_key(row.shard_id)
    if isinstance(row, TrendingList):
        return trending_key(row.category)
    if isinstance(row, ProgressRow):
        return progress_key(row.branch, row.shard_id)
    return experiment_key(row.experiment_id, row.variant)


def blob_of(row: Row) -> bytes:
    if isinstance(row, UserRow):
        return _user_blob(row)
    if isinstance(row, ItemRow):
        return _item_blob(row)
    if isinstance(row, PartialRow):
        return _partial_blob(row)
    if isinstance(row, TrendingList):
        return _list_blob(row)
    if isinstance(row, ProgressRow):
        return _progress_blob(row)
    return _counter_blob(row)


def to_item(row: Row, version: int | None = None) -> dict[str, dict[str, Any]]:
    """The DynamoDB item (typed attributes) of a row, stored with `version` (default: the row's)."""
    item: dict[str, dict[str, Any]] = {k: {"S": v} for k, v in key_attributes(key_of(row)).items()}
    item[ATTR_VERSION] = {"N": str(row.version if version is None else version)}
    if row.expires_at:
        item[TTL_ATTRIBUTE] = {"N": str(row.expires_at)}
    item[ATTR_DATA] = {"B": blob_of(row)}
    return item


DECODE_ERRORS: Final = (
    msgspec.DecodeError,
    msgspec.ValidationError,
    KeyError,
    TypeError,
    ValueError,
    IndexError,
)


def from_item(key: Key, item: Mapping[str, Mapping[str, Any]]) -> Row:
    """The row a DynamoDB item holds; one of DECODE_ERRORS when it does not hold one."""
    version = int(item[ATTR_VERSION]["N"])
    ttl = item.get(TTL_ATTRIBUTE)
    expires_at = int(ttl["N"]) if ttl else 0
    blob = item[ATTR_DATA]["B"]
    kind = kind_of(key)
    if kind == "user":
        return _user_row(key.pk, version, expires_at, blob)
    if kind == "item":
        return _item_row(item_of(key), version, expires_at, blob)
    if kind == "partial":
        return _partial_row(key.sk, version, expires_at, blob)
    if kind == "list":
        return _list_row(category_of(key), version, expires_at, blob)
    if kind == "progress":
        return _progress_row(key, version, expires_at, blob)
    return _counter_row(key, version, expires_at, blob)


def new_row(key: Key) -> Row:
    """The row a key holds before anything was written to it (version 0)."""
    kind = kind_of(key)
    if kind == "user":
        return UserRow(key.pk)
    if kind == "item":
        return ItemRow(item_of(key))
    if kind == "partial":
        return PartialRow(key.sk)
    if kind == "list":
        return TrendingList(category_of(key))
    if kind == "progress":
        return ProgressRow(key.pk.split("#", 1)[1], key.sk)
    return CounterRow(*experiment_of(key))
