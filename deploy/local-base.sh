#!/bin/sh
# Build a Debian bookworm base image with Python 3.11 from Debian's packages alone, for
# machines that reach a Debian mirror but no container registry:
#
#   deploy/local-base.sh hub-base:bookworm
#   docker build -f deploy/Dockerfile --build-arg BASE_IMAGE=hub-base:bookworm -t hub .
#
# Needs mmdebstrap (Debian package) and root.
set -eu
tag=${1:-hub-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
tarball=$(mktemp --suffix=.tar)
trap 'rm -f "$tarball"' EXIT
mmdebstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
    bookworm "$tarball" "$mirror"
docker import -c 'ENV LANG=C.UTF-8' "$tarball" "$tag"
