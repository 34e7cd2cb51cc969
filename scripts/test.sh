#!/usr/bin/env bash
# Runs every test Switchboard has, installing what they need on a fresh machine.
# This is the README's test command, and CI runs exactly it.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace
