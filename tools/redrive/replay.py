"""Redrive's logic: per failure message, run its records through the consumer's own logic, then delete
the message or keep it with the reason.

- A batch the hot path's mapping gave up on (on-failure) or a dead letter: the process function's
  `HotPath` in redrive mode, which decides "already applied" by the user's recent event-id digests
  (docs/processing.md), so a record replayed twice, from either queue, is applied once. The aggregate
  branches have moved past these records, so redrive then applies the item and experiment effects of
  the records it applied in this run itself (`redriven=True`): once, and never again by a rerun (at most
  once: if that step fails, the message is kept and says so; a rerun finds the records applied).
- A batch an aggregate branch gave up on: that branch's own logic, normally: rows whose watermark is
  past a record already hold it or were written by later records (those records' effects on such rows
  cannot be told apart and are not applied again).

Per source:
- on-failure: the range is re-read from the stream; records that are poison go to the dead-letter queue,
  as the function would send them; the message is deleted once every record is handled.
- dlq: the record is rebuilt from the message's payload, shard and sequence number. If it still fails
  (the cause is not fixed), no new dead letter is sent: the message itself stays, with the new reason.
  A payload cut to fit SQS cannot be replayed: reported and kept.

A dry run reads everything and runs the same fold against the real rows, but commits nothing, sends
nothing and deletes nothing, so it reports what a run would do. Problems with one message (corrupt,
still failing, a corrupt feature row that makes processing fail) keep that message and the run goes on;
not reaching AWS at all stops the run (the caller releases every message it holds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aggregate.config import AggregateConfig
from aggregate.logic import AggregateResult, ExperimentCounter, ItemAggregator
from botocore.exceptions import BotoCoreError, ClientError
from process.config import ProcessConfig
from process.logic import BatchResult, HotPath
from streamrec_core.features.codec import Row, key_of
from streamrec_core.features.counters import CounterRow
from streamrec_core.features.keys import Key
from streamrec_core.features.store import WRITTEN, RowStore, Unreadable
from streamrec_core.features.trending import PartialRow
from streamrec_core.kinesis import DeadLetter, DeadLetterPort, KinesisRecord

from tools.progress import Progress
from tools.redrive.functions import EXPERIMENTS, ITEMS, PROCESS, StreamFunctions
from tools.redrive.messages import (
    DeadLetterMessage,
    FailedBatch,
    MessageProblem,
    parse_dead_letter,
    parse_failed_batch,
)
from tools.redrive.queue import QueueSession

DLQ = "dlq"
ON_FAILURE = "on-failure"
SOURCES = (DLQ, ON_FAILURE)  # the order of `--source all`: fresh dead letters of on-failure wait a run

RangeReader = Callable[[FailedBatch], list[KinesisRecord]]


@dataclass
class SourceSummary:
    """What a run did with one queue (in a dry run: what it would do)."""

    messages: int = 0
    handled: int = 0  # every record applied or already applied: message deleted
    kept: int = 0  # left in the queue, visible again; see `problems`
    records: int = 0
    applied: int = 0
    already_applied: int = 0
    dead_lettered: int = 0  # on-failure records that are poison, sent to the dead-letter queue
    uncertain: int = 0  # applied although older than the recent-ids horizon (RedriveUncertain)
    aggregated: int = 0  # records whose item or experiment effects redrive applied
    rows_written: int = 0  # aggregate rows written (aggregate branches' batches and redriven records)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class ReadOnlyStore:
    """The feature store for a dry run: real reads, writes dropped (reported as written)."""

    def __init__(self, store: RowStore) -> None:
        self.store = store

    def get_many(self, keys: Iterable[Key], *, consistent: bool) -> dict[Key, Row | Unreadable | None]:
        return self.store.get_many(keys, consistent=consistent)

    def put_many(self, rows: Sequence[Row], *, conditional: bool = True) -> dict[Key, str]:
        return {key_of(row): WRITTEN for row in rows}

    def query_partials(self) -> list[PartialRow]:
        return self.store.query_partials()

    def query_counters(self, experiment_id: str) -> list[CounterRow]:
        return self.store.query_counters(experiment_id)


class KeptDeadLetters:
    """A dead-letter port that sends nothing and remembers the letters (why a record still fails)."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def send(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        self.letters.extend(letters)
        return []


