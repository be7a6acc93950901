"""Live notices from the user service: a goal was achieved, for the owner's open connections.

Published on the owner's channel in the state Redis, where every gateway listens and passes it
to that user's WebSockets. Best effort by design: the goal itself is stored either way, and a
notice that could not be sent is only a missed alert, so a slow or absent Redis never fails or
slows the call that counted the workout (short timeout, errors logged).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from fitness.clock import now_iso
from fitness.redisconn import live_user_channel, state_redis

log = logging.getLogger(__name__)


class GoalEvents:
    """Publish ``goal_achieved`` events (nowhere when no state Redis is configured)."""

    def __init__(self, url: str, timeout_seconds: float, password: str = ""):
        self.client = None
        if url:
            self.client = state_redis(url, timeout_seconds, max_connections=16, password=password)

    def goal_achieved(self, goal: dict[str, Any]) -> None:
        if self.client is None:
            return
        event = {"type": "goal_achieved", "goal": goal}
        event["at"] = now_iso()
        try:
            self.client.publish(live_user_channel(goal["user_id"]), json.dumps(event))
        except redis.RedisError as exc:
            log.warning("could not announce achieved goal %s: %s", goal["goal_id"], exc)
