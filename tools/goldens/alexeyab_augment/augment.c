/* AlexeyAB/darknet (59596d78, OPENCV build) load_data_detection on scripted random draws.  Ours, linked against
 * Darknet's objects with scripted_random.patch applied to src/utils.c (build.sh).
 *
 *   augment CASE.txt OUTDIR
 *
 * CASE.txt (whitespace-separated):
 *   w h boxes classes
 *   use_flip use_mixup jitter resize hue saturation exposure letter_box mosaic_bound use_blur gaussian_noise
 *   m path_1 .. path_m                  (the image list; labels are next to them, NAME.txt)
 *   n_gen gen_1 .. gen_n                (what random_gen returns, in turn)
 *   n_float float_1 .. float_n          (what random_float returns, in turn)
 * Runs load_data_detection(n = 1, ...) (use_mixup 3 = mosaic=1), with every draw of the path taken from the
 * scripts, and fails unless both scripts are used up exactly.  Writes OUTDIR/image.bin (float32, 3*h*w: d.X,
 * planar RGB) and OUTDIR/truth.bin (float32, boxes*6: d.y, rows x y w h class track_id).
 */
#include <stdio.h>
#include <stdlib.h>

#include "darknet.h"
#include "data.h"
#include "../golden_io.h"

extern unsigned int *scripted_gen;
extern int scripted_gen_n, scripted_gen_used;
extern float *scripted_float;
extern int scripted_float_n, scripted_float_used;

static void need(int ok, const char *what)
{
    if (!ok) { fprintf(stderr, "bad case file: %s\n", what); exit(1); }
}

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: augment CASE.txt OUTDIR\n"); return 1; }
    FILE *f = fopen(argv[1], "r");
    if (!f) { perror(argv[1]); return 1; }
    int w, h, boxes, classes, use_flip, use_mixup, letter_box, mosaic_bound, use_blur, gaussian_noise, m, i;
    float jitter, resize, hue, saturation, exposure;
    need(fscanf(f, "%d %d %d %d", &w, &h, &boxes, &classes) == 4, "sizes");
    need(fscanf(f, "%d %d %f %f %f %f %f %d %d %d %d", &use_flip, &use_mixup, &jitter, &resize, &hue, &saturation,
                &exposure, &letter_box, &mosaic_bound, &use_blur, &gaussian_noise) == 11, "options");
    need(fscanf(f, "%d", &m) == 1 && m > 0, "m");
    char **paths = (char**)calloc(m, sizeof(char*));
    for (i = 0; i < m; ++i) {
        paths[i] = (char*)calloc(4096, 1);
        need(fscanf(f, "%4095s", paths[i]) == 1, "path");
    }
    need(fscanf(f, "%d", &scripted_gen_n) == 1, "n_gen");
    scripted_gen = (unsigned int*)calloc(scripted_gen_n + 1, sizeof(unsigned int));
    for (i = 0; i < scripted_gen_n; ++i) need(fscanf(f, "%u", &scripted_gen[i]) == 1, "gen");
    need(fscanf(f, "%d", &scripted_float_n) == 1, "n_float");
    scripted_float = (float*)calloc(scripted_float_n + 1, sizeof(float));
    for (i = 0; i < scripted_float_n; ++i) need(fscanf(f, "%f", &scripted_float[i]) == 1, "float");
    fclose(f);

    const int truth_size = 6;
    data d = load_data_detection(1, paths, m, w, h, 3, boxes, truth_size, classes, use_flip, gaussian_noise, use_blur, use_mixup,
                                 jitter, resize, hue, saturation, exposure, 0, 0, 0, letter_box, mosaic_bound,
                                 0, 0, 0, 0);
    if (scripted_gen_used != scripted_gen_n || scripted_float_used != scripted_float_n) {
        fprintf(stderr, "scripts not used up: random_gen %d of %d, random_float %d of %d\n",
                scripted_gen_used, scripted_gen_n, scripted_float_used, scripted_float_n);
        return 2;
    }
    write_floats(argv[2], "image.bin", d.X.vals[0], (size_t)3 * w * h);
    write_floats(argv[2], "truth.bin", d.y.vals[0], (size_t)truth_size * boxes);
    printf("OK draws gen %d float %d\n", scripted_gen_used, scripted_float_used);
    free_data(d);
    return 0;
}
