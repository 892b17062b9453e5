"""Every request's outer layer: metrics, then errors as JSON, then the rate limit.

One middleware, not three: an event stream holds its middlewares' frames for as long as it is
open, about 400 bytes each, and one gateway holds 10,000 streams.
"""

from __future__ import annotations

import time

from aiohttp import web

from gateway.errors import Handler, json_error
from gateway.metrics import observe, status_of
from gateway.ratelimit import admit


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = "500"
    try:
        try:
            await admit(request)  # its 429 is counted, and JSON
            response = await handler(request)
        except Exception as exc:
            replacement = json_error(request, exc)
            if replacement is None:
                raise
            raise replacement from None
        status = str(response.status)
        return response
    except BaseException as exc:
        status = status_of(exc)  # what the client gets: the JSON replacement's
        raise
    finally:
        observe(request, status, started)
