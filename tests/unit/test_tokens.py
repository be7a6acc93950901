"""Login tokens: a checked token is remembered, but never past its expiry or under another key."""

from __future__ import annotations

import time

import jwt
import pytest

from fitness import auth
from fitness.errors import AuthenticationFailed

SECRET = "s" * 40
OTHER_SECRET = "t" * 40


def test_a_token_checked_once_gives_the_same_claims_again_each_a_copy():
    token = auth.issue_token("user-1", SECRET, 3600)
    first = auth.verify_claims(token, SECRET)
    first["sub"] = "someone-else"
    assert auth.verify_claims(token, SECRET)["sub"] == "user-1"
    assert auth.verify_token(token, SECRET) == "user-1"


def test_a_remembered_token_is_refused_once_it_expires():
    token = auth.issue_token("user-2", SECRET, 2)
    assert auth.verify_token(token, SECRET) == "user-2"
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(AuthenticationFailed, match="expired"):
        auth.verify_token(token, SECRET)


def test_a_remembered_token_is_refused_under_another_secret():
    token = auth.issue_token("user-3", SECRET, 3600)
    assert auth.verify_token(token, SECRET) == "user-3"
    with pytest.raises(AuthenticationFailed, match="invalid"):
        auth.verify_token(token, OTHER_SECRET)


def test_a_refusal_is_not_remembered():
    token = auth.issue_token("user-4", SECRET, 3600)
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for _ in range(2):
        with pytest.raises(AuthenticationFailed, match="invalid"):
            auth.verify_token(tampered, SECRET)
    assert auth.verify_token(token, SECRET) == "user-4"
