/* Detection dataset reader (see dataset.h): data.yaml through libyaml's document API, image
 * lists as Ultralytics 8.0.172 builds them (BaseDataset.get_img_files, verify_image_label). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "data/dataset.h"

/* Ultralytics IMG_FORMATS (8.0.x): extensions a folder scan picks up. */
static const char *const img_formats[] = {"bmp", "dng", "jpeg", "jpg",  "mpo",
                                          "png", "pfm", "tif",  "tiff", "webp"};

#define MAX_DIR_DEPTH 64 /* a symlink loop would recurse for ever */

// --- small string helpers ----------------------------------------------------------------------

typedef struct strvec {
    char **v;
    size_t n, cap;
} strvec;

static hy_status strvec_push(strvec *s, char *str) { // takes str (even on failure)
    if (!str) return hy__error(HY_ERR_NOMEM, "out of memory");
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **v = hy__realloc(s->v, cap * sizeof *v);
        if (!v) {
            hy__free(str);
            return hy__error(HY_ERR_NOMEM, "out of memory");
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = str;
    return HY_OK;
}

static void strvec_free(strvec *s) {
    for (size_t i = 0; i < s->n; i++) hy__free(s->v[i]);
    hy__free(s->v);
    memset(s, 0, sizeof *s);
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = hy__malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Lexical clean-up of a path, in place: "//" and "/./" collapse and "x/.." drops x (what
 * Path.resolve() does for paths without symlinks). The write position never passes the read
 * position, so one buffer serves both. */
static void path_normalize(char *p) {
    const int abs = p[0] == '/';
    const size_t base = abs ? 1 : 0, len = strlen(p);
    size_t o = base, r = 0;
    while (r < len) {
        while (r < len && p[r] == '/') r++;
        if (r >= len) break;
        const size_t a = r;
        while (r < len && p[r] != '/') r++;
        const size_t sl = r - a;
        if (sl == 1 && p[a] == '.') continue;
        if (sl == 2 && p[a] == '.' && p[a + 1] == '.') {
            if (o > base) {
                size_t k = o;
                while (k > base && p[k - 1] != '/') k--;
                if (!(o - k == 2 && p[k] == '.' && p[k + 1] == '.')) { // pop the last component
                    o = k > base ? k - 1 : base;
                    continue;
                }
            } else if (abs) {
                continue; // "/.." is "/"
            }
        }
        if (o > base) p[o++] = '/';
        memmove(p + o, p + a, sl);
        o += sl;
    }
    if (o == 0) p[o++] = '.';
    p[o] = '\0';
}

static char *path_join(const char *a, const char *b) {
    char *s = b[0] == '/' || !a || !*a ? hy__strdup(b) : str_printf("%s/%s", a, b);
    if (s && strlen(s) < PATH_MAX) path_normalize(s);
    return s;
}

static int path_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}
static int path_is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Ultralytics' extension test: text after the last '.', lower-cased, in IMG_FORMATS. */
static int has_img_ext(const char *p) {
    const char *dot = strrchr(p, '.');
    const char *ext = dot ? dot + 1 : p;
    char low[8] = {0};
    const size_t n = strlen(ext);
    if (n == 0 || n >= sizeof low) return 0;
    for (size_t i = 0; i < n && i < sizeof low - 1; i++)
        low[i] = (char)tolower((unsigned char)ext[i]);
    for (size_t i = 0; i < HY_ARRAY_LEN(img_formats); i++)
        if (!strcmp(low, img_formats[i])) return 1;
    return 0;
}

char *hy__val_label_path(const char *im_file) {
    // sb.join(x.rsplit(sa, 1)).rsplit('.', 1)[0] + '.txt' with sa = /images/, sb = /labels/
    const char *sa = "/images/";
    const char *last = NULL;
    for (const char *q = strstr(im_file, sa); q; q = strstr(q + 1, sa)) last = q;
    size_t n = strlen(im_file);
    char *s = hy__malloc(n + 5);
    if (!s) return NULL;
    memcpy(s, im_file, n + 1);
    if (last) memcpy(s + (last - im_file), "/labels/", 8);
    char *dot = strrchr(s, '.');
    if (dot) *dot = '\0';
    strcat(s, ".txt");
    return s;
}

// --- data.yaml -----------------------------------------------------------------------------------

typedef struct yaml_cfg {
    char *path;        // "path" key or NULL
    strvec split;      // entries of the requested split
    int split_present; // key present (even if null)
    strvec names;
    int names_present;
    long nc; // -1 = absent
} yaml_cfg;

static int scalar_is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE) return 0;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static int scalar_int(const yaml_node_t *n, long *out) {
    if (n->type != YAML_SCALAR_NODE) return 0;
    const char *v = (const char *)n->data.scalar.value;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno) return 0;
    *out = x;
    return 1;
}

