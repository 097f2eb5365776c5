#!/bin/sh
# Build `augment`: AlexeyAB/darknet 59596d78 with OpenCV (GPU=0 CUDNN=0 OPENCV=1 OPENMP=1 AVX=0, -Ofast; Debian's
# libopencv-dev 4.6 and pkg-config), src/utils.c patched with scripted_random.patch, our driver linked against
# Darknet's objects.
# usage: build.sh SRC_DIR
#   e.g. mkdir /tmp/abcv && git --git-dir=/work/.mirror/AlexeyAB+darknet/repo archive 59596d78 | tar -x -C /tmp/abcv
#        && build.sh /tmp/abcv
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$1"
grep -q scripted_gen src/utils.c || patch -p1 < "$HERE/scripted_random.patch"
make -j2 GPU=0 CUDNN=0 OPENCV=1 OPENMP=1 AVX=0 LIBSO=0 >build.log 2>&1
FLAGS="-Iinclude/ -Isrc/ -I3rdparty/stb/include -DOPENCV -Wall -Wno-unused-result -Wno-unknown-pragmas -fPIC -Ofast -fopenmp"
OBJS=$(ls obj/*.o | grep -v '/darknet.o$')
gcc $FLAGS -c "$HERE/augment.c" -o obj_augment.o
g++ -std=c++11 $FLAGS obj_augment.o $OBJS -o augment -lm -pthread -lgomp $(pkg-config --libs opencv4)
echo "built $1/augment"
