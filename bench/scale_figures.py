"""The scale benchmark's figures: the hottest key at 100,000 events/s, row sizes and what user rows are
made of, the functions' durations, the cost model's inputs and bill, the targets, and the printed report.
See bench/scale.py.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from streamrec_core.ddb_size import item_size
from streamrec_core.features.keys import Key, kind_of
from streamrec_core.features.memory_store import MemoryStore, read_units

from bench.common import FEATURES, fmt, percentile
from bench.scale_data import OLD_TRENDING_SLOTS, RATE
from bench.stores import KeyRates, Usage

SCALE_EVENTS_PER_SECOND = 100_000
# Targets (issue 12).
TARGET_WRU_PER_EVENT = 2.0
TARGET_KEY_WRITES_PER_SECOND = 1000
TARGET_USD_PER_MILLION_PROVISIONED = 1.00
TARGET_USD_PER_MILLION_ON_DEMAND = 2.20
# Assumed DynamoDB latencies from a function in the same region (p50; moto's are not AWS's). Client CPU per
# request is measured (bench.ddb_client); the store sends BatchGetItem chunks one after another and
# PutItem calls from DEFAULT_WRITERS threads.
BATCH_GET_MS = 8.0
PUT_MS = 5.0
QUERY_MS = 10.0
TRANSACT_WRITE_MS = 25.0  # the previous design's TransactWriteItems of up to 100 rows


# --- Hot keys at 100,000 events/s -------------------------------------------------------------------------
# How a key's write rate grows with the number of shards, per kind of row:
# - owned by one shard's consumer (a user row: one hot-path lane; a trending partial: one shard's items
#   aggregator; a branch's progress row: one shard's branch): its rate does not grow with shards;
# - written by every shard's consumer (co-visitation rows, counters; the previous design's item profiles
#   and counters): each shard's stream touches it about as often (users are spread over shards by hash),
#   so its rate grows with the number of shards;
# - the previous design's trending slot rows: shards share `OLD_TRENDING_SLOTS` slot rows by hash, so a
#   slot row's rate grows with shards / slots;
# - merged trending lists: rewritten once per merge interval, whatever the number of shards.
NEW_SCALING = {
    "user": "own",
    "partial": "own",
    "progress": "own",
    "item": "shared",
    "counter": "shared",
    "list": "interval",
}
OLD_SCALING = {
    "user": "own",
    "item": "shared",
    "counter": "shared",
    "trending, global": "slots",
    "trending, category": "slots",
}


def hot_keys(
    rates: KeyRates, seconds: float, kinds: Callable[[Any], str], scaling: dict[str, str]
) -> dict[str, Any]:
    shards = SCALE_EVENTS_PER_SECOND / RATE
    factors = {"own": 1.0, "interval": 1.0, "shared": shards, "slots": shards / OLD_TRENDING_SLOTS}
    per_kind: dict[str, dict[str, Any]] = {}
    for key, writes in rates.writes.items():
        kind = kinds(key)
        factor = factors[scaling.get(kind, "shared")]
        rate = writes / seconds * factor
        found = per_kind.get(kind)
        if found is None or rate > found["writes_per_s_at_100k"]:
            per_kind[kind] = {
                "key": _key_text(key),
                "writes_in_run": writes,
                "writes_per_s_in_run": round(writes / seconds, 3),
                "busiest_second_in_run": rates.busiest[key],
                "scaling": scaling.get(kind, "shared"),
                "factor": round(factor, 2),
                "writes_per_s_at_100k": round(rate, 2),
                "write_units_per_s_at_100k": round(rates.units[key] / seconds * factor, 2),
            }
    hottest = max(per_kind.values(), key=lambda k: k["writes_per_s_at_100k"])
    return {"shards_at_100k": shards, "by_kind": per_kind, "hottest": hottest}


def _key_text(key: Any) -> str:
    if isinstance(key, Key):
        return f"{key.table}:{key.pk}" + (f"/{key.sk}" if key.sk else "")
    table, pk, sk = key
    return f"{table}:{pk}" + (f"/{sk}" if sk else "")


# --- Row sizes ---------------------------------------------------------------------------------------------
def size_summary(sizes: dict[str, list[int]]) -> dict[str, dict[str, Any]]:
    out = {}
    for kind, values in sorted(sizes.items()):
        if not values:
            continue
        out[kind] = {
            "writes": len(values),
            "p50_bytes": round(percentile(values, 50)),
            "p90_bytes": round(percentile(values, 90)),
            "p99_bytes": round(percentile(values, 99)),
            "max_bytes": max(values),
            "over_1kb_share": round(sum(1 for v in values if v > 1024) / len(values), 4),
        }
    return out


# --- Durations -----------------------------------------------------------------------------------------
def duration_ms(usage: Usage, invocations: int, client: dict[str, float]) -> dict[str, float]:
    """An invocation's duration: its CPU here (in-memory store, codec included: an upper bound, the meter
    sizes every item it touches), the DynamoDB client's CPU per request (measured without a network) and
    the round trips at the assumed latencies (BatchGetItem chunks in turn, PutItem calls 16 at a time)."""
    from streamrec_core.features.dynamodb import DEFAULT_WRITERS

    if not invocations:
        return {"duration_ms": 0.0}
    cpu = usage.cpu_s * 1000 / invocations
    client_ms = (
        usage.puts * client["put_item_ms"] + usage.keys_read / 100 * client["batch_get_100_ms"]
    ) / invocations
    waits = (
        usage.batch_gets * BATCH_GET_MS
        + math.ceil(usage.puts / invocations / DEFAULT_WRITERS) * PUT_MS * invocations
        + usage.queries * QUERY_MS
    ) / invocations
    return {
        "cpu_ms": round(cpu, 2),
        "client_cpu_ms": round(client_ms, 2),
        "dynamodb_wait_ms": round(waits, 2),
        "duration_ms": round(cpu + client_ms + waits, 1),
    }


def user_row_parts(store: MemoryStore) -> dict[str, Any]:
    """What a stored user row's bytes are made of: each part's share, measured by encoding the row with
    that part emptied (its strings go with it), for all user rows and for those over 1 KB."""
    import dataclasses

    from streamrec_core.features.codec import from_item, to_item
    from streamrec_core.features.user_fold import UserRow

    parts = ("history", "recent", "outbox", "affinity", "bought", "watermarks")
    empty: dict[str, Any] = {
        "history": [],
        "recent": [],
        "outbox": [],
        "affinity": {},
        "bought": [],
        "watermarks": {},
    }
    totals: dict[str, Counter[str]] = {"all": Counter(), "over 1 KB": Counter()}
    rows: Counter[str] = Counter()
    for key, item in store.items.items():
        if kind_of(key) != "user":
            continue
        row = from_item(key, item)
        assert isinstance(row, UserRow)
        size = item_size(item)
        groups = ["all"] + (["over 1 KB"] if size > 1024 else [])
        measured = {
            part: size - item_size(to_item(dataclasses.replace(row, **{part: empty[part]}))) for part in parts
        }
        for group in groups:
            rows[group] += 1
            totals[group]["whole row"] += size
            for part, bytes_ in measured.items():
                totals[group][part] += bytes_
    return {
        group: {"rows": rows[group], **{k: round(v / rows[group]) for k, v in totals[group].items()}}
        for group in totals
        if rows[group]
    }


# --- Cost inputs ---------------------------------------------------------------------------------------
def new_cost_inputs(new: dict[str, Any], events: int, seconds: float) -> dict[str, Any]:
    """Profile fields of bench.cost_model from the new design's run (per event, scaled where needed)."""
    usage = new["usage"]
    hot, items, experiments, serve = (
        usage["hot path"],
        usage["items branch"],
        usage["experiments branch"],
        usage["serve"],
    )
    durations = new["durations"]
    merge = merge_at_scale(new, seconds, new["categories"])
    aggregate_wru = items.write_units + experiments.write_units - merge["run_write_units"]
    aggregate_rru = items.read_units + experiments.read_units - merge["run_read_units"]
    return {
        "ddb_write_units_per_event": round(hot.write_units / events, 4),
        "ddb_process_read_units_per_event": round(hot.read_units / events, 4),
        "ddb_aggregate_write_units_per_event": round(
            aggregate_wru / events + merge["write_units_per_event_at_100k"], 4
        ),
        "ddb_aggregate_read_units_per_event": round(
            aggregate_rru / events + merge["read_units_per_event_at_100k"], 4
        ),
        "ddb_read_units_per_recommendation": round(serve.read_units / max(1, new["serve"]["requests"]), 4),
        "ddb_write_requests_per_event": round((hot.puts + items.puts + experiments.puts) / events, 4),
        "attributed_share": round(len(new["attributed"]) / events, 4),
        "process": {"duration_ms": durations["hot path"]["duration_ms"]},
        "aggregate_items": {"duration_ms": durations["items branch"]["duration_ms"]},
        "aggregate_experiments": {"duration_ms": max(1.0, durations["experiments branch"]["duration_ms"])},
        "serve": {"duration_ms": durations["serve"]["duration_ms"]},
    }


