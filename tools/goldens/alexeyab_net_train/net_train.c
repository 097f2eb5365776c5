/* AlexeyAB/darknet (59596d78) network-level training semantics, linked against Darknet's objects (build.sh).
 *
 *   net_train layer CFG PARAMS.bin INPUT.bin GRAD.bin OUTDIR
 *       CFG: a [net] and a last [convolutional] or [connected] layer with batch_normalize=1, parsed for training
 *       (parse_network_cfg_custom with batch 0: the cfg's batch/subdivisions); only that layer runs (a net
 *       without a layer of width and height > 1 divides by zero in parse_network_cfg_custom's
 *       avg_outputs / avg_counter, so a [connected] case has a 1x1 [convolutional] on 2x2 before it, unused).  PARAMS.bin: float32 weights
 *       (l.nweights), biases, scales, rolling_mean, rolling_variance (l.n / l.outputs each).  Runs the layer's
 *       forward with state.train = 1 on INPUT.bin (batch*inputs), puts GRAD.bin (batch*outputs) in l.delta
 *       and runs its backward (state.delta = a zeroed buffer).  Writes OUTDIR/output.bin, mean.bin,
 *       variance.bin, rolling_mean.bin, rolling_variance.bin (after the forward), input_delta.bin,
 *       weight_updates.bin, bias_updates.bin, scale_updates.bin (after the backward), float32.
 *   net_train rate CFG ITERATION...
 *       get_current_rate(net) with *net.seen = ITERATION * batch * subdivisions: one line "ITERATION RATE".
 *   net_train multiscale INIT_W INIT_H RESIZE_STEP RANDOM ITERATION MAX_BATCHES AVG_LOSS RANDOM_VAL...
 *       train_detector's size rule (src/detector.c, the lines after `if (l.random && count++ % 10 == 0)`,
 *       copied below as they are) for given draws random_val = rand_scale(rand_coef): "RANDOM_VAL DIM_W DIM_H".
 *   net_train ema CFG STEPS.bin FIRST LAST OUTDIR
 *       the EMA of the weights ([net] ema_alpha): for cur_iteration = FIRST..LAST, the [convolutional] layers'
 *       weights, biases and (batch_normalize) scales are set from STEPS.bin (float32, per iteration and layer in
 *       that order: what the update left), then train_network_waitkey's lines after update_network run
 *       (src/network.c, copied below as they are, calling its ema_update, ema_apply, is_ema_initialized).
 *       Writes OUTDIR/trace.bin: per iteration and layer, weights, biases, scales, weights_ema, biases_ema,
 *       scales_ema after those lines.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet.h"
#include "network.h"
#include "parser.h"
#include "../golden_io.h"

static int run_layer(int argc, char **argv)
{
    if (argc != 7) { fprintf(stderr, "usage: net_train layer CFG PARAMS.bin INPUT.bin GRAD.bin OUTDIR\n"); return 1; }
    network net = parse_network_cfg_custom(argv[2], 0, 1);
    layer l = net.layers[net.n - 1];
    if (!l.batch_normalize || (l.type != CONVOLUTIONAL && l.type != CONNECTED)) {
        fprintf(stderr, "expected a batch-normalized [convolutional] or [connected] last\n"); return 1;
    }
    size_t nweights = l.type == CONVOLUTIONAL ? (size_t)l.nweights : (size_t)l.inputs * l.outputs;
    size_t n = l.type == CONVOLUTIONAL ? (size_t)l.n : (size_t)l.outputs;
    float *params = read_floats(argv[3], nweights + 4 * n);
    memcpy(l.weights, params, nweights * sizeof(float));
    memcpy(l.biases, params + nweights, n * sizeof(float));
    memcpy(l.scales, params + nweights + n, n * sizeof(float));
    memcpy(l.rolling_mean, params + nweights + 2 * n, n * sizeof(float));
    memcpy(l.rolling_variance, params + nweights + 3 * n, n * sizeof(float));
    float *input = read_floats(argv[4], (size_t)l.batch * l.inputs);
    float *grad = read_floats(argv[5], (size_t)l.batch * l.outputs);
    float *input_delta = (float*)calloc((size_t)l.batch * l.inputs, sizeof(float));
    network_state state = {0};
    state.net = net;
    state.index = net.n - 1;
    state.input = input;
    state.train = 1;
    state.workspace = net.workspace;
    state.delta = input_delta;
    printf("LAYER type %d batch %d inputs %d outputs %d n %zu nweights %zu\n", l.type, l.batch, l.inputs, l.outputs, n, nweights);
    l.forward(l, state);
    const char *out = argv[6];
    write_floats(out, "output.bin", l.output, (size_t)l.batch * l.outputs);
    write_floats(out, "mean.bin", l.mean, n);
    write_floats(out, "variance.bin", l.variance, n);
    write_floats(out, "rolling_mean.bin", l.rolling_mean, n);
    write_floats(out, "rolling_variance.bin", l.rolling_variance, n);
    memcpy(l.delta, grad, (size_t)l.batch * l.outputs * sizeof(float));
    l.backward(l, state);
    write_floats(out, "input_delta.bin", input_delta, (size_t)l.batch * l.inputs);
    write_floats(out, "weight_updates.bin", l.weight_updates, nweights);
    write_floats(out, "bias_updates.bin", l.bias_updates, n);
    write_floats(out, "scale_updates.bin", l.scale_updates, n);
    free(params); free(input); free(grad); free(input_delta);
    free_network(net);
    return 0;
}

static int run_rate(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: net_train rate CFG ITERATION...\n"); return 1; }
    network net = parse_network_cfg_custom(argv[2], 1, 1);
    int i;
    for (i = 3; i < argc; ++i) {
        int iteration = atoi(argv[i]);
        *net.seen = (uint64_t)iteration * net.batch * net.subdivisions;
        printf("%d %.9g\n", iteration, get_current_rate(net));
    }
    free_network(net);
    return 0;
}

/* src/detector.c train_detector, 59596d78, lines 197-215: the size of the next 10 iterations. */
static void multiscale_size(int init_w, int init_h, float resize_step, float random, int iteration, int max_batches,
                            float avg_loss, float random_val, int *out_w, int *out_h)
{
    float rand_coef = 1.4;
    if (random != 1.0) rand_coef = random;
    int dim_w = roundl(random_val*init_w / resize_step + 1) * resize_step;
    int dim_h = roundl(random_val*init_h / resize_step + 1) * resize_step;
    if (random_val < 1 && (dim_w > init_w || dim_h > init_h)) dim_w = init_w, dim_h = init_h;

    int max_dim_w = roundl(rand_coef*init_w / resize_step + 1) * resize_step;
    int max_dim_h = roundl(rand_coef*init_h / resize_step + 1) * resize_step;

    // at the beginning (check if enough memory) and at the end (calc rolling mean/variance)
    if (avg_loss < 0 || iteration > max_batches - 100) {
        dim_w = max_dim_w;
        dim_h = max_dim_h;
    }

    if (dim_w < resize_step) dim_w = resize_step;
    if (dim_h < resize_step) dim_h = resize_step;
    *out_w = dim_w;
    *out_h = dim_h;
}

