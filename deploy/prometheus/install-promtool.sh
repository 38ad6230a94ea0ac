#!/usr/bin/env sh
# promtool, which checks and unit-tests the alert rules (tests/deploy/test_alert_rules.py), from
# the Debian package `prometheus` without installing the Prometheus server (whose package would
# start it): the package is downloaded and unpacked, and promtool alone is copied to $1.
set -eu
dest="${1:-/usr/local/bin}"
if command -v promtool >/dev/null 2>&1; then exit 0; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus; }
dpkg -x prometheus_*.deb unpacked
install -m 0755 unpacked/usr/bin/promtool "$dest/promtool"
