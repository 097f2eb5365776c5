#!/bin/sh
# Build train_step: AlexeyAB/darknet 59596d78, CPU (GPU=0 CUDNN=0 OPENCV=0 OPENMP=1 AVX=0, -Ofast), the build
# of ../shared/harness/alexeyab/build.sh, with our driver linked against Darknet's objects.
# usage: build.sh SRC_DIR
#   e.g. git --git-dir=/work/.mirror/AlexeyAB+darknet/repo archive 59596d78 | tar -x -C /tmp/ab && build.sh /tmp/ab
# Skips Darknet's make when SRC_DIR/obj already holds its objects (a tree built by the harness).
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$1"
if ! ls obj/yolo_layer.o >/dev/null 2>&1; then
    make clean >/dev/null; make -j2 GPU=0 CUDNN=0 OPENCV=0 OPENMP=1 AVX=0 LIBSO=0 >build.log 2>&1
fi
FLAGS="-Iinclude/ -Isrc/ -I3rdparty/stb/include -Wall -Wno-unused-result -Wno-unknown-pragmas -fPIC -Ofast -fopenmp"
OBJS=$(ls obj/*.o | grep -v '/darknet.o$')
gcc $FLAGS -c "$HERE/train_step.c" -o obj_train_step.o
g++ -std=c++11 $FLAGS obj_train_step.o $OBJS -o train_step -lm -pthread -lgomp
echo "built $1/train_step"