static int run_multiscale(int argc, char **argv)
{
    if (argc < 10) {
        fprintf(stderr, "usage: net_train multiscale INIT_W INIT_H RESIZE_STEP RANDOM ITERATION MAX_BATCHES AVG_LOSS RANDOM_VAL...\n");
        return 1;
    }
    int i;
    for (i = 9; i < argc; ++i) {
        float random_val = (float)atof(argv[i]);
        int w, h;
        multiscale_size(atoi(argv[2]), atoi(argv[3]), (float)atof(argv[4]), (float)atof(argv[5]), atoi(argv[6]),
                        atoi(argv[7]), (float)atof(argv[8]), random_val, &w, &h);
        printf("%.9g %d %d\n", random_val, w, h);
    }
    return 0;
}

/* src/network.c train_network_waitkey, 59596d78, lines 430-455 (without the printfs and the unused ema_period). */
static void ema_after_update(network net)
{
    int ema_start_point = net.max_batches / 2;

    if (net.ema_alpha && (*net.cur_iteration) >= ema_start_point)
    {
        int ema_apply_point = net.max_batches - 1000;

        if (!is_ema_initialized(net))
        {
            ema_update(net, 0); // init EMA
        }

        if ((*net.cur_iteration) == ema_apply_point)
        {
            ema_apply(net); // apply EMA (BN rolling mean/var recalculation is required)
        }
        else
        if ((*net.cur_iteration) < ema_apply_point)
        {
            ema_update(net, net.ema_alpha); // update EMA
        }
    }
}

