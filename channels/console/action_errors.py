"""How an operator action's refusal reads over HTTP: no such message → 404, refused by its rule → 409.

One mapping for the pages, the JSON API and the parked-queue release, so the same refusal gets the
same status wherever the operator clicked or called.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.exceptions import HTTPException

from router.actions import ActionError, NoSuchMessageError


def status_of(exc: ActionError) -> int:
    return 404 if isinstance(exc, NoSuchMessageError) else 409


@contextmanager
def as_http_errors() -> Iterator[None]:
    """Raise an action's refusal as the HTTPException with its status and reason."""
    try:
        yield
    except ActionError as exc:
        raise HTTPException(status_of(exc), str(exc)) from exc