static hy_status yaml_strings(yaml_document_t *doc, yaml_node_t *v, const char *what,
                              const char *key, strvec *out) {
    if (v->type == YAML_SCALAR_NODE) {
        if (scalar_is_null(v)) return HY_OK;
        return strvec_push(out, hy__strdup((const char *)v->data.scalar.value));
    }
    if (v->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *e = yaml_document_get_node(doc, *it);
            if (!e || e->type != YAML_SCALAR_NODE || scalar_is_null(e))
                return hy__error(HY_ERR_FORMAT, "%s: '%s' must list paths (strings)", what, key);
            hy_status st = strvec_push(out, hy__strdup((const char *)e->data.scalar.value));
            if (st) return st;
        }
        return HY_OK;
    }
    return hy__error(HY_ERR_FORMAT, "%s: '%s' must be a path or a list of paths", what, key);
}

static hy_status yaml_names(yaml_document_t *doc, yaml_node_t *v, const char *what, strvec *out) {
    if (v->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *e = yaml_document_get_node(doc, *it);
            if (!e || e->type != YAML_SCALAR_NODE)
                return hy__error(HY_ERR_FORMAT, "%s: names[%zu] is not a name", what, out->n);
            hy_status st = strvec_push(out, hy__strdup((const char *)e->data.scalar.value));
            if (st) return st;
        }
        return HY_OK;
    }
    if (v->type != YAML_MAPPING_NODE)
        return hy__error(HY_ERR_FORMAT, "%s: 'names' must be a list or a map of id: name", what);
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    char **tmp = hy__calloc(n ? n : 1, sizeof *tmp);
    if (!tmp) return hy__error(HY_ERR_NOMEM, "out of memory");
    hy_status st = HY_OK;
    for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top && !st;
         pr++) {
        yaml_node_t *k = yaml_document_get_node(doc, pr->key),
                    *e = yaml_document_get_node(doc, pr->value);
        long id;
        if (!k || !scalar_int(k, &id)) {
            st = hy__error(HY_ERR_FORMAT, "%s: names: key '%s' is not a class id (integer)", what,
                           k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value
                                                            : "?");
        } else if (id < 0 || (size_t)id >= n) {
            // check_class_names: a map of n names needs ids 0..n-1
            st = hy__error(HY_ERR_FORMAT, "%s: names: %zu-class map requires ids 0-%zu, got %ld",
                           what, n, n - 1, id);
        } else if (!e || e->type != YAML_SCALAR_NODE) {
            st = hy__error(HY_ERR_FORMAT, "%s: names: %ld is not a name", what, id);
        } else {
            hy__free(tmp[id]); // a repeated key: the last one wins (as PyYAML)
            tmp[id] = hy__strdup((const char *)e->data.scalar.value);
            if (!tmp[id]) st = hy__error(HY_ERR_NOMEM, "out of memory");
        }
    }
    for (size_t i = 0; i < n && !st; i++)
        if (!tmp[i]) st = hy__error(HY_ERR_FORMAT, "%s: names: class id %zu is missing", what, i);
    for (size_t i = 0; i < n; i++) {
        if (!st)
            st = strvec_push(out, tmp[i]);
        else
            hy__free(tmp[i]);
        tmp[i] = NULL;
    }
    hy__free(tmp);
    return st;
}

static hy_status yaml_read(const char *path, const char *split, yaml_cfg *cfg) {
    uint8_t *buf;
    size_t len;
    hy_status st = hy__file_read(path, &buf, &len);
    if (st) return st;
    yaml_parser_t parser;
    yaml_document_t doc;
    int have_doc = 0;
    if (!yaml_parser_initialize(&parser)) {
        hy__free(buf);
        return hy__error(HY_ERR_NOMEM, "%s: cannot initialise the YAML parser", path);
    }
    yaml_parser_set_input_string(&parser, buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        st = hy__error(HY_ERR_FORMAT, "%s:%zu:%zu: YAML: %s%s%s", path,
                       parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                       parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                       parser.context ? parser.context : "");
        goto done;
    }
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        st = hy__error(HY_ERR_FORMAT,
                       "%s: expected a mapping of keys (path, train, val, names, ...)", path);
        goto done;
    }
    // 'validation' is an alias of 'val' when 'val' is absent (check_det_dataset)
    yaml_node_t *split_node = NULL, *alias_node = NULL;
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
         pr < root->data.mapping.pairs.top && !st; pr++) {
        yaml_node_t *k = yaml_document_get_node(&doc, pr->key),
                    *v = yaml_document_get_node(&doc, pr->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE) continue;
        const char *key = (const char *)k->data.scalar.value;
        if (!strcmp(key, "path")) {
            if (scalar_is_null(v)) continue;
            if (v->type != YAML_SCALAR_NODE) {
                st = hy__error(HY_ERR_FORMAT, "%s: 'path' must be a folder path", path);
                break;
            }
            hy__free(cfg->path);
            cfg->path = hy__strdup((const char *)v->data.scalar.value);
            if (!cfg->path) st = hy__error(HY_ERR_NOMEM, "out of memory");
        } else if (!strcmp(key, split)) {
            split_node = v;
        } else if (!strcmp(split, "val") && !strcmp(key, "validation")) {
            alias_node = v;
        } else if (!strcmp(key, "names")) {
            strvec_free(&cfg->names);
            cfg->names_present = 1;
            st = yaml_names(&doc, v, path, &cfg->names);
        } else if (!strcmp(key, "nc")) {
            long nc;
            if (!scalar_int(v, &nc) || nc < 1 || nc > 1000000) {
                st = hy__error(HY_ERR_FORMAT, "%s: 'nc' must be a positive integer", path);
                break;
            }
            cfg->nc = nc;
        }
    }
    if (st) goto done;
    if (!split_node) split_node = alias_node;
    if (split_node) {
        cfg->split_present = 1;
        st = yaml_strings(&doc, split_node, path, split, &cfg->split);
    }
