#!/bin/sh
# Builds a plugin out of tree against an installed SDK and loads it.
# usage: test-outside-plugin.sh CC PROBE TINY_PLUGIN_SOURCE
# env: MAMD_BUILD_ROOT (the meson build dir)
set -eu

cc_cmd=$1
probe=$2
source=$3

: "${MAMD_BUILD_ROOT:?MAMD_BUILD_ROOT must name the build directory}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mamd-outside-plugin.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
dest=$tmp/root

echo "# installing into $dest"
meson install -C "$MAMD_BUILD_ROOT" --destdir "$dest" --no-rebuild \
  --tags devel,runtime --quiet >"$tmp/install.log" 2>&1 || {
  cat "$tmp/install.log"
  echo "meson install failed"
  exit 1
}

pc=$(find "$dest" -name mamd-plugin.pc | head -n 1)
if [ -z "$pc" ]; then
  echo "mamd-plugin.pc was not installed"
  exit 1
fi
pcdir=$(dirname "$pc")
echo "# pkg-config file: $pc"

# The sysroot relocates every -I and -L, the system GLib's included, so the
# GLib flags come from the system's own pkg-config files.
pkgconf() {
  PKG_CONFIG_SYSROOT_DIR=$dest PKG_CONFIG_PATH=$pcdir pkg-config "$@"
}

cflags="$(pkgconf --cflags mamd-plugin) $(pkg-config --cflags gio-2.0 gmodule-2.0)"
libs=$(pkgconf --libs mamd-plugin)
plugindir=$(pkgconf --variable=plugindir mamd-plugin)
echo "# cflags: $cflags"
echo "# libs: $libs"
echo "# plugindir: $plugindir"
case $cflags in
  *"-I$dest/"*mamd-1*) ;;
  *) echo "the cflags do not point into the installed tree"; exit 1 ;;
esac
case $libs in
  *"-L$dest/"*) ;;
  *) echo "the libs do not point into the installed tree"; exit 1 ;;
esac
case $plugindir in
  */mamd/plugins) ;;
  *) echo "unexpected plugindir $plugindir"; exit 1 ;;
esac

# The installed header must stand on its own with strict warnings.
printf '#include <mamd-plugin.h>\n' >"$tmp/header.c"
# shellcheck disable=SC2086
$cc_cmd -std=c11 -fsyntax-only -Wall -Wextra -Werror -Wmissing-prototypes \
  -Wstrict-prototypes -Wshadow $cflags "$tmp/header.c"
echo "# installed header compiles standalone"

# shellcheck disable=SC2086
$cc_cmd -std=gnu11 -shared -fPIC -Wall -Wextra -Werror -Wno-unused-parameter \
  -Wmissing-prototypes -o "$tmp/libtiny.so" "$source" $cflags $libs
echo "# built $tmp/libtiny.so"

# The plugin must link the SDK library, as the pkg-config file says.
# (readelf is binutils', which the compiler above needs for linking.)
readelf -d "$tmp/libtiny.so" | grep -q 'NEEDED.*libmamd-plugin-1' || {
  echo "libtiny.so does not link libmamd-plugin-1"
  exit 1
}

"$probe" "$tmp/libtiny.so" >"$tmp/probe.out" 2>&1 || {
  cat "$tmp/probe.out"
  echo "the probe refused the out-of-tree plugin"
  exit 1
}
cat "$tmp/probe.out"
grep -q '^method: tiny$' "$tmp/probe.out"
grep -q '^enabled: yes$' "$tmp/probe.out"
grep -q '^authenticated: yes$' "$tmp/probe.out"
echo "# out-of-tree plugin loaded and authenticated"
