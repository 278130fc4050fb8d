# shellcheck shell=bash
# shellcheck disable=SC2034  # PY is for the scripts that source this file
# Sourced by the test and check scripts: `python_env DIR PACKAGE...` makes
# `$PY` a Python that can import the packages, installed into DIR once.
# A virtualenv when the machine can make one; otherwise (no ensurepip)
# `pip install --target` and a PYTHONPATH wrapper, so a bare Python with pip
# is enough.
python_env() {
  # Absolute, so that the wrapper works from any directory (the Rust tests
  # run it from their crate's directory).
  local dir
  dir="$(pwd)/${1#./}"
  case $1 in /*) dir=$1 ;; esac
  shift
  local want="$*"
  if [ -x "$dir/python" ] && [ "$(cat "$dir/.packages" 2>/dev/null)" = "$want" ]; then
    PY="$dir/python"
    return
  fi
  rm -rf "$dir"
  if python3 -m venv "$dir/venv" >/dev/null 2>&1; then
    "$dir/venv/bin/pip" install --quiet "$@"
    printf '#!/bin/sh\nexec "%s" "$@"\n' "$dir/venv/bin/python" > "$dir/python"
  else
    mkdir -p "$dir/site"
    python3 -m pip install --quiet --target "$dir/site" "$@"
    printf '#!/bin/sh\nPYTHONPATH="%s${PYTHONPATH:+:$PYTHONPATH}" exec python3 "$@"\n' "$dir/site" > "$dir/python"
  fi
  chmod +x "$dir/python"
  echo "$want" > "$dir/.packages"
  PY="$dir/python"
}