def merge_at_scale(new: dict[str, Any], seconds: float, categories: int) -> dict[str, Any]:
    """The merges' cost in this run, and per event at 100,000 events/s.

    A merge reads every shard's partial in one Query and rewrites the global list and the category lists.
    In this one-shard run it cost what one partial and its categories cost; at S shards the Query reads S
    partials (S x the measured mean partial size) and at most every category of the catalogue has a
    list (bounded here by every category of the stream: S partials of up to 150 items each hold most of
    them). Merges happen once
    per interval whatever the rate, so per event they shrink as the rate grows.
    """
    usage = new["usage"]["items branch"]
    store: MemoryStore = new["store"]
    merges = max(1, new["counts"]["items_merges"])
    run_read = usage.read_units_by_kind.get("partial (Query)", 0.0)
    run_write = usage.write_units_by_kind.get("list", 0)
    partial_sizes = [item_size(i) for k, i in store.items.items() if kind_of(k) == "partial"]
    list_sizes = [item_size(i) for k, i in store.items.items() if kind_of(k) == "list"]
    categories_seen = max(1, categories)
    shards = SCALE_EVENTS_PER_SECOND / RATE
    partial = sum(partial_sizes) / max(1, len(partial_sizes))
    query_units = read_units(int(shards * partial), consistent=False)
    list_units = sum(max(1, math.ceil(s / 1024)) for s in list_sizes) / max(1, len(list_sizes))
    per_merge_write = list_units * (1 + categories_seen)  # categories: not more than seen in the run
    interval_s = FEATURES.merge_interval_ms / 1000
    return {
        "merges": merges,
        "run_read_units": run_read,
        "run_write_units": run_write,
        "mean_partial_bytes": round(partial),
        "category_lists": categories_seen,
        "query_read_units_at_100k": query_units,
        "write_units_per_merge_at_100k": round(per_merge_write, 1),
        "read_units_per_event_at_100k": round(query_units / interval_s / SCALE_EVENTS_PER_SECOND, 6),
        "write_units_per_event_at_100k": round(per_merge_write / interval_s / SCALE_EVENTS_PER_SECOND, 6),
        "run_seconds": seconds,
    }


