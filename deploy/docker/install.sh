#!/bin/sh
# Install cairn into a fresh virtualenv exactly as the image does: build a wheel of the source
# tree, then install that wheel with its pinned dependencies (pyproject.toml pins every direct
# dependency with ==; constraints.txt beside this script pins the transitive ones too).
#
# The Dockerfile's build stage runs this script, and tests/deploy/test_image_install.py runs the
# same script in a temporary directory, so the image and the test cannot drift apart.
#
# usage: install.sh SOURCE_DIR VENV_DIR
#   PYTHON   the interpreter that creates the virtualenv (default: python3)
set -eu

src=${1:?usage: install.sh SOURCE_DIR VENV_DIR}
venv=${2:?usage: install.sh SOURCE_DIR VENV_DIR}
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT INT TERM

"$python" -m venv "$venv"
"$venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "$src"
"$venv/bin/python" -m pip install --quiet --constraint "$here/constraints.txt" "$wheels"/cairn-*.whl
"$venv/bin/python" -m pip check
# The image runs cairn, it installs nothing: pip and setuptools (~24 MB) leave the runtime.
"$venv/bin/python" -m pip uninstall --quiet --yes pip setuptools
