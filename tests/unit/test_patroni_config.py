"""A local Patroni node's configuration is compose's patroni.yml but for where things are."""

from __future__ import annotations

import pytest
import yaml

from tests.support.patroni_cluster import LOCAL_KEYS, PATRONI_YML, changed_keys, node_config

BASE = yaml.safe_load(PATRONI_YML.read_text())
HERE = {
    ("name",): "pg1",
    ("restapi", "listen"): "127.0.0.1:8101",
    ("postgresql", "data_dir"): "/tmp/pg1",
    ("postgresql", "parameters", "unix_socket_directories"): "/tmp",
}


def test_only_the_per_machine_keys_change():
    config = node_config(BASE, HERE)
    assert changed_keys(BASE, config) == set(HERE)
    assert config["bootstrap"]["dcs"] == BASE["bootstrap"]["dcs"]  # timing, synchronous mode
    assert config["postgresql"]["parameters"]["unix_socket_directories"] == "/tmp"


def test_any_other_key_is_refused():
    with pytest.raises(ValueError, match="ttl"):
        node_config(BASE, {("bootstrap", "dcs", "ttl"): 5})


def test_a_changed_value_is_found_however_deep():
    config = node_config(BASE, HERE)
    config["bootstrap"]["dcs"]["synchronous_mode"] = False
    assert ("bootstrap", "dcs", "synchronous_mode") in changed_keys(BASE, config)
    assert not LOCAL_KEYS & {("bootstrap", "dcs", "synchronous_mode")}
