"""The image's install, for real: the Dockerfile build stage's COPY and RUN steps, replayed in a
temporary directory with a clean virtualenv (the same deploy/docker/install.sh, so the same pip
commands), then the installed ``cairn`` runs ``--help`` and ``migrate`` on a fresh SQLite file.

No Docker engine is needed. Slow (a pip install, ~20-60 s with pip's cache warm), so it is one
test; it runs in ``make test`` like every other (``slow`` only labels it).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_files import ROOT, dockerfile_stages

VENV_IN_IMAGE = "/opt/cairn/venv"


def _replay_build_stage(context: Path, image_root: Path) -> list[str]:
    """Copies the build stage's COPY sources like the build does; returns its install command."""
    build = dockerfile_stages()[0]
    (workdir,) = [i.args for i in build.all("WORKDIR")]
    target = image_root / workdir.lstrip("/")
    target.mkdir(parents=True)
    for copy in build.all("COPY"):
        *sources, dest = copy.flags_and_rest()[1].split()
        for source in sources:
            origin = context / source
            destination = target / dest if dest != "./" else target / origin.name
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    destination,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
                )
            else:
                shutil.copy2(origin, destination)
    (run,) = build.all("RUN")
    _, command = run.flags_and_rest()
    argv = shlex.split(command)
    assert argv[:2] == ["sh", "deploy/docker/install.sh"], argv
    assert argv[2:] == [workdir, VENV_IN_IMAGE], argv
    return ["sh", str(target / argv[1]), str(target), str(image_root / VENV_IN_IMAGE.lstrip("/"))]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CAIRN_", "PYTHON", "VIRTUAL_ENV", "PIP_NO_CACHE"))
    }
    env.update(extra)
    return env


def _size_mb(path: Path) -> float:
    return (
        sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_image_install_steps_give_a_working_cairn(tmp_path: Path) -> None:
    install = _replay_build_stage(ROOT, tmp_path / "image")
    venv = Path(install[-1])
    python = getattr(sys, "_base_executable", sys.executable)
    result = subprocess.run(
        install, env=_clean_env(PYTHON=python), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr

    cairn = venv / "bin" / "cairn"
    help_ = subprocess.run(
        [str(cairn), "--help"], env=_clean_env(), capture_output=True, text=True, check=False
    )
    assert help_.returncode == 0, help_.stderr
    for command in ("serve", "worker", "migrate"):
        assert command in help_.stdout

    # The installed package is the wheel in the venv, not the work tree.
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import cairn; print(cairn.__file__)"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert where.stdout.strip().startswith(str(venv))

    env = _clean_env(
        CAIRN_DATABASE_URL=f"sqlite:///{tmp_path / 'cairn.db'}", CAIRN_AUTO_MIGRATE="false"
    )
    for _ in range(2):  # idempotent: the second run applies nothing and exits 0
        migrate = subprocess.run(
            [str(cairn), "migrate"],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=False,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        assert "schema up to date" in migrate.stdout
    assert "applied" not in migrate.stdout
    assert (tmp_path / "cairn.db").exists()

    # The runtime venv carries no installer (install.sh removes pip and setuptools).
    assert not list(venv.glob("lib/python*/site-packages/pip"))
    size = _size_mb(venv)
    assert size < 200, f"the image's virtualenv grew to {size:.0f} MB"
