"""The aggregate branches: item co-visitation and trending, and experiment counters, off the hot path.

Each branch is a Kinesis event source mapping of its own on the events stream (larger batches and a
batching window; the experiment branch filtered to records carrying `attribution`), with
ParallelizationFactor 1: one invocation per shard at a time, records in sequence order.

A batch:
1. decodes its records (records that can never be applied are the hot path's to dead-letter; here they
   are only counted);
2. resolves each record against its user's row (eventually consistent reads): the hot path's outbox says
   whether the record has an aggregate effect and with which session partner. A record the hot path has
   not processed yet stops the batch there (after a short wait): what follows is retried later (the
   branch mappings never give up: they wait for the hot path). A record older than the hot path's
   maximum record age that it still has not applied was given up by the hot path's mapping: it is
   skipped (counted), and redrive applies it and its aggregates later;
3. reads the rows the effects touch, applies to each row only the records above the row's watermark for
   this shard, and writes each row once, conditional on its version. A conflict (another shard's
   aggregator wrote the row) re-reads and re-applies; throttling is retried with backoff and then the
   batch resumes at the first record of a row it could not write;
4. records how far it has consumed the shard (`features.progress`), so the hot path can release the
   outbox entries no branch needs any more;
5. (items branch) rewrites the merged trending lists when they are due, from every shard's partial.

Redrive (`redriven=True`) is for records redrive has just applied to the user rows after the hot path's
mapping gave up on them: the branches moved past those records long ago, so their effects are applied
regardless of the rows' watermarks (which stay as they are), once: redrive passes only the records it
applied in this run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from streamrec_core.backoff import WriteRetries
from streamrec_core.constants import EXPERIMENTS_BRANCH, ITEMS_BRANCH
from streamrec_core.features.codec import Row, key_of, new_row
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.counters import CounterRow, count
from streamrec_core.features.events import Event
from streamrec_core.features.item_aggregates import (
    NOT_READY,
    UNRESOLVED,
    Effect,
    ItemRow,
    PairUpdate,
    apply_update,
    mark_applied,
    pair_updates,
    pending,
    resolve,
)
from streamrec_core.features.keys import Key, experiment_key, item_key, partial_key, trending_key, user_key
from streamrec_core.features.progress import ProgressRow
from streamrec_core.features.store import CONFLICT, THROTTLED, WRITTEN, RowStore, StoreError, Unreadable
from streamrec_core.features.trending import PartialRow, TrendingList, add, merge
from streamrec_core.features.user_fold import UserRow, Watermark
from streamrec_core.gc_pause import gc_paused
from streamrec_core.kinesis import KinesisRecord, decode_batch

LIST_TTL_SECONDS = 86_400  # merged lists no merge refreshed for a day expire


@dataclass
class AggregateResult:
    """What a batch did; `failed_sequence_number` is where the event source mapping must resume."""

    failed_sequence_number: str | None = None
    records: int = 0
    effects: int = 0  # records with an effect on this branch
    no_effect: int = 0
    invalid: int = 0
    not_ready: int = 0  # records left for a retry because the hot path had not processed them
    given_up: int = 0  # records the hot path's mapping gave up on (older than its maximum record age)
    unresolved: int = 0  # records whose outbox entry had expired (aggregator lag beyond the retention)
    rows_written: int = 0
    conflicts: int = 0
    throttles: int = 0
    merged: bool = False
    # (experiment id, variant, event type) -> count (per-variant metrics, experiments branch)
    counted: dict[tuple[str, str, str], int] = field(default_factory=dict)


class _Branch:
    """What both branches share: resolving records against user rows, and writing rows exactly once."""

    branch: str  # the name of the branch's progress rows

    def __init__(
        self,
        store: RowStore,
        cfg: FeatureConfig,
        *,
        hot_path_max_record_age_s: int | None = None,
        clock: Callable[[], float] = time.time,
        not_ready_wait_s: float = 2.0,
        retries: WriteRetries | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.hot_path_max_record_age_s = hot_path_max_record_age_s
        self.clock = clock
        self.not_ready_wait_s = not_ready_wait_s
        self.retries = retries or WriteRetries()
        self.sleep = sleep

    def process(self, records: Sequence[KinesisRecord], *, redriven: bool = False) -> AggregateResult:
        """Apply the batch's effects (one shard's records, in order) and say where to resume, if anywhere."""
        with gc_paused():  # see streamrec_core.gc_pause
            return self._process(records, redriven)

    def _process(self, records: Sequence[KinesisRecord], redriven: bool) -> AggregateResult:
        raise NotImplementedError

    def _resolve(
        self, records: Sequence[KinesisRecord], result: AggregateResult, redriven: bool
    ) -> tuple[list[tuple[Event, Effect]], int | None]:
        """(event, effect) of the batch's prefix the hot path has processed; where that prefix stops."""
        events, letters = decode_batch(records)
        result.records = len(records)
        result.invalid = len(letters)
        users = self.store.get_many({user_key(e.user_id) for e in events}, consistent=False)
        waited = 0.0
        while True:
            late = [e for e in events if resolve(_user(users, e), e, redriven=redriven)[0] == NOT_READY]
            if not late or waited >= self.not_ready_wait_s:
                break
            step = min(0.25, self.not_ready_wait_s - waited)
            self.sleep(step)
            waited += step
            users.update(self.store.get_many({user_key(e.user_id) for e in late}, consistent=True))
        resolved: list[tuple[Event, Effect]] = []
        given_up_before = self._given_up_before()
        for event in events:
            outcome, effect = resolve(_user(users, event), event, redriven=redriven)
            if outcome == NOT_READY and event.arrival_ms < given_up_before:
                result.given_up += 1
                continue
            if outcome == NOT_READY:
                result.not_ready = sum(1 for e in events if e.seq >= event.seq)
                return resolved, event.seq
            if outcome == UNRESOLVED:
                result.unresolved += 1
            elif effect is not None and self._wants(effect):
                resolved.append((event, effect))
            else:
                result.no_effect += 1
        return resolved, None

    def _wants(self, effect: Effect) -> bool:
        raise NotImplementedError

    def _given_up_before(self) -> int:
        """Arrival time before which a record the hot path has not applied was given up by its mapping
        (records older than its maximum record age are discarded; a minute of margin)."""
        if self.hot_path_max_record_age_s is None or self.hot_path_max_record_age_s < 0:
            return -1
        return int((self.clock() - self.hot_path_max_record_age_s - 60) * 1000)

    def _record_progress(self, records: Sequence[KinesisRecord], stop: int | None) -> None:
        """Write how far this branch has consumed the shard: up to the record before `stop`, or all."""
        done = [r for r in records if stop is None or r.seq < stop]
        if not done:
            return
        last = max(done, key=lambda r: r.seq)
        row = ProgressRow(
            self.branch, last.shard_id, arrival_ms=last.arrival_ms, sequence_number=last.sequence_number
        )
        row.expires_at = last.arrival_ms // 1000 + self.cfg.item_ttl_seconds
        self.store.put_many([row], conditional=False)

    def _write(
        self,
        keys: Iterable[Key],
        apply: Callable[[Row], Event | None],
        first_seq: dict[Key, int],
        result: AggregateResult,
    ) -> int | None:
        """Read, change (`apply` returns the last record applied, None if none) and write each row;
        the first sequence number of a row that could not be written, or None."""
        pending_keys = list(keys)
        retries = self.retries.fresh()
        consistent = False
        while True:
            if not pending_keys:
                return None
            stored = self.store.get_many(pending_keys, consistent=consistent)
            changed: list[Row] = []
            for key in pending_keys:
                row = stored.get(key) or new_row(key)
                if isinstance(row, Unreadable):  # fail: the branch stops at this shard and pages until fixed
                    raise StoreError(f"an aggregate row does not decode ({row.reason})")
                if apply(row) is not None:
                    changed.append(row)
            outcomes = self.store.put_many(changed)
            retry = [key_of(row) for row in changed if outcomes[key_of(row)] in (CONFLICT, THROTTLED)]
            result.rows_written += len(changed) - len(retry)
            throttled = any(outcomes[key] == THROTTLED for key in retry)
            result.conflicts += sum(1 for key in retry if outcomes[key] == CONFLICT)
            result.throttles += sum(1 for key in retry if outcomes[key] == THROTTLED)
            pending_keys = retry
            if not retry:
                return None
            consistent = True
            if not retries.again(throttled=throttled, sleep=self.sleep):
                break
        return min(first_seq[key] for key in pending_keys)


