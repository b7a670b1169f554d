"""`Server-Timing` on every response: how long the application took, and its database share.

    Server-Timing: app;dur=12.3, db;dur=4.1;desc="6 queries"

`app` is the time from this middleware (first in MIDDLEWARE) receiving the request to the response
leaving it: the whole Django stack (authentication, throttles, the view, serialization), not the time
the request waited in gunicorn's queue or the body's transfer (a streamed body is produced afterwards).
`db` is the time spent in the default database's cursor calls during that span. Browsers show both in
their developer tools; `benchmarks/labeler_load.py` reads them for its server-side percentiles.
"""

from __future__ import annotations

import time

from django.db import connection


class _QueryClock:
    """A database execute wrapper summing the time of the statements it wraps."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start
            self.count += 1


class ServerTimingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        clock = _QueryClock()
        with connection.execute_wrapper(clock):
            response = self.get_response(request)
        app_ms = (time.perf_counter() - start) * 1000
        timing = f'app;dur={app_ms:.1f}, db;dur={clock.seconds * 1000:.1f};desc="{clock.count} queries"'
        previous = response.get("Server-Timing")
        response["Server-Timing"] = f"{previous}, {timing}" if previous else timing
        return response
