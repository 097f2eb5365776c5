#!/bin/sh
# Link one of our drivers against AlexeyAB/darknet 59596d78's CPU objects (GPU=0 CUDNN=0 OPENCV=0 OPENMP=1 AVX=0,
# -Ofast: the build of ../shared/harness/alexeyab/build.sh), into SRC_DIR/NAME (NAME: the driver's file name
# without .c).  Skips Darknet's make when SRC_DIR/obj already holds its objects (a tree built by the harness).
# usage: alexeyab_driver.sh SRC_DIR DRIVER.c
#   e.g. git --git-dir=/work/.mirror/AlexeyAB+darknet/repo archive 59596d78 | tar -x -C /tmp/ab
#        && alexeyab_driver.sh /tmp/ab tools/goldens/alexeyab_yolo_train/yolo_train.c
set -e
DRIVER=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
NAME=$(basename "$2" .c)
cd "$1"
if ! ls obj/yolo_layer.o >/dev/null 2>&1; then
    make clean >/dev/null; make -j2 GPU=0 CUDNN=0 OPENCV=0 OPENMP=1 AVX=0 LIBSO=0 >build.log 2>&1
fi
FLAGS="-Iinclude/ -Isrc/ -I3rdparty/stb/include -Wall -Wno-unused-result -Wno-unknown-pragmas -fPIC -Ofast -fopenmp"
OBJS=$(ls obj/*.o | grep -v '/darknet.o$')
gcc $FLAGS -c "$DRIVER" -o "obj_$NAME.o"
g++ -std=c++11 $FLAGS "obj_$NAME.o" $OBJS -o "$NAME" -lm -pthread -lgomp
echo "built $1/$NAME"