class ItemAggregator(_Branch):
    """Co-visitation rows and this shard's trending partial; merges the trending lists when due."""

    branch = ITEMS_BRANCH

    def _wants(self, effect: Effect) -> bool:
        return effect.item_effect

    def _process(self, records: Sequence[KinesisRecord], redriven: bool) -> AggregateResult:
        result = AggregateResult()
        resolved, stop = self._resolve(records, result, redriven)
        result.effects = len(resolved)
        updates: dict[Key, list[tuple[Event, Effect, PairUpdate]]] = {}
        for event, effect in resolved:
            for update in pair_updates(effect):
                updates.setdefault(item_key(update.item), []).append((event, effect, update))
        first_seq = {key: changes[0][0].seq for key, changes in updates.items()}
        shard = records[0].shard_id if records else ""
        if resolved:
            first_seq[partial_key(shard)] = resolved[0][0].seq

        def apply(row: Row) -> Event | None:
            if isinstance(row, PartialRow):
                return self._add_trending(row, resolved, redriven)
            assert isinstance(row, ItemRow)
            last = None
            for event, effect, update in updates[key_of(row)]:
                if redriven or pending(row.watermarks, event):
                    apply_update(row, update, effect, self.cfg)
                    last = event
            if last is not None and not redriven:
                mark_applied(row.watermarks, last, self.cfg)
            return last

        failed = self._write(first_seq, apply, first_seq, result)
        stops = [seq for seq in (stop, failed) if seq is not None]
        if stops:
            result.failed_sequence_number = _sequence_number(records, min(stops))
        if not redriven:
            self._record_progress(records, min(stops) if stops else None)
        result.merged = self.merge_if_due()
        return result

    def _add_trending(
        self, partial: PartialRow, resolved: list[tuple[Event, Effect]], redriven: bool
    ) -> Event | None:
        mark = int(partial.watermark.sequence_number) if partial.watermark else -1
        last = None
        for event, effect in resolved:
            if redriven or event.seq > mark:
                add(partial, effect.item, effect.category, effect.hour, effect.weight, self.cfg)
                expires = effect.received_ms // 1000 + self.cfg.item_ttl_seconds
                partial.expires_at = max(partial.expires_at, expires)
                last = event
        if last is not None and not redriven:
            partial.watermark = Watermark(last.sequence_number, last.arrival_ms)
        return last

    def merge_if_due(self) -> bool:
        """Rewrite the merged trending lists from every partial if the last merge is older than the
        interval. The global list's version elects one merger among concurrent aggregators."""
        now_ms = int(self.clock() * 1000)
        current = self.store.get_many([trending_key()], consistent=False).get(trending_key())
        if isinstance(current, TrendingList) and now_ms - current.merged_ms < self.cfg.merge_interval_ms:
            return False
        overall, by_category = merge(self.store.query_partials(), self.cfg)
        if not overall:
            return False  # nothing trends yet
        expires = now_ms // 1000 + LIST_TTL_SECONDS
        head = current if isinstance(current, TrendingList) else TrendingList(None)
        head.items, head.merged_ms, head.expires_at = overall, now_ms, expires
        if self.store.put_many([head])[trending_key()] != WRITTEN:
            return False  # another aggregator merged first (or capacity): it will be due again soon
        lists = [
            TrendingList(category, items=items, merged_ms=now_ms, expires_at=expires)
            for category, items in by_category.items()
        ]
        self.store.put_many(lists, conditional=False)
        return True


