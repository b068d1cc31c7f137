"""Names shared by the CDK app, the three functions, the local emulator and the tests.

No string that crosses a boundary (environment variable, table attribute, metric, output) is spelled
twice: it is defined here and imported everywhere else.
"""

from __future__ import annotations

METRICS_NAMESPACE = "Streamrec"
SCHEMA_VERSION = 1
MODEL_NAME = "covisit-v1"

# --- Environment variables set by CDK on the functions (validated once at cold start) ---------------
ENV_STREAM_NAME = "STREAM_NAME"
ENV_USERS_TABLE = "USERS_TABLE"
ENV_ITEMS_TABLE = "ITEMS_TABLE"
ENV_DLQ_URL = "DEAD_LETTER_QUEUE_URL"
ENV_MAX_EVENT_AGE_SECONDS = "MAX_EVENT_AGE_SECONDS"
ENV_MAX_FUTURE_SKEW_SECONDS = "MAX_FUTURE_SKEW_SECONDS"
ENV_MAX_BODY_BYTES = "MAX_BODY_BYTES"
ENV_MAX_EVENTS_PER_REQUEST = "MAX_EVENTS_PER_REQUEST"
ENV_PUT_RETRY_BUDGET_SECONDS = "PUT_RETRY_BUDGET_SECONDS"
ENV_USER_TTL_SECONDS = "USER_TTL_SECONDS"
ENV_ITEM_TTL_SECONDS = "ITEM_TTL_SECONDS"
ENV_ALLOWED_LATENESS_SECONDS = "ALLOWED_LATENESS_SECONDS"
ENV_OUTBOX_RETENTION_SECONDS = "OUTBOX_RETENTION_SECONDS"
# The hot path's MaximumRecordAgeInSeconds: an aggregate branch treats a record the hot path has not
# applied after this long as given up by it (redrive applies its aggregates), instead of waiting.
ENV_HOT_PATH_MAX_RECORD_AGE_SECONDS = "HOT_PATH_MAX_RECORD_AGE_SECONDS"
ENV_EXPERIMENTS = "EXPERIMENTS_JSON"
# Powertools reads these itself.
ENV_POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
ENV_POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
ENV_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"

# --- Limits enforced in our own code (the emulator is looser than AWS) ------------------------------
MAX_EVENTS_PER_REQUEST = 500  # also the PutRecords limit
MAX_EVENT_BYTES = 8 * 1024
DDB_BATCH_GET_MAX_KEYS = 100

# --- Feature table layout ---------------------------------------------------------------------------
# Users table: one item per user, written only by the shard that owns the user (partition key user_id).
USERS_PK = "user_id"
# Items table: generic pk/sk so item profiles and trending lists share one table and one BatchGetItem.
ITEMS_PK = "pk"
ITEMS_SK = "sk"
TTL_ATTRIBUTE = "ttl"

# --- Stack outputs (read by the local emulator, tests and tools) ------------------------------------
OUTPUT_API_URL = "ApiUrl"
OUTPUT_REST_API_ID = "RestApiId"
OUTPUT_STREAM_NAME = "StreamName"
OUTPUT_USERS_TABLE = "UsersTableName"
OUTPUT_ITEMS_TABLE = "ItemsTableName"
OUTPUT_DLQ_URL = "DeadLetterQueueUrl"
OUTPUT_ON_FAILURE_QUEUE_URL = "OnFailureQueueUrl"
OUTPUT_ALARM_TOPIC_ARN = "AlarmTopicArn"

# --- Event types and their weight as evidence of interest -------------------------------------------
EVENT_TYPES = ("view", "click", "add_to_cart", "favorite", "purchase", "search", "impression")
ITEM_REQUIRED_TYPES = frozenset({"view", "add_to_cart", "favorite", "purchase"})

# --- Functions: Powertools service names (also the `service` dimension of every EMF metric) ----------
INGEST_SERVICE = "streamrec-ingest"
PROCESS_SERVICE = "streamrec-process"
AGGREGATE_SERVICE = "streamrec-aggregate"
# The experiments branch's event source mapping only receives records carrying an attribution
# (Lambda FilterCriteria pattern on the Kinesis record's JSON data).
ATTRIBUTED_RECORDS_PATTERN = {"data": {"attribution": {"variant": [{"exists": True}]}}}
EXPERIMENTS_SERVICE = "streamrec-experiments"
SERVE_SERVICE = "streamrec-serve"

