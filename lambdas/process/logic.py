"""The hot path: a batch of Kinesis records into the users' rows, with an exactly-once effect.

No boto3 here: the feature store and the dead-letter queue come in through ports, so the same logic runs
in the Lambda handler, in redrive, in the benchmarks and against in-memory stores.

1. Decode every record; one that can never be applied (not base64, not JSON, breaks a field rule,
   oversized) goes to the dead-letter port with its payload and reason and never blocks the shard.
2. Read the rows of the batch's users (one BatchGetItem per 100 users). The first read is eventually
   consistent (half the read units): a stale copy can only be older than the stored row, so the
   conditional write below fails and the retry reads consistently; nothing is applied on a stale base.
3. Fold each user's records into their row in sequence order (`features.user_fold`).
4. Write each changed row once, conditional on the version read (concurrent PutItem calls). A user row
   has one writer (its shard's lane), so conflicts are rare (a timed-out invocation still running): the
   loser re-reads and re-folds. Throttling is retried with backoff, then the batch reports a batch item
   failure at the first record of any user whose row could not be written; every record from there on
   comes again, and the watermarks make the ones already applied `seen`.

Item aggregates and experiment counters are not written here: the aggregate branches read each
record's verdict and session partner from the user row's outbox (docs/processing.md). The branches'
progress rows for the batch's shard are read with the user rows, and the outbox entries every branch has
consumed are released before the row is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from streamrec_core.backoff import WriteRetries
from streamrec_core.constants import EXPERIMENTS_BRANCH, ITEMS_BRANCH
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.events import Event
from streamrec_core.features.keys import progress_key, user_key
from streamrec_core.features.progress import BRANCH_FLAGS, ProgressRow
from streamrec_core.features.store import CONFLICT, THROTTLED, RowStore, StoreError, Unreadable
from streamrec_core.features.user_fold import (
    APPLY,
    DUPLICATE,
    LATE,
    SEEN,
    UserRow,
    fold,
    redrive_uncertain,
    release,
)
from streamrec_core.gc_pause import gc_paused
from streamrec_core.kinesis import DeadLetterPort, KinesisRecord, decode_batch, reason_kind


@dataclass
class BatchResult:
    """What a batch did; `failed_sequence_number` is where the event source mapping must resume."""

    failed_sequence_number: str | None = None
    records: int = 0
    applied: int = 0
    late: int = 0
    duplicates: int = 0
    seen: int = 0
    dead_lettered: int = 0
    dead_letter_failures: int = 0
    users_written: int = 0
    conflicts: int = 0
    throttles: int = 0
    redrive_uncertain: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    # (shard, sequence number) of the records this batch applied (redrive applies their aggregates).
    applied_records: list[tuple[str, str]] = field(default_factory=list)

    def count(self, verdict: str) -> None:
        if verdict == APPLY:
            self.applied += 1
        elif verdict == LATE:
            self.late += 1
        elif verdict == DUPLICATE:
            self.duplicates += 1
        elif verdict == SEEN:
            self.seen += 1


class HotPath:
    """Applies batches of records to the users table through a `RowStore`."""

    def __init__(
        self,
        store: RowStore,
        dead_letters: DeadLetterPort,
        cfg: FeatureConfig,
        *,
        retries: WriteRetries | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.dead_letters = dead_letters
        self.cfg = cfg
        self.retries = retries or WriteRetries()
        self.sleep = sleep

    def process(self, records: Sequence[KinesisRecord], *, redrive: bool = False) -> BatchResult:
        """Apply the records (one shard's, any order) and say where to resume, if anywhere.

        `redrive=True` is for records re-read from the stream or the dead-letter queue after the event
        source mapping moved past them: whether each was applied is decided by the user's recent ids.
        """
        with gc_paused():
            return self._process(records, redrive)

    def _process(self, records: Sequence[KinesisRecord], redrive: bool) -> BatchResult:
        result = BatchResult(records=len(records))
        events, letters = decode_batch(records)
        failed_at: int | None = None
        if letters:
            unsent = self.dead_letters.send(letters)
            result.dead_lettered = len(letters) - len(unsent)
            result.dead_letter_failures = len(unsent)
            for letter in letters:
                kind = reason_kind(letter.reason)
                result.reasons[kind] = result.reasons.get(kind, 0) + 1
            if unsent:
                failed_at = min(letter.record.seq for letter in unsent)
        by_user: dict[str, list[Event]] = {}
        for event in events:
            by_user.setdefault(event.user_id, []).append(event)
        stopped = self._apply(by_user, result, redrive)
        if stopped is not None and (failed_at is None or stopped < failed_at):
            failed_at = stopped
        if failed_at is not None:
            result.failed_sequence_number = next(r.sequence_number for r in records if r.seq == failed_at)
        return result

    def _apply(self, by_user: dict[str, list[Event]], result: BatchResult, redrive: bool) -> int | None:
        """Fold and write every user's events; the first sequence number not applied, or None."""
        pending = list(by_user)
        shards = {event.shard_id for events in by_user.values() for event in events}
        progress = [
            progress_key(branch, shard) for shard in shards for branch in (ITEMS_BRANCH, EXPERIMENTS_BRANCH)
        ]
        retries = self.retries.fresh()
        # Redrive reads consistently from the start: it runs while the mapping may be writing the rows.
        consistent = redrive
        while True:
            if not pending:
                return None
            stored = self.store.get_many([user_key(uid) for uid in pending] + progress, consistent=consistent)
            consumed = {
                (BRANCH_FLAGS[row.branch], row.shard_id): row.arrival_ms
                for row in (stored.get(key) for key in progress)
                if isinstance(row, ProgressRow)
            }
            writes: list[UserRow] = []
            verdicts: dict[str, list[str]] = {}
            uncertain: dict[str, int] = {}
            for uid in pending:
                row = stored.get(user_key(uid))
                if isinstance(row, Unreadable):
                    # Fail the batch: the mapping retries and bisects down to this user's records and
                    # gives them to the on-failure queue; redrive applies them once the row is fixed.
                    raise StoreError(f"a user row does not decode ({row.reason})")
                if not isinstance(row, UserRow):
                    row = UserRow(uid)
                folded = []
                doubtful = 0
                for event in by_user[uid]:
                    if redrive and redrive_uncertain(row, event, self.cfg):
                        doubtful += 1
                    folded.append(fold(row, event, self.cfg, redrive=redrive))
                verdicts[uid] = folded
                uncertain[uid] = doubtful
                if any(verdict != SEEN for verdict in folded):
                    release(row, consumed)
                    writes.append(row)
            outcomes = self.store.put_many(writes)
            retry: list[str] = []
            throttled = False
            for uid in pending:
                outcome = outcomes.get(user_key(uid))
                if outcome == CONFLICT:
                    result.conflicts += 1
                    retry.append(uid)
                    consistent = True
                elif outcome == THROTTLED:
                    result.throttles += 1
                    throttled = True
                    retry.append(uid)
                else:  # written, or nothing to write (every record already seen)
                    for event, verdict in zip(by_user[uid], verdicts[uid], strict=True):
                        result.count(verdict)
                        if verdict in (APPLY, LATE):
                            result.applied_records.append((event.shard_id, event.sequence_number))
                    result.redrive_uncertain += uncertain[uid]
                    result.users_written += outcome is not None
            pending = retry
            if not pending:
                return None
            if not retries.again(throttled=throttled, sleep=self.sleep):
                break
        return min(by_user[uid][0].seq for uid in pending)
