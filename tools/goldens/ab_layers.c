/* ab_layers.c - every layer's output of AlexeyAB Darknet (CPU build) on a given input.
 *
 * pydarknet's own driver (not Darknet code), linked against AlexeyAB/darknet's
 * objects (all of obj/ except darknet.o), as ../shared/harness/alexeyab/build.sh
 * links ab_golden.c.  Two modes:
 *
 *   ab_layers layout CFG
 *       parse_network_cfg_custom(cfg, 1, 1) and print, one line per layer that
 *       load_weights reads values for, in file order:
 *         conv INDEX N C GROUPS SIZE BATCH_NORMALIZE NWEIGHTS
 *         shortcut INDEX NWEIGHTS
 *       (tools/goldens/make_extra.py writes seeded weights from it).
 *
 *   ab_layers forward CFG WEIGHTS INPUT.f32 FUSE OUTDIR
 *       parse_network_cfg_custom(cfg, 1, 1), a check that WEIGHTS holds exactly
 *       the bytes load_weights reads, load_weights, fuse_conv_batchnorm when
 *       FUSE is 1 (as test_detector does), network_predict on INPUT (float32,
 *       net.c*net.h*net.w, Darknet's CHW layout) and, for every layer,
 *       layers.txt (`index type C H W`) and OUTDIR/layer_NNN.npy = l.output
 *       as (out_c, out_h, out_w) float32.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#include "darknet.h"
#include "network.h"
#include "parser.h"
#include "utils.h"

static void write_npy(const char *path, const float *data, int c, int h, int w)
{
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    char dict[256];
    sprintf(dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d), }", c, h, w);
    size_t hl = strlen(dict);
    size_t pad = (64 - (10 + hl + 1) % 64) % 64;
    unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    fwrite(magic, 1, 8, f);
    uint16_t hlen = (uint16_t)(hl + pad + 1);
    fwrite(&hlen, 2, 1, f);
    fwrite(dict, 1, hl, f);
    size_t i;
    for (i = 0; i < pad; ++i) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, sizeof(float), (size_t)c * h * w, f);
    fclose(f);
}

static const char *type_name(LAYER_TYPE t)
{
    switch (t) {
    case UPSAMPLE: return "upsample";
    case SAM: return "sam";
    case SCALE_CHANNELS: return "scale_channels";
    case LOCAL_AVGPOOL: return "local_avgpool";
    case REORG_OLD: return "reorg3d";
    default: return get_layer_string(t);
    }
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "layout")) {
        network net = parse_network_cfg_custom(argv[2], 1, 1);
        int q;
        for (q = 0; q < net.n; ++q) {
            layer l = net.layers[q];
            if (l.type == CONVOLUTIONAL && l.share_layer == NULL)
                printf("conv %d %d %d %d %d %d %d\n", q, l.n, l.c, l.groups, l.size, l.batch_normalize, l.nweights);
            else if (l.type == SHORTCUT && l.nweights > 0)
                printf("shortcut %d %d\n", q, l.nweights);
            else if (l.type == CONNECTED || l.type == IMPLICIT || l.type == CRNN || l.type == RNN
                     || l.type == LSTM || l.type == GRU || l.type == CONV_LSTM || l.type == DECONVOLUTIONAL
                     || l.type == BATCHNORM || l.type == LOCAL) {
                fprintf(stderr, "layer %d: type %s has weights this driver does not lay out\n", q, type_name(l.type));
                return 2;
            }
        }
        free_network(net);
        return 0;
    }
    if (argc < 7 || strcmp(argv[1], "forward")) {
        fprintf(stderr, "usage: ab_layers layout CFG | ab_layers forward CFG WEIGHTS INPUT.f32 FUSE OUTDIR\n");
        return 1;
    }
    char *cfg = argv[2], *weights = argv[3], *input = argv[4], *out = argv[6];
    int fuse = atoi(argv[5]);
    char path[4096];
    network net = parse_network_cfg_custom(cfg, 1, 1);
    size_t vals = 0;
    int q;
    for (q = 0; q < net.n; ++q) {
        layer l = net.layers[q];
        if (l.type == CONVOLUTIONAL && l.share_layer == NULL) vals += l.n * (l.batch_normalize ? 4 : 1) + l.nweights;
        if (l.type == SHORTCUT) vals += l.nweights;
    }
    FILE *wf = fopen(weights, "rb");
    if (!wf) file_error(weights);
    fseek(wf, 0, SEEK_END);
    long fsize = ftell(wf);
    fclose(wf);
    if ((long)(20 + 4 * vals) != fsize) { fprintf(stderr, "weights size mismatch: expected %zu, file %ld\n", 20 + 4 * vals, fsize); return 2; }
    load_weights(&net, weights);
    if (fuse) fuse_conv_batchnorm(net);

    size_t n = (size_t)net.c * net.h * net.w;
    float *x = (float *)calloc(n, sizeof(float));
    FILE *f = fopen(input, "rb");
    if (!f) file_error(input);
    if (fread(x, sizeof(float), n, f) != n) { fprintf(stderr, "short read %s\n", input); return 2; }
    fclose(f);
    network_predict(net, x);

    sprintf(path, "%s/layers.txt", out);
    FILE *lf = fopen(path, "w");
    for (q = 0; q < net.n; ++q) {
        layer l = net.layers[q];
        fprintf(lf, "%d %s %d %d %d\n", q, type_name(l.type), l.out_c, l.out_h, l.out_w);
        sprintf(path, "%s/layer_%03d.npy", out, q);
        write_npy(path, l.output, l.out_c, l.out_h, l.out_w);
    }
    fclose(lf);
    free(x);
    free_network(net);
    return 0;
}