# --- EMF metric names (namespace METRICS_NAMESPACE, dimension service=<function service>) ------------
# Alarms and the dashboard are built from these names, so handlers and CDK can never disagree.
METRIC_EVENTS_ACCEPTED = "EventsAccepted"
METRIC_EVENTS_REJECTED = "EventsRejected"
METRIC_EVENTS_RETRIED = "EventsRetried"
METRIC_EVENTS_FAILED = "EventsFailed"  # valid, but PutRecords still failed after retries
METRIC_RECORDS_PROCESSED = "RecordsProcessed"
METRIC_DUPLICATES_SKIPPED = "DuplicatesSkipped"
METRIC_LATE_EVENTS = "LateEvents"
METRIC_FEATURE_WRITES = "FeatureWriteRequests"
METRIC_DLQ_SENDS = "DeadLetterSends"
METRIC_BATCH_ITEM_FAILURES = "BatchItemFailures"
METRIC_RECOMMENDATION_LATENCY = "RecommendationLatency"
METRIC_RECOMMENDATIONS_SERVED = "RecommendationsServed"
METRIC_FALLBACKS = "RecommendationFallbacks"
METRIC_VARIANT_IMPRESSIONS = "VariantImpressions"
METRIC_VARIANT_CLICKS = "VariantClicks"
METRIC_VARIANT_PURCHASES = "VariantPurchases"

# --- Ingest boundary: Kinesis record and HTTP --------------------------------------------------------
# Attribute ingest adds to each event in the Kinesis record (receipt time, RFC 3339 UTC).
RECORD_RECEIVED_AT = "received_at"
# Optional: comma-separated origins allowed to call the API from a browser; empty or unset = no CORS.
ENV_CORS_ALLOWED_ORIGINS = "CORS_ALLOWED_ORIGINS"
API_KEY_HEADER = "x-api-key"
# Id of the one API key a key role's routes accept (streamrec_core.routes): CDK sets these on the functions
# serving such routes; the handlers compare them with requestContext.identity.apiKeyId.
ENV_PRODUCER_API_KEY_ID = "PRODUCER_API_KEY_ID"
ENV_READER_API_KEY_ID = "READER_API_KEY_ID"
# Dimension of METRIC_EVENTS_REJECTED naming the field that broke a rule (low cardinality: schema fields).
METRIC_DIMENSION_FIELD = "field"

# --- Infrastructure: more stack outputs, alarm names (stacks/, local emulator, tests) ----------------
OUTPUT_PRODUCER_API_KEY_ID = "ProducerApiKeyId"
OUTPUT_READER_API_KEY_ID = "ReaderApiKeyId"
OUTPUT_API_STAGE = "ApiStageName"
OUTPUT_DASHBOARD_NAME = "DashboardName"
# Alarm names are "<stack name>-<suffix>". Alarms read the metrics above with dimension service=<service>
# only: a metric also emitted with extra dimensions (e.g. METRIC_DIMENSION_FIELD) must also be emitted
# with service alone, or the alarm never sees it.
ALARM_ITERATOR_AGE = "iterator-age"
ALARM_PROCESS_ERRORS = "process-errors"
ALARM_PROCESS_THROTTLES = "process-throttles"
ALARM_DLQ_DEPTH = "dlq-depth"
ALARM_ON_FAILURE_DEPTH = "on-failure-depth"
ALARM_INGEST_REJECTION_RATE = "ingest-rejection-rate"
ALARM_KINESIS_WRITE_THROTTLES = "kinesis-write-throttles"
ALARM_PUT_RECORDS_FAILURES = "put-records-failures"
ALARM_USERS_READ_THROTTLES = "users-table-read-throttles"
ALARM_USERS_WRITE_THROTTLES = "users-table-write-throttles"
ALARM_ITEMS_READ_THROTTLES = "items-table-read-throttles"
ALARM_ITEMS_WRITE_THROTTLES = "items-table-write-throttles"
ALARM_API_5XX_RATE = "api-5xx-rate"
ALARM_API_P99_LATENCY = "api-p99-latency"
ALARM_SERVE_FALLBACK_RATE = "serve-fallback-rate"
# Aggregate branches (each its own event source mapping): lag, errors, records no longer resolvable.
ALARM_AGGREGATE_ITERATOR_AGE = "aggregate-iterator-age"
ALARM_AGGREGATE_ERRORS = "aggregate-errors"
ALARM_AGGREGATE_UNRESOLVED = "aggregate-unresolved"
ALARM_EXPERIMENTS_ITERATOR_AGE = "experiments-iterator-age"
ALARM_EXPERIMENTS_ERRORS = "experiments-errors"
ALARM_EXPERIMENTS_UNRESOLVED = "experiments-unresolved"
METRIC_REQUESTS_REFUSED = "RequestsRefused"  # whole POST /v1/events requests answered 4xx before validation

