"""The reference fold: each distinct event applied once, in order, with the functions' own folds.

The offline evaluation's features and the tests' expected state. The user fold runs as the hot path runs
it; each event's aggregate effect (read from the outbox entry the fold just wrote, as an aggregator
would) is applied at once to the item rows, a single trending partial and the counters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from streamrec_core.features.codec import Row
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.counters import CounterRow, count
from streamrec_core.features.events import Event, event_from_dict
from streamrec_core.features.item_aggregates import ItemRow, apply_update, effect_of, pair_updates
from streamrec_core.features.keys import (
    Key,
    category_of,
    experiment_key,
    item_key,
    item_of,
    kind_of,
    user_key,
)
from streamrec_core.features.trending import PartialRow, Trend, TrendingList, add, merge
from streamrec_core.features.user_fold import APPLY, LATE, VERDICTS, UserRow, fold


class ReferenceFold:
    def __init__(self, cfg: FeatureConfig, shard_id: str = "reference") -> None:
        self.cfg = cfg
        self.users: dict[str, UserRow] = {}
        self.items: dict[str, ItemRow] = {}
        self.partial = PartialRow(shard_id)
        self.counters: dict[tuple[str, str], CounterRow] = {}
        self.verdicts: Counter[str] = Counter(dict.fromkeys(VERDICTS, 0))

    def apply(self, event: Event) -> str:
        user = self.users.get(event.user_id)
        if user is None:
            user = self.users[event.user_id] = UserRow(event.user_id)
        verdict = fold(user, event, self.cfg)
        self.verdicts[verdict] += 1
        entry = user.outbox[-1] if user.outbox else None
        if verdict not in (APPLY, LATE) or entry is None or entry[:2] != (event.shard_id, event.seqtag):
            return verdict
        effect = effect_of(event, entry.category, entry.pred, entry.pred_category, entry.flags)
        if effect.item_effect:
            for update in pair_updates(effect):
                row = self.items.get(update.item)
                if row is None:
                    row = self.items[update.item] = ItemRow(update.item)
                apply_update(row, update, effect, self.cfg)
            add(self.partial, effect.item, effect.category, effect.hour, effect.weight, self.cfg)
        if effect.experiment_effect and effect.variant is not None:
            experiment = effect.experiment_id or ""
            counter = self.counters.get((experiment, effect.variant))
            if counter is None:
                counter = self.counters[(experiment, effect.variant)] = CounterRow(experiment, effect.variant)
            count(counter, effect.event_type)
        return verdict

    def apply_dict(
        self, event: Mapping[str, Any], shard_id: str = "reference", sequence_number: str | int = 0
    ) -> str:
        """Apply a normalized event dict (schema v1 fields, optional `received_at`)."""
        return self.apply(
            event_from_dict(dict(event), shard_id=shard_id, sequence_number=str(sequence_number))
        )

    # --- reading, as serve reads (the evaluation's reader port) ------------------------------------
    def trending(self, category: str | None = None) -> list[Trend]:
        overall, by_category = merge([self.partial], self.cfg)
        return overall if category is None else by_category.get(category, [])

    def get_many(self, keys: Iterable[Key], *, consistent: bool = False) -> dict[Key, Row | None]:
        found: dict[Key, Row | None] = {}
        for key in keys:
            kind = kind_of(key)
            if kind == "user":
                found[key] = self.users.get(key.pk)
            elif kind == "item":
                found[key] = self.items.get(item_of(key))
            elif kind == "list":
                category = category_of(key)
                items = self.trending(category)
                found[key] = TrendingList(category, items=items) if items else None
            else:
                found[key] = None
        return found

    def query_counters(self, experiment_id: str) -> list[CounterRow]:
        return [row for (e, _v), row in sorted(self.counters.items()) if e == experiment_id]

    def rows(self) -> dict[Key, Row]:
        """Every row, keyed as the tables key them (trending as its one partial)."""
        rows: dict[Key, Row] = {user_key(uid): row for uid, row in self.users.items()}
        rows.update({item_key(iid): row for iid, row in self.items.items()})
        rows.update({experiment_key(e, v): row for (e, v), row in self.counters.items()})
        return rows
