#!/bin/sh
# Build train_step: our driver linked against AlexeyAB/darknet 59596d78's CPU objects (../alexeyab_driver.sh).
# usage: build.sh SRC_DIR
exec sh "$(dirname "$0")/../alexeyab_driver.sh" "$1" "$(dirname "$0")/train_step.c"