def old_cost_inputs(old: dict[str, Any], events: int) -> dict[str, Any]:
    process, serve = old["usage"]["process"], old["usage"]["serve"]
    durations = old["durations"]
    return {
        "process": {"duration_ms": durations["process"]["duration_ms"]},
        "serve": {"duration_ms": durations["serve"]["duration_ms"]},
        "ddb_write_units_per_event": round(process.write_units / events, 4),
        "ddb_process_read_units_per_event": round(process.read_units / events, 4),
        "ddb_aggregate_write_units_per_event": 0.0,
        "ddb_aggregate_read_units_per_event": 0.0,
        "ddb_read_units_per_recommendation": round(serve.read_units / max(1, old["serve"]["requests"]), 4),
        "ddb_write_requests_per_event": round(old["transactions"] / events, 4),
        "stream_consumers": 1,
        "aggregate_branches": False,
    }


def serve_summary(stats: dict[str, Any], containers: int) -> dict[str, Any]:
    units = stats["read_units"]
    return {
        "requests": stats["requests"],
        "containers": containers,
        "read_units_per_request": round(sum(units) / max(1, len(units)), 3),
        "read_units_p50": percentile(units, 50),
        "read_units_p99": percentile(units, 99),
        "max_round_trips": max(stats["round_trips"], default=0),
        "mean_round_trips": round(sum(stats["round_trips"]) / max(1, len(stats["round_trips"])), 3),
        "fallback_share": round(stats["fallback"] / max(1, stats["requests"]), 3),
    }