done:
    if (have_doc) yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    hy__free(buf);
    return st;
}

static void yaml_cfg_free(yaml_cfg *c) {
    hy__free(c->path);
    strvec_free(&c->split);
    strvec_free(&c->names);
}

// --- image files -------------------------------------------------------------------------------

/* glob(DIR + "/" + "**" + "/" + "*.*", recursive=True): names with a '.' not in first place,
 * hidden entries skipped, subfolders at any depth. */
static hy_status walk_dir(const char *dir, int depth, strvec *out) {
    if (depth > MAX_DIR_DEPTH)
        return hy__error(HY_ERR_UNSUPPORTED, "%s: folders nested too deep", dir);
    DIR *d = opendir(dir);
    if (!d) return hy__error(HY_ERR_IO, "%s: cannot list folder: %s", dir, strerror(errno));
    hy_status st = HY_OK;
    struct dirent *e;
    while (!st && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *p = str_printf("%s/%s", dir, e->d_name);
        if (!p) {
            st = hy__error(HY_ERR_NOMEM, "out of memory");
            break;
        }
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            st = walk_dir(p, depth + 1, out);
            hy__free(p);
        } else if (strchr(e->d_name + 1, '.') && has_img_ext(p)) {
            st = strvec_push(out, p);
        } else {
            hy__free(p);
        }
    }
    closedir(d);
    return st;
}

/* A .txt list: lines, "./x" relative to the list's folder, others as written (absolute, or
 * relative to the working directory, as Ultralytics). */
