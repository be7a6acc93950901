"""Live group sessions in the state Redis: session, members, presence, votes and the event log.

Every event gets the session's next sequence number, is appended to the session's bounded log
and published on its channel *in one Lua script*, so the order of numbers, of the log and of
what every gateway receives is the same. Any gateway can therefore serve any participant, and a
participant who reconnects asks for what follows the last number they saw.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from fitness.clock import now_iso as _now
from fitness.redisconn import live_user_channel

PREFIX = "fgt:live"
SESSION_CHANNELS = f"{PREFIX}:s:*"
USER_CHANNELS = f"{PREFIX}:u:*"

# KEYS: seq, log, session hash. ARGV: channel, event JSON minus its opening brace, log bound,
# ttl seconds. Returns the event as published.
_PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
local event = '{"seq":' .. seq .. ',' .. ARGV[2]
redis.call('RPUSH', KEYS[2], event)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('PUBLISH', ARGV[1], event)
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[4]) end
return event
"""

# Open a vote unless one is open. KEYS: session hash. ARGV: vote JSON.
_PROPOSE = """
if redis.call('HEXISTS', KEYS[1], 'vote') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'vote', ARGV[1])
return 1
"""

# Close the open vote with id ARGV[1]: return {vote, ballots...} and clear both.
# KEYS: session hash, ballots hash.
_CLOSE = """
local vote = redis.call('HGET', KEYS[1], 'vote')
if not vote or cjson.decode(vote).vote_id ~= ARGV[1] then return false end
local ballots = redis.call('HGETALL', KEYS[2])
redis.call('HDEL', KEYS[1], 'vote')
redis.call('DEL', KEYS[2])
table.insert(ballots, 1, vote)
return ballots
"""


def session_channel(session_id: str) -> str:
    return f"{PREFIX}:s:{session_id}"


def user_channel(user_id: str) -> str:
    return live_user_channel(user_id)