def price(out: dict[str, Any]) -> dict[str, Any]:
    """The 100,000 events/s bill (bench.cost_model) with this run's figures, new design and baseline."""
    from bench.cost_model import (
        ON_DEMAND,
        PROFILES,
        PROVISIONED,
        Prices,
        all_levers,
        apply_overrides,
        lever_bills,
        monthly_bill,
    )

    prices = Prices.load()
    priced: dict[str, Any] = {}
    for design in ("new", "old"):
        if design not in out:
            continue
        bill = monthly_bill(apply_overrides(PROFILES["large-100k"], out[design]["cost_inputs"]), prices)
        priced[design] = {
            "on_demand_per_million": round(bill.per_million_events(ON_DEMAND), 4),
            "provisioned_per_million": round(bill.per_million_events(PROVISIONED), 4),
            "on_demand_monthly": round(bill.total(ON_DEMAND)),
            "provisioned_monthly": round(bill.total(PROVISIONED)),
            "by_service_on_demand": {k: round(v) for k, v in bill.by_service(ON_DEMAND).items()},
            "by_service_provisioned": {k: round(v) for k, v in bill.by_service(PROVISIONED).items()},
        }
    profile = apply_overrides(PROFILES["large-100k"], out["new"]["cost_inputs"])
    priced["levers"] = lever_bills(profile, prices)
    priced["design_levers"] = []
    changes = design_levers(out["new"])
    changes["both, with all the configuration levers"] = {**all_levers(profile), **changes["both"]}
    for name, overrides in changes.items():
        bill = monthly_bill(apply_overrides(profile, overrides), prices)
        priced["design_levers"].append(
            {
                "lever": name,
                "write_units_per_event": round(
                    overrides.get("ddb_write_units_per_event", profile.ddb_write_units_per_event)
                    + overrides.get(
                        "ddb_aggregate_write_units_per_event", profile.ddb_aggregate_write_units_per_event
                    ),
                    3,
                ),
                "on_demand_per_million": round(bill.per_million_events(ON_DEMAND), 4),
                "provisioned_per_million": round(bill.per_million_events(PROVISIONED), 4),
            }
        )
    return priced


