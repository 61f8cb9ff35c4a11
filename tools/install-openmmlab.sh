#!/usr/bin/env bash
# Build KDBench's OpenMMLab environment (mmcv, mmdet, mmsegmentation) in a virtual environment of its own.
#
#   bash tools/install-openmmlab.sh [VENV]        # VENV defaults to .venv-openmmlab
#
# Why a script and not only `pip install -e ".[openmmlab]"`: mmcv 2.1.0 has no wheels on PyPI for any
# torch that pip can install here, so it is compiled from source, and its setup.py imports torch, which
# pip's build isolation hides. So torch is installed first and mmcv is built with --no-build-isolation
# (about 11 minutes on 2 cores the first time; pip keeps the built wheel in its cache, and later
# installs on the same machine take it from there). Versions: constraints-openmmlab.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv-openmmlab}
constraints=constraints-openmmlab.txt
start=$SECONDS
step() { echo "[install-openmmlab $((SECONDS - start)) s] $*"; }

if [ ! -x "$venv/bin/python" ]; then
  step "creating $venv"
  python3.11 -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install -q -c "$constraints")
step "build tools"
"${pip[@]}" "setuptools<70" wheel ninja
step "torch and torchvision"
"${pip[@]}" torch torchvision
step "mmcv (compiled from source unless pip's cache has the wheel)"
MAX_JOBS=${MAX_JOBS:-2} MMCV_WITH_OPS=1 "${pip[@]}" --no-build-isolation mmcv
step "kdbench with the openmmlab and test extras"
"${pip[@]}" -e ".[openmmlab,test]"
"$venv/bin/python" -c "import mmcv, mmdet, mmseg, mmcv.ops; print('mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__)"
step "done"
