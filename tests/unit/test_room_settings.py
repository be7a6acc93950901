"""The gateway's rooms read typed settings: each from the environment alone, or all as one."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import gateway
from fitness import config
from gateway import internal, proxy, sagas, shared_state

ROOMS = (*gateway.ROOMS, gateway.security)


def test_a_room_reads_its_settings_from_the_environment_typed(monkeypatch):
    monkeypatch.setenv("FITNESS_UPSTREAM_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("FITNESS_BREAKER_WINDOW_SECONDS", "2.5")
    settings = proxy.Settings.from_env()
    assert settings.upstream_max_attempts == 7
    assert settings.breaker_window_seconds == 2.5
    assert settings.health_interval_seconds == proxy.Settings.health_interval_seconds


def test_overrides_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("FITNESS_SAGA_WORKERS", "3")
    assert sagas.Settings.from_env({"SAGA_WORKERS": 5}).saga_workers == 5


def test_the_gateway_hands_each_room_the_one_value_of_a_shared_setting():
    loaded = config.load_settings(
        gateway.DEFAULTS, {"UPSTREAM_DEADLINE_SECONDS": 4.0, "STATE_REDIS_WAIT_COUNT": 1}
    )
    assert proxy.Settings.from_mapping(loaded).upstream_deadline_seconds == 4.0
    assert shared_state.Settings.from_mapping(loaded).upstream_deadline_seconds == 4.0
    assert internal.Settings.from_mapping(loaded).state_redis_wait_count == 1
    assert sagas.Settings.from_mapping(loaded).state_redis_wait_count == 1


def test_every_room_setting_is_a_gateway_setting_and_common_ones_stay_common():
    for room in ROOMS:
        for key in room.Settings.defaults():
            assert key in gateway.DEFAULTS or key in config.COMMON_DEFAULTS, (room, key)
    assert not set(gateway.DEFAULTS) & set(config.COMMON_DEFAULTS)


def test_two_rooms_cannot_default_one_setting_differently():
    @dataclass(frozen=True)
    class Impatient(config.Settings):
        upstream_deadline_seconds: float = 1.0

    with pytest.raises(ValueError, match="UPSTREAM_DEADLINE_SECONDS"):
        config.compose_defaults(proxy.Settings, Impatient)

    @dataclass(frozen=True)
    class Elsewhere(config.Settings):
        data_dir: str = "/elsewhere"

    with pytest.raises(ValueError, match="DATA_DIR"):
        config.compose_defaults(Elsewhere)


def test_passwords_stay_out_of_the_settings_repr():
    for settings in (
        internal.Settings(state_redis_password="sekret-1"),
        shared_state.Settings(cache_redis_password="sekret-1"),
    ):
        assert "sekret-1" not in repr(settings)
