"""Experiment counters: impressions, clicks and purchases per variant (the A/B branch's rows).

Fed by the filtered event source mapping (records carrying `attribution`), resolved against the user row
like the item aggregates, so a client resend or a redelivery is never counted twice. Each row keeps a
watermark per stream shard, as item rows do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from streamrec_core.features.user_fold import Watermark

IMPRESSION: Final = "impression"
CLICK: Final = "click"
PURCHASE: Final = "purchase"


@dataclass(slots=True)
class CounterRow:
    experiment_id: str
    variant: str
    version: int = 0
    expires_at: int = 0  # 0: kept (experiment results are not expired)
    impressions: int = 0
    clicks: int = 0
    purchases: int = 0
    watermarks: dict[str, Watermark] = field(default_factory=dict)


def count(row: CounterRow, event_type: str) -> None:
    if event_type == IMPRESSION:
        row.impressions += 1
    elif event_type == CLICK:
        row.clicks += 1
    elif event_type == PURCHASE:
        row.purchases += 1
