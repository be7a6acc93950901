"""The hashing functions a hashing process runs: unknown accounts and broken hashes never match."""

from __future__ import annotations

import pytest

from fitness.password_hashing import DUMMY_HASH, new_hash, verify_and_refresh

DUMMY_PASSWORD = "not-a-real-password"  # what DUMMY_HASH hashes: in the source for anyone


def test_a_right_password_matches_and_a_current_hash_is_kept():
    assert verify_and_refresh(new_hash("correct horse"), "correct horse") == (True, None)


@pytest.mark.parametrize("stored", [None, "", "not a hash"])
def test_the_dummy_password_opens_no_account(stored):
    assert verify_and_refresh(DUMMY_HASH, DUMMY_PASSWORD)[0], "the dummy is a real hash"
    assert verify_and_refresh(stored, DUMMY_PASSWORD) == (False, None)
