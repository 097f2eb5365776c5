#!/bin/bash
# Build golden_train: pjreddie/darknet f6afaab, CPU, -Ofast, OpenMP, with the
# harness's darknet.patch (../shared/harness/pjreddie) and train_double_sums.patch.
# usage: build.sh DARKNET_SRC_DIR HARNESS_PJREDDIE_DIR
#   e.g. git -C /work/.mirror/pjreddie+darknet/repo archive f6afaab | tar -x -C /tmp/pj
#        build.sh /tmp/pj ../shared/harness/pjreddie
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$1"
patch -p1 < "$2/darknet.patch"
patch -p1 < "$HERE/train_double_sums.patch"
sed -i 's/^OPENMP=0/OPENMP=1/; s/^CFLAGS=-Wall /CFLAGS=-fcommon -Wall /' Makefile
mkdir -p obj
make -j2 GPU=0 CUDNN=0 OPENCV=0 OPENMP=1 libdarknet.a
gcc -Ofast -fopenmp -fcommon -Iinclude -Isrc "$HERE/golden_train.c" libdarknet.a -o golden_train -lm -pthread
