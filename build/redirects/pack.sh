#!/usr/bin/env bash
# Rebuilds the two metadata-only redirect packages in build/local-packages from the nuspecs here.
# A nupkg is a zip holding its nuspec; no assembly is needed because each one only adds a dependency.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../local-packages"
mkdir -p "$out"
for spec in "$here"/*.nuspec; do
  id=$(basename "$spec" .nuspec)
  version=$(sed -n 's:.*<version>\(.*\)</version>.*:\1:p' "$spec")
  tmp=$(mktemp -d)
  cp "$spec" "$tmp/$id.nuspec"
  rm -f "$out/$id.$version.nupkg"
  (cd "$tmp" && TZ=UTC touch -t 202601010000 "$id.nuspec" && zip -X -q "$out/$id.$version.nupkg" "$id.nuspec")
  rm -rf "$tmp"
done
ls "$out"
