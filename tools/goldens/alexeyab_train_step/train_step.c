/* Whole training steps of AlexeyAB/darknet (59596d78), linked against Darknet's objects (build.sh).
 *
 *   train_step CFG WEIGHTS STEPS INPUT.bin TRUTH.bin OUTDIR
 *
 * What train_detector does before its loop, without the data loading: parse_network_cfg (training: the
 * cfg's batch / subdivisions images per mini-batch), load_weights; then STEPS calls of train_network
 * (src/network.c: train_network_waitkey: per mini-batch train_network_datum, i.e. *net.seen += batch,
 * forward_network and backward_network with state.train = 1; then update_network at get_current_rate)
 * on the same data: INPUT.bin (batch*subdivisions*inputs float32, C H W per image) and TRUTH.bin
 * (batch*subdivisions*l.truths float32 of the last layer l, as train_detector's load_data sizes d.y: per image
 * l.max_boxes rows of l.truth_size = 6 floats, x y w h class track_id, zero rows after the last box; AlexeyAB
 * never sets net.truths).  After each call: a line "step K loss L seen S iteration I rate R" on stdout and
 * save_weights to OUTDIR/stepK.weights; after the first, every [yolo] layer's l.output and l.delta of
 * the last mini-batch to OUTDIR/output_LLL.bin and delta_LLL.bin (float32, batch*outputs).
 */
#include <stdio.h>
#include <stdlib.h>

#include "darknet.h"
#include "network.h"
#include "parser.h"
#include "../golden_io.h"

static matrix read_rows(const char *path, int rows, int cols)
{
    matrix m = make_matrix(rows, cols);
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    int i;
    for (i = 0; i < rows; ++i) {
        if (fread(m.vals[i], sizeof(float), cols, f) != (size_t)cols) { fprintf(stderr, "short read %s\n", path); exit(1); }
    }
    fclose(f);
    return m;
}

static void write_indexed(const char *dir, const char *name, int index, const float *x, size_t n)
{
    char file[256];
    snprintf(file, sizeof(file), "%s_%03d.bin", name, index);
    write_floats(dir, file, x, n);
}

int main(int argc, char **argv)
{
    if (argc != 7) { fprintf(stderr, "usage: train_step CFG WEIGHTS STEPS INPUT.bin TRUTH.bin OUTDIR\n"); return 1; }
    network net = parse_network_cfg(argv[1]);
    load_weights(&net, argv[2]);
    int images = net.batch * net.subdivisions;
    data d = {0};
    d.X = read_rows(argv[4], images, net.inputs);
    d.y = read_rows(argv[5], images, net.layers[net.n - 1].truths);
    int steps = atoi(argv[3]);
    int k, i;
    for (k = 1; k <= steps; ++k) {
        float loss = train_network(net, d);
        printf("step %d loss %.9g seen %llu iteration %d rate %.9g\n", k, loss, (unsigned long long)*net.seen,
               *net.cur_iteration, get_current_rate(net));
        if (k == 1) {
            for (i = 0; i < net.n; ++i) {
                layer l = net.layers[i];
                if (l.type != YOLO) continue;
                write_indexed(argv[6], "output", i, l.output, (size_t)l.batch * l.outputs);
                write_indexed(argv[6], "delta", i, l.delta, (size_t)l.batch * l.outputs);
            }
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/step%d.weights", argv[6], k);
        save_weights(net, path);
    }
    free_data(d);
    free_network(net);
    return 0;
}