class LiveStore:
    """Redis operations of live sessions; every key of a session expires after ``ttl``."""

    def __init__(self, client: redis.Redis, ttl_seconds: int, max_events: int):
        self.redis = client
        self.ttl = ttl_seconds
        self.max_events = max_events
        self._publish = client.register_script(_PUBLISH)
        self._propose = client.register_script(_PROPOSE)
        self._close = client.register_script(_CLOSE)

    def create(self, session_id: str, creator_id: str, workout_type: str, name: str) -> None:
        """Store a new open session."""
        key = _key(session_id)
        fields = {"creator_id": creator_id, "workout_type": workout_type, "name": name}
        fields.update(status="open", created_at=_now())
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self.ttl)
            pipe.execute()

    def session(self, session_id: str) -> dict[str, str] | None:
        """Return the session's fields, or None if there is no such session (or it expired)."""
        found = self.redis.hgetall(_key(session_id))
        return {k.decode(): v.decode() for k, v in found.items()} or None

    def publish(self, session_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """Number, log and broadcast ``event``; return it with its ``seq``."""
        body = json.dumps(event, separators=(",", ":"))[1:]
        keys = [f"{_key(session_id)}:seq", f"{_key(session_id)}:log", _key(session_id)]
        args = [session_channel(session_id), body, self.max_events, self.ttl]
        return json.loads(self._publish(keys=keys, args=args))

    def notify_user(self, user_id: str, event: dict[str, Any]) -> None:
        """Send ``event`` to every connection of ``user_id``, on any gateway."""
        self.redis.publish(user_channel(user_id), json.dumps(event, separators=(",", ":")))

    def events_after(self, session_id: str, seq: int) -> list[dict[str, Any]]:
        """Return the logged events numbered above ``seq`` (the log keeps the latest only)."""
        logged = [json.loads(raw) for raw in self.redis.lrange(f"{_key(session_id)}:log", 0, -1)]
        return [event for event in logged if event["seq"] > seq]

    def timeline(self, session_id: str) -> list[dict[str, Any]]:
        return self.events_after(session_id, 0)

    def add_member(self, session_id: str, user_id: str) -> bool:
        """Record ``user_id`` as a participant; return True if they were not one (or had left)."""
        key = f"{_key(session_id)}:members"
        before = self.redis.hget(key, user_id)
        member = json.loads(before) if before else {"joined_at": _now()}
        was_in = before is not None and member.get("left_at") is None
        member["left_at"] = None
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, user_id, json.dumps(member))
            pipe.expire(key, self.ttl)
            pipe.execute()
        return not was_in

    def mark_left(self, session_id: str, user_id: str) -> None:
        key = f"{_key(session_id)}:members"
        before = self.redis.hget(key, user_id)
        if before is None:
            return
        member = json.loads(before)
        member["left_at"] = _now()
        self.redis.hset(key, user_id, json.dumps(member))

    def members(self, session_id: str) -> dict[str, dict[str, Any]]:
        found = self.redis.hgetall(f"{_key(session_id)}:members")
        return {k.decode(): json.loads(v) for k, v in found.items()}

    def heartbeat(self, session_id: str, user_id: str, connection_id: str) -> None:
        """Say this connection of ``user_id`` is alive in the session (see ``present``)."""
        key = f"{_key(session_id)}:presence"
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {f"{user_id}|{connection_id}": time.time()})
            pipe.expire(key, self.ttl)
            pipe.execute()

    def heartbeat_many(self, beats: dict[str, list[str]]) -> None:
        """Refresh many connections at once: session id -> ``user_id|connection_id`` members.

        One pipelined round trip for all of a worker's sockets, instead of one per socket.
        """
        now = time.time()
        with self.redis.pipeline(transaction=False) as pipe:
            for session_id, members in beats.items():
                key = f"{_key(session_id)}:presence"
                pipe.zadd(key, dict.fromkeys(members, now))
                pipe.expire(key, self.ttl)
            pipe.execute()

    def drop_presence(self, session_id: str, user_id: str, connection_id: str) -> None:
        self.redis.zrem(f"{_key(session_id)}:presence", f"{user_id}|{connection_id}")

    def present(self, session_id: str, within_seconds: float) -> list[str]:
        """Return the users with a connection that sent a heartbeat within the window."""
        key = f"{_key(session_id)}:presence"
        entries = self.redis.zrangebyscore(key, time.time() - within_seconds, "+inf")
        return sorted({entry.decode().split("|", 1)[0] for entry in entries})

    def add_exercise(self, session_id: str, update: dict[str, Any]) -> None:
        key = f"{_key(session_id)}:exercises"
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, json.dumps(update))
            pipe.ltrim(key, -self.max_events, -1)
            pipe.expire(key, self.ttl)
            pipe.execute()

    def exercises(self, session_id: str) -> list[dict[str, Any]]:
        return [
            json.loads(raw) for raw in self.redis.lrange(f"{_key(session_id)}:exercises", 0, -1)
        ]

    def open_vote(self, session_id: str, vote: dict[str, Any]) -> bool:
        """Open ``vote`` unless one is open already."""
        return bool(self._propose(keys=[_key(session_id)], args=[json.dumps(vote)]))

    def current_vote(self, session_id: str) -> dict[str, Any] | None:
        raw = self.redis.hget(_key(session_id), "vote")
        return json.loads(raw) if raw else None

    def cast(self, session_id: str, user_id: str, choice: str) -> None:
        key = f"{_key(session_id)}:ballots"
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, user_id, choice)
            pipe.expire(key, self.ttl)
            pipe.execute()

    def tally(self, session_id: str) -> dict[str, int]:
        """Return the open vote's ballots so far: ``{"yes": n, "no": m}``."""
        ballots = [v.decode() for v in self.redis.hvals(f"{_key(session_id)}:ballots")]
        return {"yes": ballots.count("yes"), "no": ballots.count("no")}

    def close_vote(self, session_id: str, vote_id: str) -> tuple[dict, dict[str, str]] | None:
        """Close the open vote ``vote_id``; return it and its ballots (None if not open)."""
        keys = [_key(session_id), f"{_key(session_id)}:ballots"]
        found = self._close(keys=keys, args=[vote_id])
        if not found:
            return None
        vote, flat = json.loads(found[0]), [item.decode() for item in found[1:]]
        ballots = dict(zip(flat[::2], flat[1::2], strict=True))
        rounds = f"{_key(session_id)}:votes"
        self.redis.rpush(rounds, json.dumps({**vote, "ballots": ballots}))
        self.redis.expire(rounds, self.ttl)
        return vote, ballots

    def votes(self, session_id: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.redis.lrange(f"{_key(session_id)}:votes", 0, -1)]

    def end(self, session_id: str) -> bool:
        """Mark the session ended; False if it already was (only one ending counts)."""
        key = _key(session_id)
        ended = self.redis.hsetnx(key, "ended_at", _now())
        if ended:
            self.redis.hset(key, "status", "ended")
        return bool(ended)

    def queue_save(self, session_id: str) -> None:
        """Remember that the session must still be saved (retried until it is)."""
        self.redis.sadd(f"{PREFIX}:unsaved", session_id)
        for suffix in ("", ":log", ":members", ":exercises", ":votes", ":seq"):
            self.redis.persist(_key(session_id) + suffix)  # keep it until it is saved

    def unsaved(self) -> list[str]:
        return [raw.decode() for raw in self.redis.smembers(f"{PREFIX}:unsaved")]

    def saved(self, session_id: str) -> None:
        self.redis.srem(f"{PREFIX}:unsaved", session_id)
        for suffix in ("", ":log", ":members", ":exercises", ":votes", ":seq"):
            self.redis.expire(_key(session_id) + suffix, self.ttl)


def _key(session_id: str) -> str:
    return f"{PREFIX}:s:{session_id}"
