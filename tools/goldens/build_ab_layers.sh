#!/bin/sh
# Link tools/goldens/ab_layers.c against an AlexeyAB/darknet tree already built by
# ../shared/harness/alexeyab/build.sh SRC (CPU, GPU=0 CUDNN=0 OPENCV=0 OPENMP=1 AVX=0, -Ofast).
# usage: build_ab_layers.sh SRC   -> SRC/ab_layers
set -e
SRC=${1:?usage: build_ab_layers.sh SRC}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$SRC"
[ -f obj/parser.o ] || make -j2 GPU=0 CUDNN=0 OPENCV=0 OPENMP=1 AVX=0 LIBSO=0 >build.log 2>&1
FLAGS="-Iinclude/ -Isrc/ -I3rdparty/stb/include -Wall -Wno-unused-result -Wno-unknown-pragmas -fPIC -Ofast -fopenmp"
OBJS=$(ls obj/*.o | grep -v '/darknet.o$')
gcc $FLAGS -c "$HERE/ab_layers.c" -o obj_ab_layers.o
g++ -std=c++11 $FLAGS obj_ab_layers.o $OBJS -o ab_layers -lm -pthread -lgomp
echo "built $SRC/ab_layers"
