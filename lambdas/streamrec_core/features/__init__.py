"""The feature model, one concept per module:

- `config`: FeatureConfig, the tunables and their bounds;
- `keys`: which row holds what, and its DynamoDB key;
- `events`: a Kinesis record decoded and checked into the Event the folds take;
- `decay`: exponential decay in event-time steps;
- `user_fold`: the user row and how a user's events change it (the hot path's only write), with the
  outbox through which the aggregate branches learn each record's verdict and session partner;
- `item_aggregates`: co-visitation rows and how a record resolves into an aggregate effect;
- `trending`: per-shard trending partials and the merged lists;
- `counters`: experiment counters per variant;
- `codec`: the compact DynamoDB form of every row;
- `store`: the store port and its errors; `dynamodb`: the DynamoDB store; `memory_store`: an in-memory
  store with DynamoDB's semantics and bill;
- `reference`: every distinct event applied once, in order (offline evaluation, expected test state).
"""
