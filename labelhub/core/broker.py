"""The Redis broker transport the workers and the API use: kombu's, with one failure turned into what it is.

When a worker loses the broker, Celery's consumer first `collect()`s the connection (which drops the
transport's client) and then closes it. Closing a Redis channel that still holds unacknowledged
messages (every task is acks_late, so a prefork `cpu` worker busy with an export or a webhook delivery
holds one) restores them through a new Redis client whose parameters are read from that dropped client:
`AttributeError: 'NoneType' object has no attribute 'hostname'`. That is no connection error, so
Celery stops the worker ("Unrecoverable error"), and the sweeps that run on it stop with it. The same
happens to the late acknowledgement of the task that finishes after the broker came back (`... has no
attribute 'client'`). The solo pool hides it: its task blocks the event loop, so the message is
acknowledged before the loss is seen (kombu issue 582 shows the same `_connparams` failure on a closed
channel; Celery 5.7 / kombu 5.7 here).

Here such a channel raises redis' ConnectionError instead, one of the transport's connection errors:
Celery then ignores it while closing (the message stays unacknowledged in the broker, restored after the
visibility timeout if the broker kept it; the job rows and their sweeps carry the work either way), logs
the failed acknowledgement, and reconnects. Selected by CELERY_BROKER_TRANSPORT in settings for redis://
broker URLs.
"""

from __future__ import annotations

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection is None or self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection of this channel was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
