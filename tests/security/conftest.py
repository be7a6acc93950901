"""The security room's probe target: one stack for the authorization matrix and the hostile
input probes, with a cache server and the settings of ``tests.support.hostile.STACK_ENV``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.stack import LocalStack
from tests.support.hostile import STACK_ENV, Target
from tests.support.stack import gateway_tier, make_replicas, running


@pytest.fixture(scope="package")
def probe_stack(tmp_path_factory) -> Iterator[LocalStack]:
    data_dir = tmp_path_factory.mktemp("probes")
    with running(data_dir, make_replicas(1) + gateway_tier(1, 1), STACK_ENV) as started:
        yield started


@pytest.fixture
def gateway(probe_stack) -> Target:
    return Target(
        probe_stack.replicas_of("gateway")[0].url, probe_stack.data_dir, probe_stack.mongo_url
    )