def design_levers(new: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Estimates, from this run's units by row kind, of two changes to the feature code (not measured:
    each assumes only what its name says changes). One-sided co-visitation was measured for quality
    (tools.evaluate offline, BENCHMARKS.md): both one-sided variants lower HitRate@10 below the bar."""
    inputs = new["cost_inputs"]
    items = new["consumers"]["items branch"]
    hot = new["consumers"]["hot path"]
    item_wru = items["write_units_per_event_by_kind"].get("item", 0.0)
    item_rru = items["read_units_per_event_by_kind"].get("item", 0.0)
    one_sided = {
        "ddb_aggregate_write_units_per_event": inputs["ddb_aggregate_write_units_per_event"] - item_wru / 2,
        "ddb_aggregate_read_units_per_event": inputs["ddb_aggregate_read_units_per_event"] - item_rru / 2,
    }
    small_users = {"ddb_write_units_per_event": hot["puts_per_event"]}
    return {
        "co-visitation one-sided (either side; lowers HitRate@10 below the bar): item rows halved": one_sided,
        "every user row under 1 KB: one write unit per user write": small_users,
        "both": {**one_sided, **small_users},
    }


def report(out: dict[str, Any]) -> None:
    new, old = out["new"], out.get("old")
    print("   DynamoDB units per event (the previous design, same batches, beside):")
    print(f"     {'consumer':<22}{'WRU/event':>11}{'RRU/event':>11}{'puts/event':>12}   previous design")
    for name, c in new["consumers"].items():
        print(
            f"     {name:<22}{c['write_units_per_event']:>11.3f}{c['read_units_per_event']:>11.3f}"
            f"{c['puts_per_event']:>12.3f}"
        )
    line = f"     {'total':<22}{new['write_units_per_event']:>11.3f}{new['read_units_per_event']:>11.3f}"
    if old:
        line += (
            f"{'':>12}   {old['write_units_per_event']:.3f} WRU, {old['read_units_per_event']:.3f} RRU "
            f"({old['transactions_per_event']:.4f} TransactWriteItems/event)"
        )
    print(line)
    kinds: Counter[str] = Counter()
    for c in new["consumers"].values():
        kinds.update(c["write_units_per_event_by_kind"])
    print("     WRU/event by row: " + ", ".join(f"{k} {v:.3f}" for k, v in kinds.most_common()))
    reads: Counter[str] = Counter()
    for name, c in new["consumers"].items():
        reads.update({f"{name}: {k}": v for k, v in c["read_units_per_event_by_kind"].items()})
    print("     RRU/event by consumer and row: " + ", ".join(f"{k} {v:.3f}" for k, v in reads.most_common()))
    if old:
        print(
            "     previous design WRU/event by row: "
            + ", ".join(
                f"{k} {v:.3f}"
                for k, v in Counter(
                    old["consumers"]["process"]["write_units_per_event_by_kind"]
                ).most_common()
            )
        )
    counts = new["counts"]
    print(
        f"   records with an item effect {fmt(counts.get('items_effects', 0))}, experiment effect "
        f"{fmt(counts.get('experiments_effects', 0))}; unresolved (outbox entry gone before the aggregator "
        f"read it) {fmt(counts.get('items_unresolved', 0) + counts.get('experiments_unresolved', 0))}; "
        "merges "
        f"{counts.get('items_merges', 0)}"
    )
    serve = new["serve"]
    print(
        f"   serve: {serve['read_units_per_request']:.2f} RRU per recommendation over {serve['requests']} "
        f"requests ({serve['containers']} containers, trending cached 10 s), round trips max "
        f"{serve['max_round_trips']}; "
        + (f"previous design {old['serve']['read_units_per_request']:.2f} RRU (no cache)" if old else "")
    )
    for group, parts in new["user_row_parts"].items():
        print(
            f"   user rows at the end, {group} ({fmt(parts['rows'])} rows), mean bytes: "
            + ", ".join(f"{k} {v}" for k, v in parts.items() if k != "rows")
        )
    print("   row sizes as written (bytes, p50 / p90 / p99 / max, share over 1 KB):")
    for design, sizes in (("new", new["row_sizes"]), ("previous", old["row_sizes"] if old else {})):
        for kind, s in sizes.items():
            print(
                f"     {design:<9}{kind:<20}{s['p50_bytes']:>7} {s['p90_bytes']:>7} {s['p99_bytes']:>7} "
                f"{s['max_bytes']:>7}   {s['over_1kb_share']:6.1%} of {fmt(s['writes'])} writes"
            )
    hot = new["hot_keys"]
    print(
        f"   hottest key at {fmt(SCALE_EVENTS_PER_SECOND)} events/s ({hot['shards_at_100k']:.0f} shards of "
        f"{RATE} "
        "events/s; own rows keep their rate, shared rows x shards, old slot rows x shards/slots):"
    )
    for design, keys in (("new", hot), ("previous", old["hot_keys"] if old else None)):
        if keys is None:
            continue
        for kind, k in sorted(keys["by_kind"].items(), key=lambda kv: -kv[1]["writes_per_s_at_100k"]):
            print(
                f"     {design:<9}{kind:<20}{k['writes_per_s_at_100k']:>9.1f} writes/s "
                f"{k['write_units_per_s_at_100k']:>9.1f} WCU/s  ({k['writes_per_s_in_run']:.3f}/s in the run "
                f"x {k['factor']:g}, busiest second {k['busiest_second_in_run']})  {k['key']}"
            )
    merge = new["merge"]
    print(
        f"   merges: {merge['merges']} in the run; at 100k: Query {merge['query_read_units_at_100k']:g} "
        f"RRU + {merge['write_units_per_merge_at_100k']:g} WRU per merge ({merge['category_lists']} category "
        f"lists), {merge['write_units_per_event_at_100k']:.5f} WRU and "
        f"{merge['read_units_per_event_at_100k']:.5f} RRU per event"
    )
    print("   function duration per invocation (CPU here + DynamoDB client CPU + assumed round trips):")
    for design, durations in (("new", new["durations"]), ("previous", old["durations"] if old else {})):
        for name, d in durations.items():
            if d.get("duration_ms"):
                print(
                    f"     {design:<9}{name:<20}{d['duration_ms']:>9.1f} ms = {d['cpu_ms']:.1f} CPU + "
                    f"{d['client_cpu_ms']:.1f} client + {d['dynamodb_wait_ms']:.1f} waiting"
                )
    report_cost(out)


def report_cost(out: dict[str, Any]) -> None:
    """The bill's lines of the report: cost per design, levers, feature-code estimates, targets."""
    cost = out["cost"]
    for design, label in (("new", "new design"), ("old", "previous design")):
        if design in cost:
            c = cost[design]
            services = sorted(c["by_service_on_demand"].items(), key=lambda kv: -kv[1])
            print(
                f"   cost at 100,000 events/s ({label}): {c['on_demand_per_million']:.3f} USD per million "
                f"events on demand, {c['provisioned_per_million']:.3f} provisioned; on demand by service "
                "(USD/month): " + ", ".join(f"{k} {v:,}" for k, v in services[:6])
            )
    for lever in cost.get("levers", []):
        print(
            f"     lever: {lever['lever']:<95} {lever['on_demand_per_million']:.3f} on demand, "
            f"{lever['provisioned_per_million']:.3f} provisioned"
        )
    for lever in cost.get("design_levers", []):
        print(
            f"     feature code (estimate): {lever['lever']:<85} {lever['write_units_per_event']:.2f} "
            f"WRU/event, {lever['on_demand_per_million']:.3f} on demand, "
            f"{lever['provisioned_per_million']:.3f} provisioned"
        )
    print("   targets:")
    for verdict in targets(out):
        print(f"     {verdict['verdict']:<7} {verdict['target']}: {verdict['measured']}")