static void copy_conv(network net, float *x, int into_layers)
{
    int i;
    for (i = 0; i < net.n; ++i) {
        layer l = net.layers[i];
        if (l.type != CONVOLUTIONAL) continue;
        float *arrays[3] = {l.weights, l.biases, l.scales};
        size_t sizes[3] = {(size_t)l.nweights, (size_t)l.n, l.batch_normalize ? (size_t)l.n : 0};
        int k;
        for (k = 0; k < 3; ++k) {
            if (into_layers) memcpy(arrays[k], x, sizes[k] * sizeof(float));
            else memcpy(x, arrays[k], sizes[k] * sizeof(float));
            x += sizes[k];
        }
    }
}

static size_t conv_floats(network net)
{
    size_t n = 0;
    int i;
    for (i = 0; i < net.n; ++i) {
        layer l = net.layers[i];
        if (l.type == CONVOLUTIONAL) n += (size_t)l.nweights + l.n + (l.batch_normalize ? l.n : 0);
    }
    return n;
}

static int run_ema(int argc, char **argv)
{
    if (argc != 7) { fprintf(stderr, "usage: net_train ema CFG STEPS.bin FIRST LAST OUTDIR\n"); return 1; }
    network net = parse_network_cfg_custom(argv[2], 0, 1);
    int first = atoi(argv[4]), last = atoi(argv[5]);
    size_t n = conv_floats(net), steps = (size_t)(last - first + 1);
    float *values = read_floats(argv[3], n * steps);
    float *trace = (float*)calloc(2 * n * steps, sizeof(float));
    int cur;
    for (cur = first; cur <= last; ++cur) {
        size_t t = (size_t)(cur - first);
        copy_conv(net, values + t * n, 1);
        *net.cur_iteration = cur;
        ema_after_update(net);
        copy_conv(net, trace + 2 * t * n, 0);
        /* the EMA arrays, in the same layout */
        float *x = trace + (2 * t + 1) * n;
        int i;
        for (i = 0; i < net.n; ++i) {
            layer l = net.layers[i];
            if (l.type != CONVOLUTIONAL) continue;
            memcpy(x, l.weights_ema, (size_t)l.nweights * sizeof(float)); x += l.nweights;
            memcpy(x, l.biases_ema, (size_t)l.n * sizeof(float)); x += l.n;
            if (l.batch_normalize) { memcpy(x, l.scales_ema, (size_t)l.n * sizeof(float)); x += l.n; }
        }
    }
    printf("EMA alpha %g max_batches %d floats %zu\n", net.ema_alpha, net.max_batches, n);
    write_floats(argv[6], "trace.bin", trace, 2 * n * steps);
    free(values); free(trace);
    free_network(net);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "layer")) return run_layer(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "rate")) return run_rate(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "multiscale")) return run_multiscale(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "ema")) return run_ema(argc, argv);
    fprintf(stderr, "usage: net_train layer|rate|multiscale|ema ...\n");
    return 1;
}
