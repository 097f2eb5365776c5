#!/bin/sh
# Build net_train: our driver linked against AlexeyAB/darknet 59596d78's CPU objects (../alexeyab_driver.sh).
# usage: build.sh SRC_DIR
exec sh "$(dirname "$0")/../alexeyab_driver.sh" "$1" "$(dirname "$0")/net_train.c"
