#!/usr/bin/env bash
# Throw-away virtual environment for the authors' reference code (issue 16.1).
#
#   SPINV_AUTHORS_CODE=/path/to/checkouts bash benchmarks/anchors/setup_authors.sh
#
# SPINV_AUTHORS_CODE holds local checkouts of the authors' repositories, one folder each:
#   bilevelmri/                 (github fsherry/bilevelmri)
#   equivariant_image_recon/    (github fsherry/equivariant_image_recon)
#   non-expansive-odes/         (github fsherry/non-expansive-odes)
# Nothing is downloaded from a repository host and nothing of the authors' code enters this
# repository: the runner puts those folders on PYTHONPATH inside this venv and applies the
# compatibility shims recorded in benchmarks/anchors/shims.py.
#
# The venv (default .cache/anchors-venv, gitignored) gets what the authors' code imports, from
# PyPI: torch (the CPU 2.13.0 wheel when it lies in pip's find-links), numpy, scipy,
# scikit-image, e2cnn (equivariant_image_recon) and, optionally, astra-toolbox (its CT operator).
# Each optional package that fails to install is reported and its anchor is skipped later.
set -u
VENV=${SPINV_ANCHORS_VENV:-.cache/anchors-venv}
PY=${PYTHON:-python3}
TORCH=${TORCH:-torch==2.13.0}
log() { echo "[setup_authors] $*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV" || { log "error: cannot create $VENV"; exit 1; }
fi
PIP="$VENV/bin/python -m pip install --quiet --disable-pip-version-check"
$PIP "$TORCH" numpy scipy scikit-image || { log "error: core packages failed"; exit 1; }
for pkg in e2cnn astra-toolbox; do
  if $PIP "$pkg"; then log "installed $pkg"; else log "SKIP $pkg: pip could not install it"; fi
done

status=$VENV/anchors-status.txt
: > "$status"
for mod in torch e2cnn astra skimage; do
  if "$VENV/bin/python" -c "import $mod" 2>/dev/null; then
    echo "$mod ok $("$VENV/bin/python" -c "import $mod; print(getattr($mod, '__version__', '?'))")" >> "$status"
  else
    echo "$mod missing $("$VENV/bin/python" -c "import $mod" 2>&1 | tail -1)" >> "$status"
  fi
done
CODE=${SPINV_AUTHORS_CODE:-}
for repo in bilevelmri equivariant_image_recon non-expansive-odes; do
  if [ -n "$CODE" ] && [ -d "$CODE/$repo" ]; then
    echo "code $repo $CODE/$repo" >> "$status"
  else
    echo "code $repo missing (set SPINV_AUTHORS_CODE to a folder holding $repo/)" >> "$status"
  fi
done
log "status ($status):"
cat "$status"
