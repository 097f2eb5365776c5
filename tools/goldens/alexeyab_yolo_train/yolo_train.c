/* One [yolo] layer of AlexeyAB/darknet (59596d78) in training mode: forward_yolo_layer with
 * state.train = 1 on a given input and truth.  Ours, linked against Darknet's objects (build.sh).
 *
 *   yolo_train CFG INPUT.bin TRUTH.bin BATCH NETW NETH OUTDIR
 *
 * CFG: a [net] (width/height = the grid, channels = n*(classes+5)) and a single [yolo], parsed with
 * batch BATCH (parse_network_cfg_custom); then net.w/net.h = NETW x NETH (the input size the anchors
 * are in pixels of).  INPUT.bin: float32, batch*inputs; TRUTH.bin: float32, batch*l.truths (max_boxes
 * rows of truth_size = 6: x y w h class track_id).  Writes OUTDIR/output.bin and delta.bin (float32,
 * batch*outputs: l.output, l.delta) and cost.bin (1 float32: *l.cost); prints the layer's sizes and
 * `COST c total_bbox n rewritten_bbox r`; Darknet prints its own "v3 (...)" line on stderr.  Refuses what depends on
 * the iteration or on other layers (embedding_layer, adversarial, bad-label rejection).
 */
#include <stdio.h>
#include <stdlib.h>

#include "darknet.h"
#include "network.h"
#include "parser.h"
#include "yolo_layer.h"
#include "../golden_io.h"

int main(int argc, char **argv)
{
    if (argc != 8) { fprintf(stderr, "usage: yolo_train CFG INPUT.bin TRUTH.bin BATCH NETW NETH OUTDIR\n"); return 1; }
    int batch = atoi(argv[4]);
    network net = parse_network_cfg_custom(argv[1], batch, 1);
    layer l = net.layers[0];
    if (net.n != 1 || l.type != YOLO || l.batch != batch) { fprintf(stderr, "expected one [yolo] of batch %d\n", batch); return 1; }
    if (l.embedding_output || l.embedding_size) { fprintf(stderr, "embedding_layer not supported\n"); return 1; }
    if (net.adversarial || net.badlabels_rejection_percentage || net.num_sigmas_reject_badlabels || net.equidistant_point) {
        fprintf(stderr, "iteration-dependent [net] options not supported\n"); return 1;
    }
    net.w = atoi(argv[5]);
    net.h = atoi(argv[6]);
    float *input = read_floats(argv[2], (size_t)l.batch * l.inputs);
    float *truth = read_floats(argv[3], (size_t)l.batch * l.truths);
    network_state state = {0};
    state.net = net;
    state.index = 0;
    state.input = input;
    state.truth = truth;
    state.train = 1;
    printf("YOLO grid %d %d n %d total %d classes %d max_boxes %d truth_size %d net %d %d show_details %d\n",
           l.w, l.h, l.n, l.total, l.classes, l.max_boxes, l.truth_size, net.w, net.h, l.show_details);
    fflush(stdout);
    forward_yolo_layer(l, state);
    write_floats(argv[7], "output.bin", l.output, (size_t)l.batch * l.outputs);
    write_floats(argv[7], "delta.bin", l.delta, (size_t)l.batch * l.outputs);
    write_floats(argv[7], "cost.bin", l.cost, 1);
    printf("COST %.9g total_bbox %d rewritten_bbox %d\n", *l.cost, *net.total_bbox, *net.rewritten_bbox);
    free(input);
    free(truth);
    free_network(net);
    return 0;
}
