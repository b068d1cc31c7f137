"""Rows and keys: which row holds what, and the DynamoDB key of each.

Users table: one row per user, written only by the hot path (the user's shard lane). Items table
(`pk`, `sk`): an item's co-visitation row, one trending partial per stream shard, the merged trending
lists and the experiment counters, all written by the aggregate branches; serve reads any mix of them
in one BatchGetItem.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from streamrec_core.constants import (
    EXPERIMENT_PK_PREFIX,
    EXPERIMENT_VARIANT_SK_PREFIX,
    ITEM_PK_PREFIX,
    ITEM_SK,
    ITEMS_PK,
    ITEMS_SK,
    PROGRESS_PK_PREFIX,
    TRENDING_CATEGORY_PK_PREFIX,
    TRENDING_GLOBAL_PK,
    TRENDING_LIST_SK,
    TRENDING_PARTIAL_PK,
    USERS_PK,
)

USERS: Final = "users"
ITEMS: Final = "items"


class Key(NamedTuple):
    """A row's address: table (USERS or ITEMS), partition key, sort key ('' in the users table)."""

    table: str
    pk: str
    sk: str = ""


def user_key(user_id: str) -> Key:
    return Key(USERS, user_id)


def item_key(item_id: str) -> Key:
    return Key(ITEMS, ITEM_PK_PREFIX + item_id, ITEM_SK)


def partial_key(shard_id: str) -> Key:
    """The trending partial one stream shard's aggregator writes."""
    return Key(ITEMS, TRENDING_PARTIAL_PK, shard_id)


def trending_key(category: str | None = None) -> Key:
    """The merged trending list: global (category None) or one category's."""
    pk = TRENDING_GLOBAL_PK if category is None else TRENDING_CATEGORY_PK_PREFIX + category
    return Key(ITEMS, pk, TRENDING_LIST_SK)


def experiment_key(experiment_id: str, variant: str) -> Key:
    return Key(ITEMS, EXPERIMENT_PK_PREFIX + experiment_id, EXPERIMENT_VARIANT_SK_PREFIX + variant)


def item_of(key: Key) -> str:
    """The item id of an item row's key."""
    return key.pk[len(ITEM_PK_PREFIX) :]


def category_of(key: Key) -> str | None:
    """The category of a trending list's key (None: the global list)."""
    if key.pk.startswith(TRENDING_CATEGORY_PK_PREFIX):
        return key.pk[len(TRENDING_CATEGORY_PK_PREFIX) :]
    return None


def experiment_of(key: Key) -> tuple[str, str]:
    """(experiment id, variant) of a counter row's key."""
    return key.pk[len(EXPERIMENT_PK_PREFIX) :], key.sk[len(EXPERIMENT_VARIANT_SK_PREFIX) :]


def progress_key(branch: str, shard_id: str) -> Key:
    """How far one aggregate branch has consumed one shard."""
    return Key(ITEMS, PROGRESS_PK_PREFIX + branch, shard_id)


def key_attributes(key: Key) -> dict[str, str]:
    """The DynamoDB key attributes of a key (strings)."""
    if key.table == USERS:
        return {USERS_PK: key.pk}
    return {ITEMS_PK: key.pk, ITEMS_SK: key.sk}


def kind_of(key: Key) -> str:
    """Which kind of row a key holds: 'user', 'item', 'partial', 'list', 'counter' or 'progress'."""
    if key.table == USERS:
        return "user"
    pk = key.pk
    if pk.startswith(ITEM_PK_PREFIX):
        return "item"
    if pk == TRENDING_PARTIAL_PK:
        return "partial"
    if pk == TRENDING_GLOBAL_PK or pk.startswith(TRENDING_CATEGORY_PK_PREFIX):
        return "list"
    if pk.startswith(EXPERIMENT_PK_PREFIX):
        return "counter"
    if pk.startswith(PROGRESS_PK_PREFIX):
        return "progress"
    raise ValueError(f"no row kind for {key}")
