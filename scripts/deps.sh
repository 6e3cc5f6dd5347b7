#!/usr/bin/env bash
# Install the Debian packages veclog needs, only those missing.  Quiet and
# quick when everything is there, so `make run` and `make test` can call it
# every time.  Needs root (or sudo) only when something is missing.
set -euo pipefail

pkgs=(build-essential pkg-config librdkafka-dev libcjson-dev librocksdb-dev
      libevent-dev libcmocka-dev libyaml-dev libssl-dev kcat)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm drive the end-to-end tests; any install that provides the
# commands will do (Debian's packages or an existing one).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