static hy_status read_list(const char *file, strvec *out) {
    uint8_t *buf;
    size_t len;
    hy_status st = hy__file_read(file, &buf, &len);
    if (st) return st;
    char *dir = hy__strdup(file);
    if (!dir) {
        hy__free(buf);
        return hy__error(HY_ERR_NOMEM, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    const char *p = (const char *)buf, *end = p + len;
    while (p < end && !st) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        const char *a = p, *b = e;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        if (b > a && !memchr(a, '\0', (size_t)(b - a))) {
            char *line = hy__strndup(a, (size_t)(b - a));
            char *path = NULL;
            if (line)
                path =
                    line[0] == '.' && line[1] == '/' ? path_join(dir, line + 2) : hy__strdup(line);
            hy__free(line);
            if (!path)
                st = hy__error(HY_ERR_NOMEM, "out of memory");
            else if (has_img_ext(path))
                st = strvec_push(out, path);
            else
                hy__free(path);
        }
        p = e + 1;
    }
    hy__free(dir);
    hy__free(buf);
    return st;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// --- header probe --------------------------------------------------------------------------------

static unsigned be16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }

/* EXIF Orientation (tag 0x0112 of IFD0) in a TIFF block; 1 when absent or unreadable. */
static int tiff_orientation(const uint8_t *t, size_t n) {
    if (n < 8) return 1;
    const int le = t[0] == 'I' && t[1] == 'I';
    if (!le && !(t[0] == 'M' && t[1] == 'M')) return 1;
#define U16(p)                                                                                     \
    (le ? (unsigned)(p)[0] | (unsigned)(p)[1] << 8 : (unsigned)(p)[0] << 8 | (unsigned)(p)[1])
#define U32(p)                                                                                     \
    (le ? (uint32_t)(p)[0] | (uint32_t)(p)[1] << 8 | (uint32_t)(p)[2] << 16 |                      \
              (uint32_t)(p)[3] << 24                                                               \
        : (uint32_t)(p)[0] << 24 | (uint32_t)(p)[1] << 16 | (uint32_t)(p)[2] << 8 |                \
              (uint32_t)(p)[3])
    if (U16(t + 2) != 42) return 1;
    uint32_t ifd = U32(t + 4);
    if (ifd > n - 2) return 1;
    unsigned count = U16(t + ifd);
    for (unsigned i = 0; i < count; i++) {
        size_t e = (size_t)ifd + 2 + (size_t)i * 12;
        if (e + 12 > n) break;
        if (U16(t + e) == 0x0112 && U16(t + e + 2) == 3 && U32(t + e + 4) >= 1) {
            unsigned v = U16(t + e + 8);
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
    }
    return 1;
#undef U16
#undef U32
}

static hy_status probe_jpeg(const uint8_t *b, size_t n, const char *path, int *w, int *h,
                            int *orient) {
    size_t pos = 2;
    int have_size = 0;
    *orient = 1;
    while (pos < n) {
        if (b[pos] != 0xFF)
            return hy__error(HY_ERR_FORMAT, "%s: JPEG: bad marker at byte %zu", path, pos);
        while (pos < n && b[pos] == 0xFF) pos++;
        if (pos >= n) break;
        const unsigned m = b[pos++];
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue; // markers without a length
        if (m == 0xD9 || m == 0xDA) break;                   // EOI / start of scan: header over
        if (pos + 2 > n) break;
        const size_t seg = be16(b + pos);
        if (seg < 2 || pos + seg > n) break;
        const uint8_t *s = b + pos + 2;
        const size_t sl = seg - 2;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC && sl >= 5) {
            *h = (int)be16(s + 1);
            *w = (int)be16(s + 3);
            have_size = 1;
        } else if (m == 0xE1 && sl >= 6 && !memcmp(s, "Exif\0\0", 6) && *orient == 1) {
            *orient = tiff_orientation(s + 6, sl - 6);
        }
        pos += seg;
    }
    if (!have_size)
        return hy__error(HY_ERR_FORMAT, "%s: JPEG: no frame header (truncated or corrupt)", path);
    return HY_OK;
}

hy_status hy__val_image_probe(const char *path, int *w, int *h, int *orientation, int *decodable) {
    hy__map m;
    hy_status st = hy__map_open(path, &m);
    if (st) return st;
    *w = *h = 0;
    *orientation = 1;
    *decodable = 1;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (m.size == 0) {
        st = hy__error(HY_ERR_FORMAT, "%s: empty file (0 bytes)", path);
    } else if (m.size >= 3 && m.data[0] == 0xFF && m.data[1] == 0xD8 && m.data[2] == 0xFF) {
        st = probe_jpeg(m.data, m.size, path, w, h, orientation);
    } else if (m.size >= 8 && !memcmp(m.data, png_sig, 8)) {
        if (m.size < 24 || memcmp(m.data + 12, "IHDR", 4))
            st = hy__error(HY_ERR_FORMAT, "%s: PNG: no IHDR chunk (truncated or corrupt)", path);
        else {
            uint32_t pw = (uint32_t)be16(m.data + 16) << 16 | be16(m.data + 18);
            uint32_t ph = (uint32_t)be16(m.data + 20) << 16 | be16(m.data + 22);
            if (pw == 0 || ph == 0 || pw > INT_MAX || ph > INT_MAX)
                st = hy__error(HY_ERR_FORMAT, "%s: PNG: invalid size %ux%u", path, pw, ph);
            *w = (int)pw;
            *h = (int)ph;
        }
    } else {
        *decodable = 0;
    }
    hy__map_close(&m);
    return st;
}

// --- labels --------------------------------------------------------------------------------------

/* float32 of a decimal number token, as numpy's float32(str); 0 if not a finite number. */
static int parse_f32(const char *tok, size_t n, float *out) {
    char buf[64];
    if (n == 0 || n >= sizeof buf) return 0;
    memcpy(buf, tok, n);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++) // decimal only: Python's float() takes no hex
        if (!strchr("0123456789+-.eE", buf[i])) return 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end || !isfinite(v)) return 0;
    *out = (float)v;
    return isfinite(*out);
}

static int cmp_label_row(const void *a, const void *b) { // np.unique(axis=0) row order
    const hy__val_label *x = a, *y = b;
    const float fx[5] = {(float)x->cls, x->x, x->y, x->w, x->h},
                fy[5] = {(float)y->cls, y->x, y->y, y->w, y->h};
    for (int i = 0; i < 5; i++)
        if (fx[i] != fy[i]) return fx[i] < fy[i] ? -1 : 1;
    return 0;
}

