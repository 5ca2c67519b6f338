#!/usr/bin/env bash
# Installs the Debian packages the tests need (mk/packages.txt) when any is
# missing, so that `make test` works on a fresh machine; .ci/run calls it too.
# It installs only as root on Debian (dpkg-query and apt-get on PATH). When it
# can't, it prints one sentence saying what to install and exits 1, so that
# make stops before running anything. Needs no stdin (CI runs it that way).
#
#   mk/setup.sh [package-list]     default: packages.txt next to this script
set -euo pipefail
here=${0%/*}
if [ "$here" = "$0" ]; then here=.; fi
list=${1:-$here/packages.txt}
export DEBIAN_FRONTEND=noninteractive

read_packages() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%%#*}
    line=${line//[[:space:]]/}
    if [ -n "$line" ]; then packages+=("$line"); fi
  done <"$list"
}

# One dpkg-query call for the whole list: it prints installed and half-removed
# packages alike (and exits 1 when a name is unknown), so keep only the
# "installed" ones and call every other name missing.
find_missing() {
  local -A installed=()
  local name status p
  while IFS=' ' read -r name status; do
    if [ "$status" = installed ]; then installed[$name]=1; fi
  done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
  for p in "${packages[@]}"; do
    if [ -z "${installed[$p]:-}" ]; then missing+=("$p"); fi
  done
}

# The one sentence, on stderr; nothing after it runs.
give_up() {
  echo "make test: $*" >&2
  exit 1
}

install_missing() {
  local cmd="apt-get install ${missing[*]}"
  command -v apt-get >/dev/null ||
    give_up "no apt-get on PATH to install the Debian packages ${missing[*]}: install them (or your system's equivalents) and run it again."
  [ "$(id -u)" = 0 ] ||
    give_up "missing Debian packages ${missing[*]}: install them as root ($cmd), or run make test as root to have them installed."
  echo "make test: installing ${missing[*]}" >&2
  apt-get update -qq </dev/null >&2 ||
    give_up "apt-get update failed (no access to the package archive?): install ${missing[*]} ($cmd) and run it again."
  apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null ||
    give_up "apt-get could not install ${missing[*]}: install them ($cmd) and run it again."
}

packages=()
missing=()
read_packages
[ ${#packages[@]} -gt 0 ] || give_up "$list lists no packages."
command -v dpkg-query >/dev/null ||
  give_up "this is not Debian (no dpkg-query on PATH), so it can't check or install the test dependencies: install your system's equivalents of the Debian packages ${packages[*]} and run the tests with 'make test SETUP=' to skip this check."
find_missing
if [ ${#missing[@]} -gt 0 ]; then install_missing; fi
