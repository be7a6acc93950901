"""The history room (imports, past workouts, export): every call goes through a gateway, as
a user's would; the stack is the session's unless a module needs its own."""

from __future__ import annotations

import pytest

from tests.support.client import GatewayApi


@pytest.fixture
def api(stack) -> GatewayApi:
    return GatewayApi(stack)
