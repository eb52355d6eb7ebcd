/* The test runner itself (hy_test.h): small child suites run in a forked process, and their
 * exit status and summary line are checked. 77 is CTest's SKIP_RETURN_CODE for every test
 * (CMakeLists.txt), so a suite that only skipped shows as "Not Run (Skipped)", and one that
 * failed must never exit 77. */
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hy_test.h"

static void c_pass(void) { ASSERT_EQ(1 + 1, 2); }
static void c_fail(void) { ASSERT_EQ(1 + 1, 3); }
static void c_skip(void) { HY_SKIP("not here (%d)", 42); }
static void c_fail_then_skip(void) {
    hy_test_failed_flag = 1; // as a failed ASSERT in a helper that did not stop the case
    HY_SKIP("too late");
}
static void c_asset(void) {
    // the assets folder is missing in the child: hy_test_asset leaves the case as skipped
    const char *p = hy_test_asset("weights/yolov8n.pt");
    printf("  reached with %s\n", p); // must not be printed
    hy_test_failed_flag = 1;
}

/* Runs cases in a child with stdout and stderr to a file; returns its exit status (-1 if it did not
 * exit) and leaves its output in out. */
static int run_child(const hy_test_case *cases, int n, char *out, size_t cap) {
    const char *path = hy_test_tmp("child.out");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(100);
        setenv("HY_ASSETS", "/nonexistent/hy_test_assets", 1);
        char *argv[] = {"child", NULL};
        int rc = hy_test_run(cases, n, 1, argv);
        fflush(NULL);
        _exit(rc);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return -1;
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        size_t k = fread(out, 1, cap - 1, f);
        out[k] = 0;
        fclose(f);
    }
    printf("  child exit %d: %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

HY_TEST(all_skipped_exits_77) {
    char out[4096];
    hy_test_case cs[] = {{"a", c_skip}, {"b", c_asset}};
    ASSERT_EQ(run_child(cs, 2, out, sizeof out), 77);
    ASSERT_CONTAINS(out, "skip: not here (42)");
    ASSERT_CONTAINS(out, "shared assets not found at '/nonexistent/hy_test_assets'");
    ASSERT_CONTAINS(out, "skip a\n");
    ASSERT_CONTAINS(out, "skip b\n");
    ASSERT_TRUE(strstr(out, "reached") == NULL);
    ASSERT_CONTAINS(out, "0 passed, 0 failed, 2 skipped\n");
}

HY_TEST(some_skipped_passes_and_counts) {
    char out[4096];
    hy_test_case cs[] = {{"a", c_pass}, {"b", c_skip}, {"c", c_asset}, {"d", c_pass}};
    ASSERT_EQ(run_child(cs, 4, out, sizeof out), 0);
    ASSERT_CONTAINS(out, "ok   a\n");
    ASSERT_CONTAINS(out, "skip b\n");
    ASSERT_CONTAINS(out, "skip c\n");
    ASSERT_CONTAINS(out, "ok   d\n");
    ASSERT_CONTAINS(out, "2 passed, 0 failed, 2 skipped\n");
}

HY_TEST(failure_is_not_a_skip) {
    char out[4096];
    hy_test_case only_fail[] = {{"f", c_fail}};
    int rc = run_child(only_fail, 1, out, sizeof out);
    ASSERT_TRUE(rc != 0 && rc != 77);
    ASSERT_CONTAINS(out, "FAIL f\n");
    ASSERT_CONTAINS(out, "ASSERT_EQ(1 + 1, 3): 2 != 3");
    hy_test_case skip_and_fail[] = {{"s", c_skip}, {"f", c_fail}, {"x", c_fail_then_skip}};
    rc = run_child(skip_and_fail, 3, out, sizeof out);
    ASSERT_TRUE(rc != 0 && rc != 77);
    ASSERT_CONTAINS(out, "FAIL x\n");
    ASSERT_CONTAINS(out, "0 passed, 2 failed, 1 skipped\n");
}

HY_TEST(all_passed_exits_0) {
    char out[4096];
    hy_test_case cs[] = {{"a", c_pass}};
    ASSERT_EQ(run_child(cs, 1, out, sizeof out), 0);
    ASSERT_CONTAINS(out, "1 passed, 0 failed\n");
    ASSERT_TRUE(strstr(out, "skipped") == NULL);
}

HY_TEST_MAIN()
