"""Nightly ETL: users, goals and workout sessions into a PostgreSQL star schema for reporting.

``python -m etl run`` extracts what changed since the stored watermarks from the user database
(SQLAlchemy) and the activity store (MongoDB or the embedded engine), cleans every row (the ones
that can't be loaded go to ``rejected_rows``), and loads the rest with COPY and upserts in one
transaction per run. ``etl.pipeline`` is the run, ``etl.sources`` the extract, ``etl.transform``
the cleaning, ``etl.load`` the staging and merging, ``etl.schema``/``etl.views`` the warehouse.
"""

from __future__ import annotations

from typing import Any

SERVICE_NAME = "etl"


class EtlError(Exception):
    """A problem the command line reports in one line, without a traceback."""


DEFAULTS: dict[str, Any] = {
    # The sources: the same variables the user and activity services read.
    "DATABASE_URL": "",
    "DATABASE_PASSWORD": "",
    "MONGO_URL": "",
    "MONGO_PASSWORD": "",
    # Empty: an embedded PostgreSQL server with its data in DATA_DIR/warehouse.
    "WAREHOUSE_URL": "",
    "WAREHOUSE_PASSWORD": "",
    "WAREHOUSE_CONNECT_TIMEOUT_SECONDS": 5,
    "WAREHOUSE_STATEMENT_TIMEOUT_SECONDS": 600,
    "WAREHOUSE_LOCK_TIMEOUT_SECONDS": 30,
    "ETL_SCHEDULE": "0 2 * * *",
    "ETL_BATCH_SIZE": 10_000,
    # Rows changed this recently are left for the next run: a write whose updated_at was taken
    # before the cutoff may not be visible yet (the store's operation timeout bounds that).
    "ETL_SETTLE_SECONDS": 10.0,
    "ETL_SOURCE_TIMEOUT_SECONDS": 120.0,
    # Test hook: sleep this long before committing, so a test can kill a run mid-way.
    "ETL_DEBUG_PAUSE_SECONDS": 0.0,
}