hy_status hy__val_labels_parse(const char *text, size_t len, const char *what, int nc,
                               hy__val_label **rows_out, int *n_out) {
    // Lines of the stripped text; a file with any line of more than 6 values holds polygons
    // (class x1 y1 x2 y2 ...), turned into their bounding boxes (segments2boxes).
    size_t cap = 16, n = 0;
    hy__val_label *rows = NULL;
    float *vals = NULL;
    size_t vcap = 0;
    hy_status st = HY_OK;
    int segments = 0;
    if (memchr(text, '\0', len))
        return hy__error(HY_ERR_FORMAT, "%s: not a text file (NUL byte)", what);
    for (int pass = 0; pass < 2 && !st; pass++) {
        const char *p = text, *end = text + len;
        int line = 0;
        n = 0;
        while (p < end && !st) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *e = nl ? nl : end;
            line++;
            // tokens
            size_t nt = 0;
            for (const char *q = p; q < e;) {
                while (q < e && isspace((unsigned char)*q)) q++;
                if (q >= e) break;
                const char *t0 = q;
                while (q < e && !isspace((unsigned char)*q)) q++;
                if (nt == vcap) {
                    size_t nc2 = vcap ? vcap * 2 : 16;
                    float *v2 = hy__realloc(vals, nc2 * sizeof *v2);
                    if (!v2) {
                        st = hy__error(HY_ERR_NOMEM, "out of memory");
                        break;
                    }
                    vals = v2;
                    vcap = nc2;
                }
                if (pass == 1 && !parse_f32(t0, (size_t)(q - t0), &vals[nt])) {
                    st = hy__error(HY_ERR_FORMAT, "%s:%d: '%.*s' is not a number", what, line,
                                   (int)HY_MIN(q - t0, 32), t0);
                    break;
                }
                nt++;
            }
            p = e + 1;
            if (st || nt == 0) continue; // blank lines are ignored
            if (pass == 0) {
                if (nt > 6) segments = 1;
                continue;
            }
            float cls = vals[0], bx, by, bw, bh;
            if (segments) {
                if (nt < 3 || (nt - 1) % 2) {
                    st = hy__error(HY_ERR_FORMAT,
                                   "%s:%d: polygon needs class and x y pairs, got %zu values", what,
                                   line, nt);
                    break;
                }
                float x1 = vals[1], y1 = vals[2], x2 = vals[1], y2 = vals[2];
                for (size_t k = 1; k + 1 < nt; k += 2) {
                    x1 = HY_MIN(x1, vals[k]);
                    x2 = HY_MAX(x2, vals[k]);
                    y1 = HY_MIN(y1, vals[k + 1]);
                    y2 = HY_MAX(y2, vals[k + 1]);
                }
                bx = (x1 + x2) / 2, by = (y1 + y2) / 2, bw = x2 - x1, bh = y2 - y1;
            } else {
                if (nt != 5) {
                    st = hy__error(HY_ERR_FORMAT,
                                   "%s:%d: expected 5 values (class x y w h), got %zu", what, line,
                                   nt);
                    break;
                }
                bx = vals[1], by = vals[2], bw = vals[3], bh = vals[4];
            }
            if (cls < 0 || cls != floorf(cls) || cls >= (float)nc) {
                st = hy__error(HY_ERR_FORMAT,
                               "%s:%d: class id %g out of range (dataset has %d classes, 0-%d)",
                               what, line, (double)cls, nc, nc - 1);
                break;
            }
            const float c4[4] = {bx, by, bw, bh};
            for (int k = 0; k < 4 && !st; k++)
                if (!(c4[k] >= 0.f && c4[k] <= 1.f))
                    st = hy__error(
                        HY_ERR_FORMAT,
                        "%s:%d: coordinate %g outside [0, 1] (labels are normalised xywh)", what,
                        line, (double)c4[k]);
            if (st) break;
            if (!rows || n == cap) {
                size_t c2 = rows ? cap * 2 : cap;
                hy__val_label *r2 = hy__realloc(rows, c2 * sizeof *r2);
                if (!r2) {
                    st = hy__error(HY_ERR_NOMEM, "out of memory");
                    break;
                }
                rows = r2;
                cap = c2;
            }
            rows[n++] = (hy__val_label){(int)cls, bx, by, bw, bh};
        }
    }
    hy__free(vals);
    if (st) {
        hy__free(rows);
        return st;
    }
    if (n == 0) {
        hy__free(rows);
        rows = NULL;
    }
    *rows_out = rows;
    *n_out = (int)n;
    return HY_OK;
}

/* Duplicate rows removed as np.unique(lb, axis=0): when there are any, the rows come back
 * sorted. Returns the number removed. */
static int dedupe_labels(hy__val_label *rows, int n) {
    if (n < 2) return 0;
    hy__val_label *tmp = hy__malloc((size_t)n * sizeof *tmp);
    if (!tmp) return 0; // keep them all; only the warning is lost
    memcpy(tmp, rows, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_label_row);
    int m = 1;
    for (int i = 1; i < n; i++)
        if (cmp_label_row(&tmp[i], &tmp[m - 1]) != 0) tmp[m++] = tmp[i];
    if (m < n) memcpy(rows, tmp, (size_t)m * sizeof *tmp);
    hy__free(tmp);
    return n - m;
}

// --- dataset -------------------------------------------------------------------------------------

static hy_status warn(hy__val_dataset *d, strvec *w, char *msg) {
    (void)d;
    if (!msg) return hy__error(HY_ERR_NOMEM, "out of memory");
    hy__log(HY_LOG_WARN, "%s", msg);
    return strvec_push(w, msg);
}

