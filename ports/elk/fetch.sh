#!/usr/bin/env bash
# Fetches Elk's Debian source package into DEST (unpacked, Debian patches applied) with
# `apt-get source`. When apt knows no deb-src entry, one is added in a separate sources file,
# derived from the binary entries the machine already has (same mirror, suites, components),
# so no host name is written here. Prints "skipped: <why>" and exits 3 when it cannot fetch.
set -uo pipefail
DEST=${1:?usage: fetch.sh DEST_DIR}
PACKAGE=${ELK_PACKAGE:-elk}
VERSION_PREFIX=${ELK_VERSION_PREFIX:-3.99.8}
SRC_LIST=/etc/apt/sources.list.d/uffdgc-port-deb-src.sources

skip() {
  echo "skipped: $*"
  exit 3
}

have_source() { apt-cache showsrc "$PACKAGE" 2>/dev/null | grep -q "^Version: $VERSION_PREFIX"; }

# deb822 files: every "Types: deb" stanza becomes a "Types: deb-src" stanza.
derive_deb822() {
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] && [ "$file" != "$SRC_LIST" ] || continue
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         /(^|\n)Types:[^\n]*deb([ \t]|\n|$)/ && !/(^|\n)Enabled:[ \t]*no/ {
           sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$file"
  done
}

# one-line files: "deb [opts] URI suite comps" becomes "deb-src ..." in deb822 form.
derive_one_line() {
  local file
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$file" ] || continue
    awk '$1 == "deb" {
           i = 2; opts = ""
           if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
           printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents:", $i, $(i + 1)
           for (j = i + 2; j <= NF; j++) printf " %s", $j
           printf "\n\n" }' "$file"
  done
}

command -v apt-get >/dev/null || skip "apt-get is not available (not a Debian-like system)"
if ! have_source; then
  [ "$(id -u)" = 0 ] || skip "no deb-src entry for $PACKAGE and not root (cannot add one)"
  if [ ! -f "$SRC_LIST" ]; then
    entries=$( (derive_deb822; derive_one_line) | grep -v '^#')
    [ -n "$entries" ] || skip "no Debian binary entry to derive a deb-src entry from"
    printf '# Added by uffdgc ports/elk/fetch.sh: source entries for the configured mirror.\n%s\n' \
      "$entries" >"$SRC_LIST"
  fi
  timeout 600 apt-get update -qq >/dev/null 2>&1 || skip "apt-get update failed"
  have_source || skip "apt has no source package $PACKAGE $VERSION_PREFIX*"
fi
command -v dpkg-source >/dev/null ||
  { timeout 600 apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null 2>&1 ||
    skip "dpkg-dev (dpkg-source) cannot be installed"; }

mkdir -p "$DEST"
cd "$DEST" || skip "cannot enter $DEST"
version=$(apt-cache showsrc "$PACKAGE" |
  awk -v p="$VERSION_PREFIX" '$1 == "Version:" && index($2, p) == 1 { print $2; exit }')
upstream=${version%-*}
rm -rf "$PACKAGE-$upstream"
if timeout 900 apt-get source -qq "$PACKAGE=$version" >fetch.log 2>&1; then
  echo "fetched: $PACKAGE $version (Debian patches applied)"
else
  # The mirror may serve the upstream tarball but not the Debian one: use the upstream
  # tarball alone when its checksum matches the one apt's source index lists for it.
  orig="${PACKAGE}_${upstream}.orig.tar.gz"
  [ -f "$orig" ] || skip "apt-get source $PACKAGE failed: $(grep '^E:' fetch.log | head -1 | sed 's|[a-z]*://[^ ]*|<url>|g')"
  want=$(apt-cache showsrc "$PACKAGE" | awk -v f="$orig" -v v="$version" '
    $1 == "Version:" { ok = ($2 == v) } /^Checksums-Sha256:/ { s = 1; next } /^[^ ]/ { s = 0 }
    ok && s && $3 == f { print $1; exit }')
  have=$(sha256sum "$orig" | cut -d' ' -f1)
  [ -n "$want" ] && [ "$want" = "$have" ] || skip "$orig does not match apt's checksum"
  tar xzf "$orig" || skip "cannot unpack $orig"
  echo "fetched: $PACKAGE $upstream upstream tarball (checksum checked; Debian's own" \
    "tarball could not be fetched: $(grep '^E:' fetch.log | head -1 | sed 's|[a-z]*://[^ ]*|<url>|; s| \[IP.*||'))"
fi
[ -d "$PACKAGE-$upstream" ] || skip "apt-get source left no $PACKAGE-$upstream directory"
ln -sfn "$PACKAGE-$upstream" source
rm -f fetch.log
