"""An import job's rest between two stores is bounded: past a third of its lease, the lease
would run out between two renewals and the job would change hands until it failed."""

from __future__ import annotations

import math

import pytest

from activity_service.imports.jobs import MAX_REST_SECONDS, ImportJobs


@pytest.mark.parametrize("rest", [-0.1, MAX_REST_SECONDS + 0.1, math.inf, math.nan])
def test_a_rest_out_of_bounds_is_refused(rest):
    with pytest.raises(ValueError, match="rest between stores"):
        ImportJobs(store=None, imports=None, rest_seconds=rest)  # type: ignore[arg-type]


@pytest.mark.parametrize("rest", [0.0, 0.2, MAX_REST_SECONDS])
def test_a_rest_within_bounds_is_kept(rest):
    assert ImportJobs(store=None, imports=None, rest_seconds=rest).rest_seconds == rest  # type: ignore[arg-type]