void hy__val_dataset_free(hy__val_dataset *d) {
    if (!d) return;
    hy__free(d->yaml_path);
    hy__free(d->root);
    for (int i = 0; d->names && i < d->nc; i++) hy__free(d->names[i]);
    hy__free(d->names);
    for (size_t i = 0; i < d->n; i++) {
        hy__free(d->items[i].im_file);
        hy__free(d->items[i].labels);
    }
    hy__free(d->items);
    for (size_t i = 0; i < d->n_warnings; i++) hy__free(d->warnings[i]);
    hy__free(d->warnings);
    hy__free(d);
}

/* Verifies one image and its label file as verify_image_label: appends an item, or a warning
 * when the image is skipped. */
static hy_status add_image(hy__val_dataset *d, char *im_file, size_t *cap, strvec *warns,
                           size_t *n_label_files) {
    int w, h, orient, decodable;
    hy_status st = hy__val_image_probe(im_file, &w, &h, &orient, &decodable);
    if (st) {
        if (st == HY_ERR_NOMEM) return st;
        return warn(d, warns, str_printf("%s; image skipped", hy_last_error()));
    }
    if (!decodable)
        return warn(d, warns,
                    str_printf("%s: not a JPEG or PNG file (only those are decoded); image skipped",
                               im_file));
    if (orient == 6 || orient == 8) { // PIL exif_size swaps for these two only
        int t = w;
        w = h;
        h = t;
    }
    if (w < 10 || h < 10)
        return warn(
            d, warns,
            str_printf("%s: image size %dx%d is under 10 pixels; image skipped", im_file, w, h));
    char *lb = hy__val_label_path(im_file);
    if (!lb) return hy__error(HY_ERR_NOMEM, "out of memory");
    hy__val_label *rows = NULL;
    int n_rows = 0;
    struct stat sb;
    if (stat(lb, &sb) == 0 && S_ISREG(sb.st_mode)) {
        (*n_label_files)++;
        uint8_t *text;
        size_t len;
        st = hy__file_read(lb, &text, &len);
        if (!st) {
            st = hy__val_labels_parse((const char *)text, len, lb, d->nc, &rows, &n_rows);
            hy__free(text);
        }
        if (st) {
            hy__free(lb);
            if (st == HY_ERR_NOMEM) return st;
            return warn(d, warns, str_printf("%s; image %s skipped", hy_last_error(), im_file));
        }
        int dup = dedupe_labels(rows, n_rows);
        if (dup) {
            n_rows -= dup;
            st = warn(d, warns,
                      str_printf("%s: %d duplicate label%s removed", lb, dup, dup > 1 ? "s" : ""));
            if (st) {
                hy__free(lb);
                hy__free(rows);
                return st;
            }
        }
    }
    hy__free(lb);
    if (d->n == *cap) {
        size_t c2 = *cap ? *cap * 2 : 256;
        hy__val_item *it = hy__realloc(d->items, c2 * sizeof *it);
        if (!it) {
            hy__free(rows);
            return hy__error(HY_ERR_NOMEM, "out of memory");
        }
        d->items = it;
        *cap = c2;
    }
    char *f = hy__strdup(im_file);
    if (!f) {
        hy__free(rows);
        return hy__error(HY_ERR_NOMEM, "out of memory");
    }
    d->items[d->n++] =
        (hy__val_item){.im_file = f, .w = w, .h = h, .labels = rows, .n_labels = n_rows};
    if (n_rows == 0) d->n_backgrounds++;
    d->n_instances += (size_t)n_rows;
    return HY_OK;
}

