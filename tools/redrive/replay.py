"""Redrive's logic: per failure message, run its records through the process function's own
`BatchProcessor` in redrive mode, then delete the message or keep it with the reason.

Redrive mode decides "already applied" by the user's recent event-id digests (docs/processing.md), so a
record replayed twice, from either queue, is applied once. Per source:

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

from botocore.exceptions import BotoCoreError, ClientError
from process.config import ProcessConfig
from process.logic import BatchProcessor, BatchResult, DeadLetter, DeadLetterPort, KinesisRecord, StorePort
from streamrec_core.features import Key, Row

from tools.progress import Progress
from tools.redrive.functions import ProcessFunctions
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
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class ReadOnlyStore:
    """The feature store for a dry run: real reads, commits dropped."""

    def __init__(self, store: StorePort) -> None:
        self.store = store

    def read(self, keys: Iterable[Key], *, consistent: bool = True) -> dict[Key, Row | None]:
        return self.store.read(keys, consistent=consistent)

    def commit(self, writes: Sequence[tuple[Key, Row, int]]) -> None:
        return None


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
        functions: ProcessFunctions,
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
        parse, replay = (
            (parse_dead_letter, self._dead_letter)
            if source == DLQ
            else (parse_failed_batch, self._failed_batch)
        )
        for message in queue.messages(limit):
            summary.messages += 1
            label = "unparsed"
            try:
                parsed = parse(message)
                label = parsed.label
                problem = replay(parsed, queue.url, summary)  # type: ignore[arg-type]
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
        config = self.functions.for_batch(batch)
        dead_letters: DeadLetterPort = (
            KeptDeadLetters() if self.dry_run else self.functions.dead_letters(config)
        )
        result = self._processor(config, dead_letters).process(records, redrive=True)
        self._count(result, summary)
        summary.dead_lettered += result.dead_lettered
        if result.failed_sequence_number is not None:
            return f"stopped at {result.failed_sequence_number} (throttled?); run again"
        return None

    def _dead_letter(self, letter: DeadLetterMessage, queue_url: str, summary: SourceSummary) -> str | None:
        if letter.truncated:
            return _truncated(letter)
        config = self.functions.for_dead_letter(letter, queue_url)
        refused = KeptDeadLetters()
        summary.records += 1
        result = self._processor(config, refused).process([letter.record()], redrive=True)
        self._count(result, summary)
        if refused.letters:
            return f"still failing: {refused.letters[0].reason}"
        if result.failed_sequence_number is not None:
            return "stopped (throttled?); run again"
        return None

    def _processor(self, config: ProcessConfig, dead_letters: DeadLetterPort) -> BatchProcessor:
        store: StorePort = self.functions.store(config)
        if self.dry_run:
            store = ReadOnlyStore(store)
        return BatchProcessor(store, dead_letters, config.features)

    @staticmethod
    def _count(result: BatchResult, summary: SourceSummary) -> None:
        summary.applied += result.applied + result.late
        summary.already_applied += result.duplicates + result.seen
        summary.uncertain += result.redrive_uncertain

    def _tick(self, status: str) -> None:
        if self.progress is not None:
            self.progress.update(1, status)


def _truncated(letter: DeadLetterMessage) -> str:
    return f"payload was truncated to fit SQS, so it cannot be replayed (dead-lettered as: {letter.reason})"
