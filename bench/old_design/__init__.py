"""The previous feature design (main at 6aa4c9a, before issue 12), frozen so that the benchmarks can run it
in the same process as today's code and print its figures beside today's (the same-run baseline).

- `features` and `logic`: that commit's `streamrec_core/features.py` and `process/logic.py`, unchanged
  but for their imports: one process function folded every event into the user row, its item profile
  and co-visitation partners (both sides), trending slot rows and experiment counters, and committed
  them chunk by chunk with TransactWriteItems;
- `constants`: that commit's row layout (attribute names, key prefixes);
- `store`: its row <-> DynamoDB item conversion and an in-memory store billed as DynamoDB bills
  TransactWriteItems (2 write units per started KB of the larger of the old and new item);
- `serve`: which rows its serve function read per recommendation (no trending cache; four slot rows per
  trending list).
"""