class Redriver:
    """Works through one queue at a time; see the module docstring."""

    def __init__(
        self,
        functions: StreamFunctions,
        read_range: RangeReader,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self.functions = functions
        self.read_range = read_range
        self.dry_run = dry_run
        self.progress = progress

    def run(self, source: str, queue: QueueSession, summary: SourceSummary, limit: int | None = None) -> None:
        """Handle the queue's messages into `summary` (filled as it goes, so an aborted run still counts)."""
        for message in queue.messages(limit):
            summary.messages += 1
            label = "unparsed"
            problem: str | None
            try:
                if source == DLQ:
                    letter = parse_dead_letter(message)
                    label = letter.label
                    problem = self._dead_letter(letter, queue.url, summary)
                else:
                    batch = parse_failed_batch(message)
                    label = batch.label
                    problem = self._failed_batch(batch, queue.url, summary)
            except MessageProblem as error:
                problem = str(error)
            except BotoCoreError:
                raise  # AWS cannot be reached at all: stop; the session releases what it holds
            except Exception as error:  # this message's records failed (a corrupt row, a refused write)
                problem = f"processing failed: {type(error).__name__}: {error}"
            if problem is None and not self.dry_run:
                try:
                    queue.delete(message)
                except ClientError as error:
                    problem = f"handled, but not deleted ({error}); the next run finds it already applied"
            if problem is None:
                summary.handled += 1
                self._tick(f"{source} {label} {'would be handled' if self.dry_run else 'handled'}")
            else:
                summary.kept += 1
                summary.problems.append(f"{source} message {message.get('MessageId')} ({label}): {problem}")
                self._tick(f"{source} {label} kept")

    def _failed_batch(self, batch: FailedBatch, queue_url: str, summary: SourceSummary) -> str | None:
        records = self.read_range(batch)
        summary.records += len(records)
        consumer = self.functions.for_batch(batch)
        if consumer.handler == PROCESS:
            assert isinstance(consumer.config, ProcessConfig)
            dead_letters: DeadLetterPort = (
                KeptDeadLetters() if self.dry_run else self.functions.dead_letters(consumer.config)
            )
            result, problem = self._hot_path(
                consumer.config, records, dead_letters, batch.stream_arn, summary
            )
            summary.dead_lettered += result.dead_lettered
            if result.failed_sequence_number is not None:
                return f"stopped at {result.failed_sequence_number} (throttled?); run again"
            return problem
        assert isinstance(consumer.config, AggregateConfig)
        store = self._store(consumer.config.users_table, consumer.config.items_table)
        branch = ItemAggregator if consumer.handler == ITEMS else ExperimentCounter
        assert consumer.handler in (ITEMS, EXPERIMENTS)
        outcome = branch(store, consumer.config.features).process(records)
        summary.applied += outcome.effects
        summary.already_applied += outcome.no_effect
        summary.rows_written += outcome.rows_written
        if outcome.failed_sequence_number is not None:
            return f"stopped at {outcome.failed_sequence_number} (hot path behind, or throttled); run again"
        return None

    def _dead_letter(self, letter: DeadLetterMessage, queue_url: str, summary: SourceSummary) -> str | None:
        if letter.truncated:
            return _truncated(letter)
        config = self.functions.for_dead_letter(letter, queue_url)
        refused = KeptDeadLetters()
        summary.records += 1
        result, problem = self._hot_path(config, [letter.record()], refused, letter.event_source_arn, summary)
        if refused.letters:
            return f"still failing: {refused.letters[0].reason}"
        if result.failed_sequence_number is not None:
            return "stopped (throttled?); run again"
        return problem

    def _hot_path(
        self,
        config: ProcessConfig,
        records: list[KinesisRecord],
        dead_letters: DeadLetterPort,
        stream_arn: str,
        summary: SourceSummary,
    ) -> tuple[BatchResult, str | None]:
        """Apply the records to the user rows, then the aggregates of those this run applied; the result
        and what went wrong with the aggregates, if anything."""
        result = HotPath(
            self._store(config.users_table, config.items_table), dead_letters, config.features
        ).process(records, redrive=True)
        summary.applied += result.applied + result.late
        summary.already_applied += result.duplicates + result.seen
        summary.uncertain += result.redrive_uncertain
        applied = set(result.applied_records)
        items = self.functions.items_of(stream_arn) if stream_arn else None
        if not applied or items is None or self.dry_run:
            return result, None  # a dry run wrote no user row, so there is nothing for the branches to read
        mine = [r for r in records if (r.shard_id, r.sequence_number) in applied]
        store = self._store(items.users_table, items.items_table)
        outcomes: list[AggregateResult] = [
            ItemAggregator(store, items.features).process(mine, redriven=True),
            ExperimentCounter(store, items.features).process(mine, redriven=True),
        ]
        summary.aggregated += len(mine)
        summary.rows_written += sum(outcome.rows_written for outcome in outcomes)
        if any(outcome.failed_sequence_number is not None for outcome in outcomes):
            return result, (
                f"user features applied, but the item or experiment effects of {len(mine)} records could "
                "not all be written (throttled?); they are not applied again by a rerun (at most once)"
            )
        return result, None

    def _store(self, users_table: str, items_table: str = "") -> RowStore:
        store: RowStore = self.functions.store(users_table, items_table)
        return ReadOnlyStore(store) if self.dry_run else store

    def _tick(self, status: str) -> None:
        if self.progress is not None:
            self.progress.update(1, status)


def _truncated(letter: DeadLetterMessage) -> str:
    return f"payload was truncated to fit SQS, so it cannot be replayed (dead-lettered as: {letter.reason})"
