/* Device strings (hotyolo/device.h: hy_device_check, src/backend/backend.c): the allow-list
 * every --device, hy_model_params.device and Python device= goes through. Each input is one
 * NUL-terminated string (inner NULs end it early, as in C). Checked:
 *   - accepted: the normalised name is one of cpu / ref / auto / cuda:0..63, and checking it
 *     again accepts it unchanged (one spelling per device);
 *   - refused: HY_ERR_INVALID_ARG, no normalised name, and an error text of printable ASCII
 *     only, bounded in length (the string is shown, never echoed raw). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotyolo/device.h"

static int canonical(const char *s) {
    if (!strcmp(s, "cpu") || !strcmp(s, "ref") || !strcmp(s, "auto")) return 1;
    if (strncmp(s, "cuda:", 5) != 0) return 0;
    const char *d = s + 5;
    size_t n = strlen(d);
    if (n < 1 || n > 2 || (n == 2 && d[0] == '0')) return 0;
    for (size_t i = 0; i < n; i++)
        if (d[i] < '0' || d[i] > '9') return 0;
    return atoi(d) <= 63;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    char norm[16] = "x", again[16] = "y";
    hy_status st = hy_device_check(s, norm);
    if (st == HY_OK) {
        if (!canonical(norm)) __builtin_trap();
        if (hy_device_check(norm, again) != HY_OK || strcmp(norm, again) != 0) __builtin_trap();
    } else {
        if (st != HY_ERR_INVALID_ARG || norm[0]) __builtin_trap();
        const char *e = hy_last_error();
        size_t n = strlen(e);
        if (n == 0 || n > 400) __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)e[i] < 0x20 || (unsigned char)e[i] >= 0x7f) __builtin_trap();
    }
    free(s);
    return 0;
}
