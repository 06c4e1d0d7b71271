"""What the sandbox's pages share: the render and login-guard callables the app hands each
module of routes, and reading a number from the query string as a shop would (anything that
is not one, or below ``least``, reads as the default)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

Render = Callable[..., Response]
Guard = Callable[[Request], Response | None]
Handler = Callable[[Request], Awaitable[Response]]


def guarded(guard: Guard, handler: Handler) -> Handler:
    """``handler`` for a logged-in seller; anyone else is sent to the login page."""

    async def page(request: Request) -> Response:
        return guard(request) or await handler(request)

    return page


def query_int(request: Request, name: str, default: int, *, least: int = 1) -> int:
    try:
        return max(least, int(request.query_params.get(name, str(default))))
    except ValueError:
        return default
