#!/usr/bin/env bash
# `make image`: the Hypervision image, built on this kind of machine without any remote image
# registry (ADR 0034). The Debian base is made once with mmdebstrap from the configured Debian
# source and kept as an OCI archive (var/image/base.oci.tar); the application is then built
# by deploy/image/Containerfile. Prints the image's size and the build's time.
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG="${IMAGE_TAG:-dev}"
UV="${UV:-.tools/bin/uv}"
BASE=localhost/hypervision-base:bookworm
ARCHIVE=var/image/base.oci.tar
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/image/containers.conf}"
start=$(date +%s)

need=()
command -v podman >/dev/null || need+=(podman runc uidmap)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if [ ${#need[@]} -gt 0 ]; then
  echo "image: installing ${need[*]} (Debian packages)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v runc >/dev/null || { apt-get install -y -qq runc >/dev/null; }
mkdir -p var/image

if ! podman image exists "$BASE"; then
  if [ -f "$ARCHIVE" ]; then
    podman load -q -i "$ARCHIVE" >/dev/null
  else
    # What the runtime needs: Python 3.11, CA certificates, WeasyPrint's Pango and HarfBuzz
    # (PDF syntheses), fonts, time zones. The compiler comes in the build stage only.
    mmdebstrap --quiet --variant=minbase \
      --include=python3,python3-venv,ca-certificates,libpango-1.0-0,libpangoft2-1.0-0,libharfbuzz-subset0,fonts-dejavu-core,tzdata,libjpeg62-turbo,libopenjp2-7 \
      bookworm var/image/base.tar
    podman import -q var/image/base.tar "$BASE" >/dev/null
    rm -f var/image/base.tar
    podman save -q --format oci-archive -o "$ARCHIVE" "$BASE"
  fi
fi

cp "$UV" var/image/uv  # the lock file's own uv, in the build stage only
podman build -q \
  --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt \
  -f deploy/image/Containerfile -t "localhost/hypervision:$TAG" . >/dev/null
rm -f var/image/uv
size=$(podman image inspect --format '{{.Size}}' "localhost/hypervision:$TAG")
echo "image localhost/hypervision:$TAG: $((size / 1000000)) MB, built in $(( $(date +%s) - start )) s"
echo "export it: podman save --format oci-archive -o hypervision-$TAG.oci.tar localhost/hypervision:$TAG"