hy_status hy__val_dataset_load(const char *yaml_path, const char *split, hy__val_dataset **out) {
    if (!yaml_path || !split || !out)
        return hy__error(HY_ERR_INVALID_ARG, "hy__val_dataset_load: NULL argument");
    yaml_cfg cfg = {.nc = -1};
    strvec files = {0}, warns = {0};
    hy__val_dataset *d = hy__calloc(1, sizeof *d);
    if (!d) return hy__error(HY_ERR_NOMEM, "out of memory");
    hy_status st = yaml_read(yaml_path, split, &cfg);
    if (st) goto fail;
    d->yaml_path = hy__strdup(yaml_path);
    if (!d->yaml_path) goto nomem;

    // classes
    if (!cfg.names_present && cfg.nc < 0) {
        st = hy__error(HY_ERR_FORMAT, "%s: needs 'names' (or 'nc')", yaml_path);
        goto fail;
    }
    if (cfg.names_present && cfg.nc >= 0 && (long)cfg.names.n != cfg.nc) {
        st =
            hy__error(HY_ERR_FORMAT, "%s: 'names' has %zu entries but 'nc' is %ld: they must match",
                      yaml_path, cfg.names.n, cfg.nc);
        goto fail;
    }
    if (cfg.names_present && cfg.names.n == 0) {
        st = hy__error(HY_ERR_FORMAT, "%s: 'names' is empty", yaml_path);
        goto fail;
    }
    d->nc = cfg.names_present ? (int)cfg.names.n : (int)cfg.nc;
    d->names = hy__calloc((size_t)d->nc, sizeof *d->names);
    if (!d->names) goto nomem;
    for (int i = 0; i < d->nc; i++) {
        d->names[i] = cfg.names_present ? cfg.names.v[i] : str_printf("class_%d", i);
        if (cfg.names_present) cfg.names.v[i] = NULL;
        if (!d->names[i]) goto nomem;
    }

    // dataset root: 'path' (relative -> against the yaml's folder), else the yaml's folder
    {
        char *ydir = hy__strdup(yaml_path);
        if (!ydir) goto nomem;
        char *slash = strrchr(ydir, '/');
        if (slash == ydir)
            slash[1] = '\0';
        else if (slash)
            *slash = '\0';
        else
            strcpy(ydir, ".");
        char abs[PATH_MAX];
        if (!realpath(ydir, abs)) {
            st = hy__error(HY_ERR_IO, "%s: cannot resolve its folder: %s", yaml_path,
                           strerror(errno));
            hy__free(ydir);
            goto fail;
        }
        hy__free(ydir);
        d->root = cfg.path ? path_join(abs, cfg.path) : hy__strdup(abs);
        if (!d->root) goto nomem;
    }

    if (!cfg.split_present || cfg.split.n == 0) {
        st = hy__error(HY_ERR_NOT_FOUND, "%s: no '%s' split (key missing or empty)", yaml_path,
                       split);
        goto fail;
    }
    for (size_t i = 0; i < cfg.split.n; i++) {
        const char *s = cfg.split.v[i];
        char *p = path_join(d->root, s);
        if (!p) goto nomem;
        if (!path_exists(p) && !strncmp(s, "../", 3)) { // check_det_dataset's '../' retry
            char *p2 = path_join(d->root, s + 3);
            if (!p2) {
                hy__free(p);
                goto nomem;
            }
            if (path_exists(p2)) {
                hy__free(p);
                p = p2;
            } else {
                hy__free(p2);
            }
        }
        if (!path_exists(p)) {
            st = hy__error(HY_ERR_NOT_FOUND, "%s: %s: '%s' does not exist", yaml_path, split, p);
            hy__free(p);
            goto fail;
        }
        st = path_is_dir(p) ? walk_dir(p, 0, &files) : read_list(p, &files);
        hy__free(p);
        if (st) goto fail;
    }
    if (files.n == 0) {
        st = hy__error(HY_ERR_NOT_FOUND,
                       "%s: %s: no images found (extensions: bmp dng jpeg jpg mpo png pfm tif "
                       "tiff webp)",
                       yaml_path, split);
        goto fail;
    }
    qsort(files.v, files.n, sizeof *files.v, cmp_str);

    size_t cap = 0, n_label_files = 0;
    for (size_t i = 0; i < files.n; i++)
        if ((st = add_image(d, files.v[i], &cap, &warns, &n_label_files))) goto fail;
    if (d->n == 0) {
        st = hy__error(HY_ERR_FORMAT, "%s: %s: none of the %zu images is usable (%s)", yaml_path,
                       split, files.n, warns.n ? warns.v[0] : "?");
        goto fail;
    }
    if (d->n && d->n_instances == 0) { // as Ultralytics' "WARNING No labels found in ..."
        char *lb = hy__val_label_path(d->items[0].im_file);
        char *msg = !lb ? NULL
                    : n_label_files == 0
                        ? str_printf("%s: %s: no label files found for the %zu images (looked for "
                                     "e.g. '%s': each image path with its last /images/ replaced "
                                     "by /labels/ and the extension by .txt): every image counts "
                                     "as background and mAP will be 0",
                                     yaml_path, split, d->n, lb)
                        : str_printf("%s: %s: the %zu label files found for the %zu images hold "
                                     "no labels: every image counts as background and mAP will "
                                     "be 0",
                                     yaml_path, split, n_label_files, d->n);
        hy__free(lb);
        if ((st = warn(d, &warns, msg))) goto fail;
        // first in the list: callers that show only the first few warnings show this one
        memmove(warns.v + 1, warns.v, (warns.n - 1) * sizeof *warns.v);
        warns.v[0] = msg;
    }
    d->warnings = warns.v;
    d->n_warnings = warns.n;
    warns.v = NULL;
    warns.n = 0;
    strvec_free(&files);
    yaml_cfg_free(&cfg);
    *out = d;
    return HY_OK;
nomem:
    st = hy__error(HY_ERR_NOMEM, "out of memory reading %s", yaml_path);
fail:
    strvec_free(&files);
    strvec_free(&warns);
    yaml_cfg_free(&cfg);
    hy__val_dataset_free(d);
    return st;
}

// --- decode check --------------------------------------------------------------------------------

#define VERIFY_PAR_FILE_BYTES ((size_t)32 << 20) /* a larger file is read and decoded alone */

