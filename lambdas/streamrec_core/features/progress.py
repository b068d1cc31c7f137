"""How far each aggregate branch has consumed each stream shard.

A branch writes its row after every batch: every record of the shard that arrived up to `arrival_ms`
(the last record of the batch's processed prefix) has its effects in the aggregate rows. The hot path
reads the rows of its shard with the user rows and releases the outbox entries every branch that needs
them has consumed (`features.user_fold.release`), so a user row carries only what is still on its way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from streamrec_core.constants import EXPERIMENTS_BRANCH, ITEMS_BRANCH
from streamrec_core.features.user_fold import EXPERIMENT_EFFECT, ITEM_EFFECT

# Which outbox flag each branch consumes.
BRANCH_FLAGS: Final[Mapping[str, int]] = {ITEMS_BRANCH: ITEM_EFFECT, EXPERIMENTS_BRANCH: EXPERIMENT_EFFECT}


@dataclass(slots=True)
class ProgressRow:
    branch: str
    shard_id: str
    version: int = 0
    expires_at: int = 0
    arrival_ms: int = 0  # every record of the shard arrived up to here is consumed
    sequence_number: str = ""  # the last of them (for people reading the table)
