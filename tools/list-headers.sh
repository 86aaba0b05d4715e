#!/bin/sh
# Lists the public headers (relative to include/) for meson.build, one per line, sorted.
cd "$(dirname "$0")/../include" && find kvmxx -name '*.hpp' | LC_ALL=C sort
