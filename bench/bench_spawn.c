/* Wall time and peak RSS of whole processes: process start -> exit, as a user sees a one-shot
 * command. Runs CMD K times (posix_spawnp, wait4), child stdout to /dev/null (stderr kept).
 * Prints one line per run and a summary; a run that fails (exit != 0, signal) fails the tool.
 *
 *   bench_spawn [-n K] [--samples FILE] [--json] -- CMD [ARGS...]
 *
 *   wall_ms: clock_gettime(MONOTONIC) right before posix_spawnp to right after wait4 returns.
 *   maxrss : wait4's ru_maxrss (KiB) of the child: its peak resident set.
 *   --samples FILE appends "wall_ms maxrss_kib" per run, for medians across invocations. */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"

extern char **environ;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs argv once; 0 on a clean exit, with its wall time and peak RSS. */
static int spawn_once(char **argv, double *wall_ms, long *maxrss_kb) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    double t0 = hy__now_ms();
    int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err) {
        fprintf(stderr, "bench_spawn: cannot start %s: %s\n", argv[0], strerror(err));
        return -1;
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) {
        perror("bench_spawn: wait4");
        return -1;
    }
    *wall_ms = hy__now_ms() - t0;
    *maxrss_kb = ru.ru_maxrss;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFSIGNALED(status)) fprintf(stderr, "bench_spawn: %s killed by signal %d\n", argv[0], WTERMSIG(status));
        else fprintf(stderr, "bench_spawn: %s exited with status %d\n", argv[0], WEXITSTATUS(status));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int k = 1, json = 0, cmd = 0;
    const char *samples = NULL;
    for (int i = 1; i < argc && !cmd; i++) {
        if (strcmp(argv[i], "--") == 0) cmd = i + 1;
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) k = atoi(argv[++i]);
        else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc) samples = argv[++i];
        else if (strcmp(argv[i], "--json") == 0) json = 1;
        else break;
    }
    if (!cmd || cmd >= argc || k < 1 || k > 100000) {
        fprintf(stderr, "usage: %s [-n K] [--samples FILE] [--json] -- CMD [ARGS...]\n", argv[0]);
        return 2;
    }
    double *wall = hy__malloc(sizeof(double) * (size_t)k);
    long peak = 0;
    if (!wall) return 1;
    FILE *sf = samples ? fopen(samples, "a") : NULL;
    if (samples && !sf) {
        fprintf(stderr, "bench_spawn: cannot open %s\n", samples);
        hy__free(wall);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < k; i++) {
        long rss;
        if (spawn_once(argv + cmd, &wall[i], &rss)) {
            rc = 1;
            break;
        }
        if (rss > peak) peak = rss;
        if (sf) fprintf(sf, "%.3f %ld\n", wall[i], rss);
        if (!json) printf("run %d: wall %.2f ms, peak RSS %.1f MiB\n", i + 1, wall[i], rss / 1024.0);
    }
    if (sf && fclose(sf)) {
        fprintf(stderr, "bench_spawn: write error on %s\n", samples);
        rc = 1;
    }
    if (!rc) {
        qsort(wall, (size_t)k, sizeof *wall, cmp_double);
        double med = (wall[(k - 1) / 2] + wall[k / 2]) / 2;
        if (json)
            printf("{\"runs\": %d, \"median_ms\": %.3f, \"min_ms\": %.3f, \"max_ms\": %.3f, \"peak_rss_kb\": %ld}\n", k,
                   med, wall[0], wall[k - 1], peak);
        else
            printf("%d runs: median %.2f ms, min %.2f ms, max %.2f ms, peak RSS %.1f MiB\n", k, med, wall[0],
                   wall[k - 1], peak / 1024.0);
    }
    hy__free(wall);
    return rc;
}
