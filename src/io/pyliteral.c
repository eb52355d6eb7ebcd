/* Python literals in text metadata (see pyliteral.h). */
#include "io/pyliteral.h"

#include <string.h>

void hy__py_skip_ws(const char **p) {
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r') (*p)++;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Output of a string literal: at most cap bytes; d == NULL only measures. */
typedef struct sbuf {
    char *d;
    size_t n, cap;
} sbuf;

static int sb_put(sbuf *b, const char *s, size_t k) {
    if (k > b->cap - b->n) return 0;
    if (b->d) memcpy(b->d + b->n, s, k);
    b->n += k;
    return 1;
}

static int sb_utf8(sbuf *b, uint32_t cp) {
    char u[4];
    return sb_put(b, u, put_utf8(u, cp));
}

int hy__py_string(const char **p, char *dst, size_t cap, size_t *len, const char **err,
                  int *too_long) {
    sbuf sb = {dst, 0, cap}, *b = &sb;
    char q = **p;
    if (q != '\'' && q != '"') {
        *err = "expected a quoted string";
        return 0;
    }
    const char *s = *p + 1;
    for (;;) {
        char ch = *s++;
        if (ch == q) break;
        if (!ch || ch == '\n') {
            *err = "unterminated string";
            return 0;
        }
        int ok = 1, digits = 0;
        char e = ch == '\\' ? *s++ : 0;
        switch (ch != '\\' ? -1 : e) {
        case -1: ok = sb_put(b, &ch, 1); break;
        case '\\': case '\'': case '"': ok = sb_put(b, &e, 1); break;
        case 'n': ok = sb_put(b, "\n", 1); break;
        case 'r': ok = sb_put(b, "\r", 1); break;
        case 't': ok = sb_put(b, "\t", 1); break;
        case 'a': ok = sb_put(b, "\a", 1); break;
        case 'b': ok = sb_put(b, "\b", 1); break;
        case 'f': ok = sb_put(b, "\f", 1); break;
        case 'v': ok = sb_put(b, "\v", 1); break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
            uint32_t v = (uint32_t)(e - '0');
            for (int i = 0; i < 2 && *s >= '0' && *s <= '7'; i++)
                v = v * 8 + (uint32_t)(*s++ - '0');
            ok = sb_utf8(b, v);
            break;
        }
        case 0: case '\n': *err = "unterminated string"; return 0;
        default: /* Python keeps unknown escapes verbatim */
            ok = sb_put(b, "\\", 1) && sb_put(b, &e, 1);
            break;
        }
        if (digits) {
            uint32_t v = 0;
            for (int i = 0; i < digits; i++) {
                int h = hexval(*s);
                if (h < 0) {
                    *err = "bad \\x/\\u escape";
                    return 0;
                }
                v = v * 16 + (uint32_t)h;
                s++;
            }
            if (v > 0x10ffff) {
                *err = "escape beyond U+10FFFF";
                return 0;
            }
            ok = sb_utf8(b, v);
        }
        if (!ok) {
            *too_long = 1;
            return 0;
        }
    }
    *p = s;
    *len = sb.n;
    return 1;
}

/* The integer class id before ':' in a dict; 0 with *err set on a syntax error. */
static int dict_key(const char **pp, long *key, const char **err) {
    const char *p = *pp;
    if (*p < '0' || *p > '9') {
        *err = "expected an integer class id";
        return 0;
    }
    long k = 0;
    while (*p >= '0' && *p <= '9' && k <= 1000000) k = k * 10 + (*p++ - '0');
    *pp = p;
    if (k > 1000000) {
        *err = "class id too large";
        return 0;
    }
    hy__py_skip_ws(&p);
    if (*p != ':') {
        *pp = p;
        *err = "expected ':'";
        return 0;
    }
    p++;
    hy__py_skip_ws(&p);
    *pp = p;
    *key = k;
    return 1;
}

