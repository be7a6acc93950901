"""Schemathesis hooks: aim the generated requests at a real user's own resources.

Loaded by the schemathesis CLI through ``SCHEMATHESIS_HOOKS`` (see ``fuzz_api.run``), which
passes the seeded ids in ``FUZZ_*`` environment variables. Without them almost every request
would name a random ``user_id`` and stop at the 403 of the ownership check, so the fuzzer
would never reach validation and storage. Most path parameters therefore name the fuzzing
user's own user, goal, workout or saga; the rest keep the generated value, so foreign and
malformed ids stay covered.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

OWN_SHARE = 8  # out of 10 generated values are replaced by a real id

_KNOWN = {
    "user_id": "FUZZ_USER_ID",
    "goal_id": "FUZZ_GOAL_ID",
    "session_id": "FUZZ_SESSION_ID",
    "saga_id": "FUZZ_SAGA_ID",
}


def _seeded() -> dict[str, list[str]]:
    return {name: os.environ[var].split(",") for name, var in _KNOWN.items() if os.environ.get(var)}


# The seeded ids, then every id the run's own successful answers named (latest last): a workout
# the fuzzer started can then be ended, a goal it created changed. Read at draw time.
_SEEN = _seeded()
MAX_SEEN = 50


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Remember the ids of records the fuzzing user's successful requests made."""
    own = os.environ.get("FUZZ_USER_ID")
    if not own or not 200 <= response.status_code < 300:
        return
    try:
        body = response.json()
    except Exception:  # not JSON: nothing to remember
        return
    if not isinstance(body, dict) or body.get("user_id", own) != own:
        return
    for name in ("session_id", "goal_id", "saga_id"):
        value = body.get(name)
        seen = _SEEN.setdefault(name, [])
        if isinstance(value, str) and value not in seen:
            seen.append(value)
            del seen[:-MAX_SEEN]


def _known(name: str, generated: Any) -> st.SearchStrategy:
    """A known id 8 times in 10 (of the ids known when drawn), else the generated value."""
    if name not in _SEEN:
        return st.just(generated)
    ids = _SEEN[name]
    return st.integers(0, 9).flatmap(
        lambda n: (
            st.integers(0, 10**6).map(lambda i: ids[-1 - i % len(ids)])
            if n < OWN_SHARE
            else st.just(generated)
        )
    )


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Replace each known path parameter by a real id 8 times in 10."""
    return st.fixed_dictionaries(
        {name: _known(name, value) for name, value in (path_parameters or {}).items()}
    )


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Name the fuzzing user in a body's ``user_id`` 8 times in 10 (the rest stay generated).

    A ``user_id`` that is not a valid one (a negative case made it so) stays as generated:
    replacing it would turn the case valid while schemathesis still expects a refusal.
    """
    own = os.environ.get("FUZZ_USER_ID")
    if not own or not isinstance(body, dict) or not _valid_user_id(body.get("user_id")):
        return st.just(body)
    return st.integers(0, 9).map(lambda n: {**body, "user_id": own} if n < OWN_SHARE else body)


def _valid_user_id(value: Any) -> bool:
    """The body schema's rule for ``user_id``: a string of 1 to 64 characters."""
    return isinstance(value, str) and 1 <= len(value) <= 64
