#!/bin/sh
# Print the best Python (3.13 > 3.12 > 3.11) this machine can run: on PATH, or installed with pyenv
# but not selected (pyenv's shims then refuse to run it, so ask pyenv for the real path).
for version in 3.13 3.12 3.11; do
  candidates="python$version"
  if command -v pyenv >/dev/null 2>&1; then
    for installed in $(pyenv versions --bare 2>/dev/null | grep "^$version" | sort -r); do
      candidates="$candidates $(PYENV_VERSION=$installed pyenv which "python$version" 2>/dev/null)"
    done
  fi
  for candidate in $candidates; do
    if "$candidate" -c 'import sys, venv; assert sys.version_info >= (3, 11)' >/dev/null 2>&1; then
      "$candidate" -c 'import sys; print(sys.executable)'
      exit 0
    fi
  done
done
if python3 -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1; then
  python3 -c 'import sys; print(sys.executable)'
  exit 0
fi
echo "no Python 3.11+ found" >&2
exit 1
