"""A small producer client for streamrec's `POST /v1/events` (standard library only).

    from streamrec_client import StreamrecClient

    client = StreamrecClient("https://abc.execute-api.eu-west-1.amazonaws.com/prod", api_key="...")
    result = client.send([{"event_type": "view", "user_id": "u1", "item_id": "i9"}])
    result.raise_for_failures()

See docs/producers.md.
"""

from streamrec_client.client import (
    FailedEvent,
    Producer,
    RejectedEvent,
    SendResult,
    StreamrecClient,
    StreamrecError,
    TransportError,
    new_event_id,
)

__all__ = [
    "FailedEvent",
    "Producer",
    "RejectedEvent",
    "SendResult",
    "StreamrecClient",
    "StreamrecError",
    "TransportError",
    "new_event_id",
]
