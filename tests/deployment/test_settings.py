"""Settings from files (``FITNESS_<NAME>_FILE``) and store passwords kept apart from their URLs."""

from __future__ import annotations

import subprocess
import sys

import pymongo.uri_parser
import pytest
from sqlalchemy.engine import make_url

from fitness.config import SettingFileMissing, load_settings, redacted, with_password

AWKWARD = "p@ss:w/rd?#%"  # every character that means something in a URL


def test_a_setting_comes_from_its_file_and_the_variable_still_wins(tmp_path, monkeypatch):
    secret = tmp_path / "jwt_secret"
    secret.write_text("from-the-file\n")
    monkeypatch.setenv("FITNESS_JWT_SECRET_FILE", str(secret))
    assert load_settings({})["JWT_SECRET"] == "from-the-file"
    monkeypatch.setenv("FITNESS_JWT_SECRET", "from-the-variable")
    assert load_settings({})["JWT_SECRET"] == "from-the-variable"


def test_a_missing_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("FITNESS_JWT_SECRET_FILE", str(tmp_path / "absent"))
    with pytest.raises(SettingFileMissing, match=r"FITNESS_JWT_SECRET_FILE: cannot read .*absent"):
        load_settings({})


@pytest.mark.parametrize(
    ("url_key", "url", "parse"),
    [
        (
            "DATABASE_URL",
            "postgresql+psycopg2://fitness@/fitness?host=pg1:5432&host=pg2:5432",
            lambda url: make_url(url).password,
        ),
        (
            "MONGO_URL",
            "mongodb://activity@m1:27017,m2:27017/?replicaSet=rs0",
            lambda url: pymongo.uri_parser.parse_uri(url)["password"],
        ),
    ],
)
def test_a_store_password_joins_its_url_as_the_driver_reads_it(
    tmp_path, monkeypatch, url_key, url, parse
):
    password_file = tmp_path / "password"
    password_file.write_text(AWKWARD)
    monkeypatch.setenv(f"FITNESS_{url_key}", url)
    monkeypatch.setenv(f"FITNESS_{url_key.replace('_URL', '_PASSWORD')}_FILE", str(password_file))
    defaults = {url_key: "", url_key.replace("_URL", "_PASSWORD"): ""}
    joined = load_settings(defaults)[url_key]
    assert parse(joined) == AWKWARD
    assert AWKWARD not in redacted(joined)


def test_a_password_for_a_url_without_a_user_is_refused():
    with pytest.raises(ValueError, match="names no user"):
        with_password("postgresql://db:5432/fitness", "secret")


def test_a_service_whose_secret_file_is_missing_refuses_to_start_in_one_line(tmp_path):
    env = {"FITNESS_JWT_SECRET_FILE": str(tmp_path / "absent"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"gateway: refusing to start: FITNESS_JWT_SECRET_FILE: cannot read {tmp_path}/absent "
        "(No such file or directory)"
    ]
