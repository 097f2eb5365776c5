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
 *   ab_layers forward CFG WEIGHTS INPUT.f32 FUSE OUTDIR [THRESH IMAGE_W IMAGE_H NMS]
 *       parse_network_cfg_custom(cfg, 1, 1), a check that WEIGHTS holds exactly
 *       the bytes load_weights reads, load_weights, fuse_conv_batchnorm when
 *       FUSE is 1 (as test_detector does), network_predict on INPUT (float32,
 *       net.c*net.h*net.w, Darknet's CHW layout) and, for every layer,
 *       layers.txt (`index type C H W`) and OUTDIR/layer_NNN.npy = l.output
 *       as (out_c, out_h, out_w) float32.
 *       With THRESH: the detections as test_detector makes them for an image
 *       of IMAGE_W x IMAGE_H: get_network_boxes(&net, IMAGE_W, IMAGE_H, THRESH,
 *       .5, 0, 1, &n, net.letter_box) into OUTDIR/detections.txt, then the NMS
 *       of the last [yolo]/[Gaussian_yolo]/[region] layer (do_nms_sort when its
 *       nms_kind is the default, else diounms_sort(.., NMS, nms_kind,
 *       beta_nms); none when NMS is 0) into OUTDIR/detections_nms.txt (the
 *       whole array in its order after the NMS).  Each file: a line
 *       `nboxes N classes C uc U letter L nms_kind K beta_nms B`, then per
 *       detection `x y w h objectness [uc0 uc1 uc2 uc3 when U = 1] prob_0 ..
 *       prob_C-1`, %.9g (float32 exactly).
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

static void write_detections(const char *path, const detection *dets, int n, int classes, int uc, int letter, layer l)
{
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fprintf(f, "nboxes %d classes %d uc %d letter %d nms_kind %d beta_nms %.9g\n", n, classes, uc, letter,
            (int)l.nms_kind, l.beta_nms);
    int i, j;
    for (i = 0; i < n; ++i) {
        box b = dets[i].bbox;
        fprintf(f, "%.9g %.9g %.9g %.9g %.9g", b.x, b.y, b.w, b.h, dets[i].objectness);
        if (uc) for (j = 0; j < 4; ++j) fprintf(f, " %.9g", dets[i].uc[j]);
        for (j = 0; j < classes; ++j) fprintf(f, " %.9g", dets[i].prob[j]);
        fputc('\n', f);
    }
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
        fprintf(stderr, "usage: ab_layers layout CFG | ab_layers forward CFG WEIGHTS INPUT.f32 FUSE OUTDIR "
                "[THRESH IMAGE_W IMAGE_H NMS]\n");
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
    if (argc >= 11) {
        float thresh = atof(argv[7]), nms = atof(argv[10]);
        int image_w = atoi(argv[8]), image_h = atoi(argv[9]);
        /* test_detector: the last detection layer gives the NMS; make_network_boxes sizes prob (and uc) by the first */
        layer l = net.layers[net.n - 1], first = l;
        int found = 0;
        for (q = 0; q < net.n; ++q) {
            layer lq = net.layers[q];
            int head = lq.type == YOLO || lq.type == GAUSSIAN_YOLO || lq.type == REGION;
            if (head) l = lq;
            if ((head || lq.type == DETECTION) && !found++) first = lq;
        }
        int nboxes = 0;
        detection *dets = get_network_boxes(&net, image_w, image_h, thresh, .5, 0, 1, &nboxes, net.letter_box);
        int uc = first.type == GAUSSIAN_YOLO;
        sprintf(path, "%s/detections.txt", out);
        write_detections(path, dets, nboxes, first.classes, uc, net.letter_box, l);
        if (nms) {
            if (l.nms_kind == DEFAULT_NMS) do_nms_sort(dets, nboxes, l.classes, nms);
            else diounms_sort(dets, nboxes, l.classes, nms, l.nms_kind, l.beta_nms);
        }
        sprintf(path, "%s/detections_nms.txt", out);
        write_detections(path, dets, nboxes, first.classes, uc, net.letter_box, l);
        free_detections(dets, nboxes);
    }
    free(x);
    free_network(net);
    return 0;
}
