/* Training state of a run (src/train/state.c): what `hotyolo train --resume RUN` reads from
 * RUN/weights/state.safetensors before anything else: the safetensors header, the
 * "hotyolo.state" record, the run's arguments (hotyolo.train.args) and its per-epoch results
 * (hotyolo.train.results). A run folder may come from elsewhere: every byte is untrusted. */
#include <json-c/json.h>

#include "fuzz_util.h"
#include "train/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfd_path(data, size);
    hy__st_file *f = NULL;
    if (hy__st_open(path, 0, &f) != HY_OK) return 0;
    hy__resume_info ri;
    (void)hy__resume_read_info(f, &ri);
    const char *a = hy__st_meta(f, "hotyolo.train.args"), *rs = hy__st_meta(f, "hotyolo.train.results");
    json_object *args = a ? json_tokener_parse(a) : NULL, *rows = rs ? json_tokener_parse(rs) : NULL;
    if (args && json_object_is_type(args, json_type_object)) {
        hy_train_params p = hy_train_default_params();
        (void)hy__resume_args(args, "fuzz", &p);
    }
    if (rows && json_object_is_type(rows, json_type_array))
        for (size_t i = 0; i < json_object_array_length(rows) && i < 4096; i++) {
            hy_train_epoch r;
            hy__resume_row(json_object_array_get_idx(rows, i), &r);
        }
    json_object_put(args);
    json_object_put(rows);
    hy__st_close(f);
    return 0;
}