class ExperimentCounter(_Branch):
    """Impressions, clicks and purchases per experiment variant (the filtered A/B mapping)."""

    branch = EXPERIMENTS_BRANCH

    def _wants(self, effect: Effect) -> bool:
        return effect.experiment_effect and effect.variant is not None

    def _process(self, records: Sequence[KinesisRecord], redriven: bool) -> AggregateResult:
        result = AggregateResult()
        resolved, stop = self._resolve(records, result, redriven)
        result.effects = len(resolved)
        by_key: dict[Key, list[tuple[Event, Effect]]] = {}
        for event, effect in resolved:
            key = experiment_key(effect.experiment_id or "", effect.variant or "")
            by_key.setdefault(key, []).append((event, effect))
        first_seq = {key: changes[0][0].seq for key, changes in by_key.items()}

        def apply(row: Row) -> Event | None:
            assert isinstance(row, CounterRow)
            last = None
            for event, effect in by_key[key_of(row)]:
                if redriven or pending(row.watermarks, event):
                    count(row, effect.event_type)
                    last = event
            if last is not None and not redriven:
                mark_applied(row.watermarks, last, self.cfg)
            return last

        failed = self._write(first_seq, apply, first_seq, result)
        if failed is None:
            for _event, effect in resolved:
                triple = (effect.experiment_id or "", effect.variant or "", effect.event_type)
                result.counted[triple] = result.counted.get(triple, 0) + 1
        stops = [seq for seq in (stop, failed) if seq is not None]
        if stops:
            result.failed_sequence_number = _sequence_number(records, min(stops))
        if not redriven:
            self._record_progress(records, min(stops) if stops else None)
        return result


def _user(users: dict[Key, Row | Unreadable | None], event: Event) -> UserRow | None:
    """The event's user row; an unreadable one counts as not yet applied (the hot path cannot apply the
    record either, and its redrive after the fix will)."""
    row = users.get(user_key(event.user_id))
    return row if isinstance(row, UserRow) else None


def _sequence_number(records: Sequence[KinesisRecord], seq: int) -> str:
    return next(r.sequence_number for r in records if r.seq == seq)