def write_units_at_scale(new: dict[str, Any]) -> float:
    """WRU per event at 100,000 events/s: the cost model's, whose aggregate figure has the run's merges
    (which this run's one shard pays alone) replaced by the merges' cost per event at that rate."""
    inputs = new["cost_inputs"]
    return inputs["ddb_write_units_per_event"] + inputs["ddb_aggregate_write_units_per_event"]


def targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    new, old, cost = out["new"], out.get("old"), out["cost"]

    def beside(value: str) -> str:
        return f" (previous design: {value})" if old else ""

    wru = write_units_at_scale(new)
    hottest = new["hot_keys"]["hottest"]
    rows = [
        {
            "target": f"<= {TARGET_WRU_PER_EVENT} WRU per event at {fmt(SCALE_EVENTS_PER_SECOND)} events/s",
            "met": wru <= TARGET_WRU_PER_EVENT,
            "measured": f"{wru:.3f} (merges scaled; this one-shard run: {new['write_units_per_event']:.3f})"
            + beside(f"{old['write_units_per_event']:.3f}" if old else ""),
        },
        {
            "target": f"no key above {fmt(TARGET_KEY_WRITES_PER_SECOND)} writes/s at 100,000 events/s",
            "met": hottest["writes_per_s_at_100k"] <= TARGET_KEY_WRITES_PER_SECOND,
            "measured": f"{hottest['writes_per_s_at_100k']:.1f} ({hottest['key']})"
            + beside(
                f"{old['hot_keys']['hottest']['writes_per_s_at_100k']:.0f} "
                f"({old['hot_keys']['hottest']['key']})"
                if old
                else ""
            ),
        },
        {
            "target": f"<= {TARGET_USD_PER_MILLION_PROVISIONED:.2f} USD per million events, provisioned",
            "met": cost["new"]["provisioned_per_million"] <= TARGET_USD_PER_MILLION_PROVISIONED,
            "measured": f"{cost['new']['provisioned_per_million']:.3f}"
            + beside(f"{cost['old']['provisioned_per_million']:.3f}" if old else ""),
        },
        {
            "target": f"<= {TARGET_USD_PER_MILLION_ON_DEMAND:.2f} USD per million events, on demand",
            "met": cost["new"]["on_demand_per_million"] <= TARGET_USD_PER_MILLION_ON_DEMAND,
            "measured": f"{cost['new']['on_demand_per_million']:.3f}"
            + beside(f"{cost['old']['on_demand_per_million']:.3f}" if old else ""),
        },
    ]
    for row in rows:
        row["verdict"] = "met" if row["met"] else "MISSED"
    return rows


def main() -> int:
    """Re-price bench/results/scale.json (e.g. after a price or cost-model change) without re-running."""
    from bench.common import read_result

    result = read_result("scale")
    if result is None:
        raise SystemExit("no bench/results/scale.json: run python -m bench.scale first")
    for name, out in result["figures"].items():
        if not isinstance(out, dict) or "new" not in out:
            continue
        out["cost"] = price(out)
        print(f"-- {name} (measured {result['measured_at']} at {result['code']})")
        report_cost(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