typedef struct verify_ctx {
    const hy__val_dataset *d;
    const long *idx;     /* (n_idx) items this pass decodes */
    hy_status *st;       /* (d->n) HY_OK or the decoder's status */
    char **reason;       /* (d->n) hy__malloc'd reason when st != HY_OK (NULL: out of memory) */
} verify_ctx;

static void verify_one(void *ctx, long k, int ith) {
    (void)ith;
    verify_ctx *c = ctx;
    const long i = c->idx[k];
    const char *path = c->d->items[i].im_file;
    hy_image *img = NULL;
    hy_status st = hy_image_load(path, &img); // the loader's and val's decoder and repair level
    hy_image_free(img);
    c->st[i] = st;
    if (!st) return;
    // hy_last_error() is this thread's; drop the "<path>: " the decoder put in front
    const char *e = hy_last_error();
    const size_t pl = strlen(path);
    if (!strncmp(e, path, pl) && e[pl] == ':' && e[pl + 1] == ' ') e += pl + 2;
    c->reason[i] = hy__strdup(e);
}

hy_status hy__val_dataset_verify_decode(hy__val_dataset *d, hy__threadpool *tp, size_t *removed) {
    if (!d || !removed)
        return hy__error(HY_ERR_INVALID_ARG, "hy__val_dataset_verify_decode: NULL argument");
    const size_t n = d->n;
    hy_status st = HY_OK;
    verify_ctx c = {.d = d};
    long *idx = hy__malloc((n ? n : 1) * sizeof *idx);
    c.st = hy__calloc(n ? n : 1, sizeof *c.st);
    c.reason = hy__calloc(n ? n : 1, sizeof *c.reason);
    char **msgs = NULL;
    size_t n_bad = 0;
    long n_small = 0, n_big = 0;
    if (!idx || !c.st || !c.reason) goto nomem;

    // small images one per thread, then large ones (header pixels or file bytes) one at a time:
    // the peak is (threads x a small image) or one large image, never threads x large ones
    for (size_t i = 0; i < n; i++) {
        const hy__val_item *it = &d->items[i];
        struct stat sb;
        const int big = (long)it->w * (long)it->h > HY_VERIFY_PAR_PIXELS ||
                        (stat(it->im_file, &sb) == 0 && (size_t)sb.st_size > VERIFY_PAR_FILE_BYTES);
        if (big)
            idx[n - 1 - (size_t)n_big++] = (long)i; // from the back
        else
            idx[n_small++] = (long)i;
    }
    c.idx = idx;
    hy__threadpool_each(tp, n_small, verify_one, &c);
    c.idx = idx + n_small;
    for (long k = 0; k < n_big; k++) verify_one(&c, k, 0);

    for (size_t i = 0; i < n; i++) {
        if (c.st[i] == HY_ERR_NOMEM) {
            st = hy__error(HY_ERR_NOMEM, "%s: out of memory decoding it (%s)",
                           d->items[i].im_file, c.reason[i] ? c.reason[i] : "?");
            goto fail;
        }
        if (c.st[i] && !c.reason[i]) goto nomem;
        n_bad += c.st[i] != HY_OK;
    }
    if (n_bad) {
        // everything that can fail is allocated before d changes
        msgs = hy__calloc(n_bad, sizeof *msgs);
        if (!msgs) goto nomem;
        for (size_t i = 0, k = 0; i < n; i++)
            if (c.st[i] && !(msgs[k++] = str_printf("%s: cannot decode (%s); image skipped",
                                                    d->items[i].im_file, c.reason[i])))
                goto nomem;
        char **w = hy__realloc(d->warnings, (d->n_warnings + n_bad) * sizeof *w);
        if (!w) goto nomem;
        d->warnings = w;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            hy__val_item *it = &d->items[i];
            if (!c.st[i]) {
                d->items[o++] = *it;
                continue;
            }
            if (it->n_labels == 0)
                d->n_backgrounds--;
            else
                d->n_instances -= (size_t)it->n_labels;
            hy__free(it->im_file);
            hy__free(it->labels);
        }
        d->n = o;
        for (size_t k = 0; k < n_bad; k++) {
            hy__log(HY_LOG_WARN, "%s", msgs[k]);
            d->warnings[d->n_warnings++] = msgs[k];
        }
        hy__free(msgs);
        msgs = NULL;
    }
    *removed = n_bad;
    goto done;
nomem:
    st = hy__error(HY_ERR_NOMEM, "out of memory checking the images of %s",
                   d->yaml_path ? d->yaml_path : "the dataset");
fail:
    if (msgs)
        for (size_t k = 0; k < n_bad; k++) hy__free(msgs[k]);
    hy__free(msgs);
done:
    if (c.reason)
        for (size_t i = 0; i < n; i++) hy__free(c.reason[i]);
    hy__free(c.reason);
    hy__free(c.st);
    hy__free(idx);
    return st;
}