/* Puts vals[i] at names[keys[i]]; the keys must be a permutation of 0..n-1. */
static hy_status order_names(const long *keys, char **vals, size_t n, hy__arena *out,
                             char ***names) {
    char **v = hy__arena_array(out, n, sizeof(char *));
    if (!v) return hy__error(HY_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (keys[i] < 0 || (size_t)keys[i] >= n || v[keys[i]])
            return hy__error(HY_ERR_FORMAT, "class ids are not 0..%zu (id %ld is %s)", n - 1,
                             keys[i], (size_t)keys[i] >= n ? "out of range" : "repeated");
        v[keys[i]] = vals[i];
    }
    *names = v;
    return HY_OK;
}

hy_status hy__py_names_parse(const char *text, size_t max_names, size_t max_name_bytes,
                             hy__arena *out, hy__arena *tmp, char ***names, size_t *n_names) {
    const char *p = text, *err = NULL;
    hy__py_skip_ws(&p);
    char open = *p, close = open == '{' ? '}' : ']';
    if (open != '{' && open != '[')
        return hy__error(HY_ERR_FORMAT, "expected '{' or '[' at character %zu", (size_t)(p - text));
    p++;
    char buf[4096];
    if (max_name_bytes > sizeof buf) max_name_bytes = sizeof buf;
    long *keys = hy__arena_array(tmp, max_names, sizeof(long));
    char **vals = hy__arena_array(tmp, max_names, sizeof(char *));
    if (!keys || !vals) return hy__error(HY_ERR_NOMEM, "out of memory");
    size_t n = 0;
    int too_long = 0;
    for (;;) {
        hy__py_skip_ws(&p);
        if (*p == close) {
            p++;
            break;
        }
        if (n && *p == ',') {
            p++;
            hy__py_skip_ws(&p);
            if (*p == close) { /* trailing comma */
                p++;
                break;
            }
        } else if (n) {
            err = "expected ',' or the closing bracket";
            break;
        }
        long key = (long)n;
        if (open == '{' && !dict_key(&p, &key, &err)) break;
        size_t len = 0;
        if (!hy__py_string(&p, n < max_names ? buf : NULL, max_name_bytes, &len, &err, &too_long))
            break;
        if (n < max_names) {
            keys[n] = key;
            if (!(vals[n] = hy__arena_strndup(out, buf, len)))
                return hy__error(HY_ERR_NOMEM, "out of memory");
        }
        n++;
    }
    if (too_long)
        return hy__error(HY_ERR_FORMAT, "class %zu: name longer than %zu bytes", n, max_name_bytes);
    if (!err) {
        hy__py_skip_ws(&p);
        if (*p) err = "unexpected text after the closing bracket";
    }
    if (err) return hy__error(HY_ERR_FORMAT, "%s at character %zu", err, (size_t)(p - text));
    if (n == 0) {
        *names = NULL;
        *n_names = 0;
        return HY_OK;
    }
    if (n > max_names) return hy__error(HY_ERR_FORMAT, "%zu classes, at most %zu", n, max_names);
    hy_status st = order_names(keys, vals, n, out, names);
    if (!st) *n_names = n;
    return st;
}

int hy__py_int_pair(const char *s, int hw[2]) {
    const char *p = s;
    int k = 0, br = 0;
    hy__py_skip_ws(&p);
    if (*p == '[' || *p == '(') br = *p++;
    while (k < 2) {
        hy__py_skip_ws(&p);
        if (*p < '0' || *p > '9') return 0;
        long v = 0;
        while (*p >= '0' && *p <= '9' && v <= 1000000) v = v * 10 + (*p++ - '0');
        if (v <= 0 || v > 1000000) return 0;
        hw[k++] = (int)v;
        hy__py_skip_ws(&p);
        if (*p != ',') break;
        p++;
    }
    hy__py_skip_ws(&p);
    if (br) {
        if (*p != (br == '[' ? ']' : ')')) return 0;
        p++;
    }
    hy__py_skip_ws(&p);
    if (*p) return 0;
    if (k == 1) hw[1] = hw[0];
    return 1;
}
