#!/bin/sh
# Builds the logparse plugin with plain cc and ember-sdk.pc, inspects it
# with the installed CLI, then builds host.c with ember.pc and runs it.
#   build-and-load.sh OUTDIR EMBER_CLI      (PKG_CONFIG_PATH must find ember)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$1
ember=$2
mkdir -p "$out"
cc -O2 -Wall -Wextra -Werror -shared -fPIC $(pkg-config --cflags ember-sdk) \
   -o "$out/logparse.so" "$here/../custom-plugin/logparse.c"
"$ember" plugin inspect --compact "$out/logparse.so"
libdir=$(pkg-config --variable=libdir ember)
cc -O2 -Wall -Wextra -Werror $(pkg-config --cflags ember) \
   -o "$out/host" "$here/host.c" $(pkg-config --libs ember) \
   -Wl,-rpath,"$libdir"
"$out/host" "$out/logparse.so"
