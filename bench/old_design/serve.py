"""Which rows the previous design's serve function read for one recommendation (serve/logic.py and
ranking.py at 6aa4c9a, default model parameters), so the benchmark can bill them on the old rows.

Round trip 1: the user row and every slot row of the global trending list (no cache). Round trip 2: the
item profiles of the user's 5 newest distinct items and every slot row of the trending lists of the
user's top 3 categories by affinity. Reads were eventually consistent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.old_design.constants import USER_AFFINITY, USER_HISTORY
from bench.old_design.features import item_key, trending_keys, user_key

SEED_ITEMS = 5
FILL_CATEGORIES = 3
BATCH_GET_MAX_KEYS = 100


def first_round_keys(user_id: str, slots: int) -> list[tuple[str, str, str]]:
    return [user_key(user_id), *trending_keys(None, slots)]


def second_round_keys(user: Mapping[str, Any] | None, slots: int) -> list[tuple[str, str, str]]:
    if not user:
        return []
    seeds: list[str] = []
    for item, _type, _when, _category in reversed(user.get(USER_HISTORY, [])):
        if len(seeds) >= SEED_ITEMS:
            break
        if item not in seeds:
            seeds.append(item)
    seeds = seeds[: BATCH_GET_MAX_KEYS // 2]
    room = BATCH_GET_MAX_KEYS - len(seeds)
    affinity: Mapping[str, float] = user.get(USER_AFFINITY, {})
    ranked = sorted(affinity.items(), key=lambda kv: (-float(kv[1]), kv[0]))
    categories = [name for name, score in ranked[:FILL_CATEGORIES] if float(score) > 0]
    keys = [item_key(item) for item in seeds]
    for name in categories[: max(0, room // slots)]:
        keys.extend(trending_keys(name, slots))
    return keys
