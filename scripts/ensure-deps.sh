#!/usr/bin/env bash
# Installs what building Coil needs and a fresh Debian/Ubuntu machine may lack: liburing-dev.
set -euo pipefail
if [ -f /usr/include/liburing.h ]; then exit 0; fi
echo "liburing-dev is missing: installing it with apt-get" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq liburing-dev >/dev/null
test -f /usr/include/liburing.h
