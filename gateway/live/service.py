"""What each live message does: the rules of group sessions, free of sockets and Redis details."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from fitness.clock import now_iso as _now
from gateway.live import protocol as p
from gateway.live.connection import Connection
from gateway.live.hub import Hub
from gateway.live.protocol import LiveError
from gateway.live.store import LiveStore

log = logging.getLogger(__name__)

# A joined message lists this many participants at most: listing thousands in every join
# would make joining a big session cost O(N) per socket (O(N^2) for everyone).
PRESENCE_LISTED = 100
PRESENCE_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class LiveSettings:
    heartbeat_seconds: float = 10.0
    leave_grace_seconds: float = 30.0
    max_message_bytes: int = 4096
    messages_per_second: str = "20 per second"
    queue_size: int = 1000

    @property
    def presence_window(self) -> float:
        return 3 * self.heartbeat_seconds


class LiveService:
    """Handle one parsed message from one connection; publish what others must see."""

    def __init__(
        self,
        store: LiveStore,
        hub: Hub,
        settings: LiveSettings,
        save_session: Callable[[str], None],
    ):
        self.store = store
        self.hub = hub
        self.settings = settings
        self.save_session = save_session
        self._presence_cache: dict[str, tuple[float, list[str]]] = {}
        self._handlers: dict[type, Callable[[Connection, Any], dict | None]] = {
            p.CreateSession: self.create_session,
            p.JoinSession: self.join_session,
            p.LeaveSession: self.leave_session,
            p.ChatMessage: self.chat,
            p.ExerciseUpdate: self.exercise_update,
            p.ProposeExercise: self.propose,
            p.Vote: self.vote,
            p.CloseVote: self.close_vote,
            p.Presence: self.presence,
            p.EndSession: self.end_session,
            p.Ping: lambda connection, message: {"type": "pong"},
        }

    def handle(self, connection: Connection, message: p.Message) -> dict[str, Any] | None:
        """Run ``message``; return the direct answer to its sender, if any."""
        if getattr(message, "user_id", None) not in (None, connection.user_id):
            raise LiveError("forbidden", "user_id must be your own.")
        return self._handlers[type(message)](connection, message)

    # --- joining and leaving -----------------------------------------------------------------

    def create_session(self, connection: Connection, message: p.CreateSession) -> None:
        session_id = str(uuid.uuid4())
        self.store.create(session_id, connection.user_id, message.workout_type, message.name)
        log.info("live session %s created", session_id, extra=_fields(session_id, connection))
        connection.send({"type": "session_created", "session_id": session_id})
        self._join(connection, session_id, 0)

    def join_session(self, connection: Connection, message: p.JoinSession) -> None:
        session = self.store.session(message.session_id)
        if session is None:
            raise LiveError("session_not_found", f"No live session {message.session_id!r}.")
        if session.get("status") != "open":
            # Too late to take part, but not to catch up: a client that was away when the
            # session ended still gets what it missed, ``session_ended`` included.
            self._replay_ended(connection, message.session_id, session, message.last_seq)
            return
        self._join(connection, message.session_id, message.last_seq)

    def _replay_ended(
        self, connection: Connection, session_id: str, session: dict, last_seq: int
    ) -> None:
        connection.send({**self._joined_view(session_id, session, None), "status": "ended"})
        for event in self.store.events_after(session_id, last_seq):
            connection.send(event)

    def _join(self, connection: Connection, session_id: str, last_seq: int) -> None:
        connection.start_sync(session_id, last_seq)
        self.hub.join(session_id, connection)
        self.store.heartbeat(session_id, connection.user_id, connection.id)
        if self.store.add_member(session_id, connection.user_id):
            self._publish(session_id, connection, "participant_joined")
        session = self.store.session(session_id) or {}
        connection.send(
            {**self._joined_view(session_id, session, connection.user_id), "status": "open"}
        )
        connection.finish_sync(session_id, self.store.events_after(session_id, last_seq))

    def _joined_view(self, session_id: str, session: dict, joiner: str | None) -> dict[str, Any]:
        return {
            "type": "joined",
            "session_id": session_id,
            "creator_id": session.get("creator_id"),
            "workout_type": session.get("workout_type"),
            "name": session.get("name"),
            **self._presence_summary(session_id, joiner),
            "vote": self.store.current_vote(session_id),
            "tally": self.store.tally(session_id),
        }

    def _presence_summary(self, session_id: str, joiner: str | None) -> dict[str, Any]:
        """Who is here, listing at most PRESENCE_LISTED (ask ``presence`` for all of them).

        Read from Redis at most once a second per session and worker: when thousands join a
        session at once, reading the whole presence set for each join costs O(N^2). The joiner
        is always listed; others who joined within the last second may not be yet.
        """
        now = time.monotonic()
        cached = self._presence_cache.get(session_id)
        if cached is None or cached[0] < now:
            present = self.store.present(session_id, self.settings.presence_window)
            cached = (now + PRESENCE_CACHE_SECONDS, present)
            self._presence_cache[session_id] = cached
            for stale in [k for k, (until, _) in self._presence_cache.items() if until < now]:
                del self._presence_cache[stale]
        present = cached[1]
        listed = present[:PRESENCE_LISTED]
        if joiner is not None and joiner not in present:
            present, listed = [*present, joiner], [joiner, *listed][:PRESENCE_LISTED]
        return {"presence": listed, "present_count": len(present)}

    def leave_session(self, connection: Connection, message: p.LeaveSession) -> None:
        session_id = self._joined(connection, message, must_be_open=False)
        self._detach(connection, session_id)
        self.store.mark_left(session_id, connection.user_id)
        self._publish(session_id, connection, "participant_left", reason="left")
        connection.send({"type": "left", "session_id": session_id})

    def disconnected(self, connection: Connection) -> None:
        """Treat a lost connection as leaving, unless the user is back within the grace period."""
        for session_id in list(connection.sessions):
            self._detach(connection, session_id)
            timer = threading.Timer(
                self.settings.leave_grace_seconds,
                self._leave_if_gone,
                args=(session_id, connection.user_id),
            )
            timer.daemon = True
            timer.start()

    def _leave_if_gone(self, session_id: str, user_id: str) -> None:
        try:
            if user_id in self.store.present(session_id, self.settings.presence_window):
                return  # reconnected, here or on another gateway
            self.store.mark_left(session_id, user_id)
            event = {"type": "participant_left", "session_id": session_id, "sender": user_id}
            self.store.publish(session_id, {**event, "at": _now(), "reason": "disconnected"})
        except Exception:  # a timer must not die loudly; the presence list stays right anyway
            log.exception("could not announce that %s left %s", user_id, session_id)

    def _detach(self, connection: Connection, session_id: str) -> None:
        self.hub.leave(session_id, connection)
        connection.forget(session_id)
        self.store.drop_presence(session_id, connection.user_id, connection.id)

    def heartbeats_forever(self, stopped: threading.Event) -> None:
        """Refresh the presence of every socket on this worker each heartbeat (a worker loop)."""
        while not stopped.wait(self.settings.heartbeat_seconds):
            try:
                self.heartbeat_all()
            except redis.RedisError as exc:
                log.warning("live presence not refreshed: %s", exc)

    def heartbeat_all(self) -> None:
        """One pipelined write for all local sockets: per-socket writes cost O(sockets) trips."""
        beats: dict[str, list[str]] = defaultdict(list)
        for connection in self.hub.connections():
            for session_id in list(connection.sessions):
                beats[session_id].append(f"{connection.user_id}|{connection.id}")
        if beats:
            self.store.heartbeat_many(beats)

    # --- what happens in a session -----------------------------------------------------------

    def chat(self, connection: Connection, message: p.ChatMessage) -> None:
        session_id = self._joined(connection, message)
        self._publish(session_id, connection, "chat_message", message=message.message)

    def exercise_update(self, connection: Connection, message: p.ExerciseUpdate) -> None:
        session_id = self._joined(connection, message)
        update = message.model_dump(
            include={"exercise", "sets", "reps", "weight_kg", "duration_seconds"},
            exclude_none=True,
        )
        self.store.add_exercise(session_id, {"user_id": connection.user_id, "at": _now(), **update})
        self._publish(session_id, connection, "exercise_update", **update)

    def propose(self, connection: Connection, message: p.ProposeExercise) -> None:
        session_id = self._joined(connection, message)
        vote = {"vote_id": uuid.uuid4().hex[:12], "exercise": message.exercise}
        vote["proposer"] = connection.user_id
        if not self.store.open_vote(session_id, vote):
            raise LiveError("vote_open", "A vote is already open; close it first.")
        self._publish(session_id, connection, "vote_opened", **vote)

    def vote(self, connection: Connection, message: p.Vote) -> None:
        session_id = self._joined(connection, message)
        current = self.store.current_vote(session_id)
        if current is None or current["vote_id"] != message.vote_id:
            raise LiveError("no_such_vote", "That vote is not open.")
        self.store.cast(session_id, connection.user_id, message.choice)
        self._publish(
            session_id, connection, "vote_cast", vote_id=message.vote_id, choice=message.choice
        )

    def close_vote(self, connection: Connection, message: p.CloseVote) -> None:
        session_id = self._joined(connection, message)
        current = self.store.current_vote(session_id)
        if current is None or current["vote_id"] != message.vote_id:
            raise LiveError("no_such_vote", "That vote is not open.")
        creator = (self.store.session(session_id) or {}).get("creator_id")
        if connection.user_id not in (current["proposer"], creator):
            raise LiveError(
                "forbidden", "Only the proposer or the session's creator closes a vote."
            )
        closed = self.store.close_vote(session_id, message.vote_id)
        if closed is None:
            raise LiveError("no_such_vote", "That vote is not open.")
        vote, ballots = closed
        yes = sum(1 for choice in ballots.values() if choice == "yes")
        no = len(ballots) - yes
        result = "accepted" if yes > no else "rejected"
        self._publish(session_id, connection, "vote_closed", **vote, yes=yes, no=no, result=result)

    def presence(self, connection: Connection, message: p.Presence) -> dict[str, Any]:
        session_id = self._joined(connection, message, must_be_open=False)
        present = self.store.present(session_id, self.settings.presence_window)
        return {"type": "presence", "session_id": session_id, "participants": present}

    def end_session(self, connection: Connection, message: p.EndSession) -> None:
        session_id = self._joined(connection, message)
        session = self.store.session(session_id) or {}
        if session.get("creator_id") != connection.user_id:
            raise LiveError("forbidden", "Only the session's creator ends it.")
        if not self.store.end(session_id):
            raise LiveError("session_ended", "The session has already ended.")
        self._publish(session_id, connection, "session_ended")
        log.info("live session %s ended", session_id, extra=_fields(session_id, connection))
        self.save_session(session_id)

    # --- helpers -----------------------------------------------------------------------------

    def _joined(self, connection: Connection, message: p.InSession, must_be_open=True) -> str:
        """Return the session a message is about, which the connection must have joined."""
        session_id = message.session_id
        if session_id is None:
            if len(connection.sessions) != 1:
                raise LiveError("session_required", "Say which session: session_id.")
            session_id = next(iter(connection.sessions))
        if session_id not in connection.sessions:
            raise LiveError("not_joined", "Join the session first.")
        if must_be_open:
            self._open_session(session_id)
        return session_id

    def _open_session(self, session_id: str) -> dict[str, str]:
        session = self.store.session(session_id)
        if session is None:
            raise LiveError("session_not_found", f"No live session {session_id!r}.")
        if session.get("status") != "open":
            raise LiveError("session_ended", "The session has ended.")
        return session

    def _publish(self, session_id: str, connection: Connection, kind: str, **data: Any) -> None:
        event = {"type": kind, "session_id": session_id, "sender": connection.user_id}
        self.store.publish(session_id, {**event, "at": _now(), **data})


def _fields(session_id: str, connection: Connection) -> dict[str, str]:
    return {"event.action": "live-session", "session.id": session_id, "user.id": connection.user_id}
