/* STEPS calls of pjreddie Darknet's train_network (network.c) on one batch,
 * from given weights, with *net->seen starting at SEEN. After each call the
 * weights (save_weights) go to OUTDIR/stepK.weights and a line to stdout.
 * usage: golden_train CFG WEIGHTS SEEN STEPS INPUT.bin TRUTH.bin OUTDIR
 *   INPUT.bin: batch*inputs float32 (C, H, W per image),
 *   TRUTH.bin: batch*net->truths float32 (x y w h class per box). */
#include "darknet.h"
#include <stdio.h>
#include <stdlib.h>

/* a matrix of ROWS x COLS float32 read from FILE (make_matrix rows are separate) */
static matrix read_rows(const char *file, int rows, int cols){
    matrix m = make_matrix(rows, cols);
    FILE *fp = fopen(file, "rb"); if(!fp){perror(file); exit(1);}
    int i;
    for(i = 0; i < rows; ++i){
        if(fread(m.vals[i], sizeof(float), cols, fp) != (size_t)cols){fprintf(stderr, "short read %s\n", file); exit(1);}
    }
    fclose(fp);
    return m;
}
int main(int argc, char **argv){
    if(argc != 8){fprintf(stderr, "usage: golden_train CFG WEIGHTS SEEN STEPS INPUT.bin TRUTH.bin OUTDIR\n"); return 1;}
    network *net = load_network(argv[1], argv[2], 0);
    *net->seen = atol(argv[3]);
    int steps = atoi(argv[4]);
    data d = {0};
    d.X = read_rows(argv[5], net->batch, net->inputs);
    d.y = read_rows(argv[6], net->batch, net->truths);
    int k;
    for(k = 1; k <= steps; ++k){
        float loss = train_network(net, d);
        printf("step %d loss %.9g seen %zu rate %.9g\n", k, loss, *net->seen, get_current_rate(net));
        char out[4096]; sprintf(out, "%s/step%d.weights", argv[7], k);
        save_weights(net, out);
    }
    return 0;
}