# --- Feature tables: attributes and key prefixes (process and aggregate write, serve and tools read) -
# Every row is stored as its key attributes, a version (every write is conditional on the version it
# read), the TTL attribute and one binary attribute holding the rest, msgpack-encoded by
# `streamrec_core.features.dynamodb` (attribute names count in DynamoDB's item size: they are short).
ATTR_VERSION = "v"
ATTR_DATA = "d"
# Items table rows (keys ITEMS_PK / ITEMS_SK): an item's co-visitation neighbours, one trending partial
# per stream shard, the merged trending lists, experiment counters.
ITEM_PK_PREFIX = "item#"
ITEM_SK = "covisit"
TRENDING_PARTIAL_PK = "trending#partial"  # sort key: the stream shard id
TRENDING_GLOBAL_PK = "trending#global"
TRENDING_CATEGORY_PK_PREFIX = "trending#cat#"
TRENDING_LIST_SK = "list"
EXPERIMENT_PK_PREFIX = "experiment#"
EXPERIMENT_VARIANT_SK_PREFIX = "variant#"
# How far each aggregate branch has consumed each shard (sort key: the shard id); the hot path reads
# them to release outbox entries the branches no longer need.
PROGRESS_PK_PREFIX = "progress#"
ITEMS_BRANCH = "items"
EXPERIMENTS_BRANCH = "experiments"
# Experiment id counted for attributed events that name no experiment_id.
DEFAULT_EXPERIMENT_ID = "default"
DEFAULT_VARIANT = "default"

# --- Process function: dead-letter message and more metrics -------------------------------------------
DLQ_PAYLOAD = "payload_base64"
DLQ_REASON = "reason"
DLQ_SHARD_ID = "shard_id"
DLQ_SEQUENCE_NUMBER = "sequence_number"
DLQ_PARTITION_KEY = "partition_key"
DLQ_EVENT_SOURCE_ARN = "event_source_arn"
METRIC_EVENTS_APPLIED = "EventsApplied"
METRIC_FEATURE_WRITE_CONFLICTS = "FeatureWriteConflicts"
METRIC_FEATURE_WRITE_THROTTLES = "FeatureWriteThrottles"
METRIC_REDRIVE_UNCERTAIN = "RedriveUncertain"
# Aggregate branches (items, experiments).
METRIC_AGGREGATE_EFFECTS = "AggregateEffects"  # records with an effect on the branch
METRIC_AGGREGATE_NOT_READY = "AggregateNotReady"  # left for a retry: the hot path had not applied them
METRIC_AGGREGATE_UNRESOLVED = "AggregateUnresolved"  # outbox entry expired: lag beyond the retention
METRIC_AGGREGATE_GIVEN_UP = "AggregateGivenUp"  # skipped: the hot path gave them up (redrive applies them)
METRIC_TRENDING_MERGES = "TrendingMerges"
# Dimensions of the per-variant metrics (METRIC_VARIANT_*), emitted besides the service-only series.
METRIC_DIMENSION_EXPERIMENT = "experiment"
METRIC_DIMENSION_VARIANT = "variant"
