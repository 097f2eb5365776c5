/* The float32 file I/O our golden drivers share (tools/goldens/alexeyab_*): read a raw float32 file, write one
 * into an output folder; any failure ends the driver with a message. */
#ifndef GOLDEN_IO_H
#define GOLDEN_IO_H
#include <stdio.h>
#include <stdlib.h>

static inline float *read_floats(const char *path, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    float *x = (float*)calloc(n, sizeof(float));
    if (fread(x, sizeof(float), n, f) != n) { fprintf(stderr, "short read %s\n", path); exit(1); }
    fclose(f);
    return x;
}

static inline void write_floats(const char *dir, const char *name, const float *x, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(x, sizeof(float), n, f) != n) { perror(path); exit(1); }
    fclose(f);
}
#endif
