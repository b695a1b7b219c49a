/*
 * benchkit: small measurement helpers for bench/bench.py.
 *
 * Compiled at bench time (gcc -O2) into a temporary directory; see docs/bench.md.
 * All times are CLOCK_MONOTONIC nanoseconds. Every wait has a deadline, and on a
 * deadline the process group we spawned is SIGKILLed, so a broken contender cannot
 * hang the benchmark or leak processes.
 *
 * Modes (argument substitution: %N run index, %R ready path, %O result path, %D run dir):
 *   spawnloop COUNT TIMEOUT_MS -- CMD... time COUNT sequential runs of CMD (stdio -> /dev/null):
 *                                        "WALL_NS CPU_NS" per run (CPU: CMD + its reaped children)
 *   child READY [RESULT]                 idle child/daemon: on TERM/INT/USR1 write the monotonic
 *                                        time (text) to RESULT and _exit(0); READY holds its pid
 *   sigbench COUNT SMIN_US SMAX_US DIR -- CMD...
 *                                        spawn CMD (whose child is `child %R %O`), wait ready,
 *                                        kill(CMD, SIGTERM), report child-handler time - send time
 *   markerbench COUNT SMIN_US SMAX_US TIMEOUT_MS LEASE DIR -- CMD...
 *                                        spawn a sidecar CMD (daemon `child %D/ready %D/stopped`),
 *                                        rename a marker to %D/done, report marker -> CMD exit
 *   hwm -- CMD...                        run CMD under ptrace; at its exit-stop print VmHWM etc.
 *   reap N RESULT                        orphan storm workload (run as CMD of a PID 1)
 *   init -- CMD...                       reference PID 1: blocking wait(-1) loop
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static void die(const char *what) {
    perror(what);
    exit(3);
}

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

/* Wait for pid to exit for at most timeout_ms; returns 1 and fills *status and *t_exit on
 * exit, 0 on timeout. */
static int wait_deadline_ru(pid_t pid, int pidfd, int timeout_ms, int *status, int64_t *t_exit,
                            struct rusage *ru) {
    int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000LL;
    for (;;) {
        int64_t left = deadline - now_ns();
        if (left < 0) left = 0;
        struct pollfd p = {pidfd, POLLIN, 0};
        int r = poll(&p, 1, (int)(left / 1000000LL) + 1);
        if (r > 0) {
            if (t_exit) *t_exit = now_ns();
            if (wait4(pid, status, 0, ru) == pid) return 1;
            die("wait4");
        }
        if (r < 0 && errno != EINTR) die("poll");
        if (now_ns() >= deadline) return 0;
    }
}

static int wait_deadline(pid_t pid, int pidfd, int timeout_ms, int *status, int64_t *t_exit) {
    return wait_deadline_ru(pid, pidfd, timeout_ms, status, t_exit, NULL);
}

static char *subst(const char *arg, const char *key, const char *val) {
    const char *p = strstr(arg, key);
    if (!p) return strdup(arg);
    size_t n = strlen(arg) - strlen(key) + strlen(val) + 1;
    char *out = malloc(n);
    size_t pre = (size_t)(p - arg);
    memcpy(out, arg, pre);
    strcpy(out + pre, val);
    strcat(out, p + strlen(key));
    /* recurse for further occurrences */
    char *again = subst(out, key, val);
    free(out);
    return again;
}

/* Build argv for one run, replacing %N %R %O %D. */
static char **build_argv(char **tmpl, int n, const char *idx, const char *ready, const char *out,
                         const char *dir) {
    char **av = calloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        char *a = subst(tmpl[i], "%N", idx ? idx : "");
        char *b = subst(a, "%R", ready ? ready : "");
        char *c = subst(b, "%O", out ? out : "");
        av[i] = subst(c, "%D", dir ? dir : "");
        free(a);
        free(b);
        free(c);
    }
    return av;
}

static void free_argv(char **av) {
    for (char **p = av; *p; p++) free(*p);
    free(av);
}

/* posix_spawn with stdio on /dev/null and (optionally) its own process group. */
static pid_t spawn(char **av, int own_pgrp) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_init(&at);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    short flags = POSIX_SPAWN_SETSIGMASK;
    if (own_pgrp) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&at, 0);
    }
    posix_spawnattr_setflags(&at, flags);
    pid_t pid;
    int e = posix_spawnp(&pid, av[0], &fa, &at, av, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (e) {
        errno = e;
        die(av[0]);
    }
    return pid;
}

static void kill_tree(pid_t pgrp, pid_t extra);

static int find_dashdash(int argc, char **argv, int from) {
    for (int i = from; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) return i;
    fprintf(stderr, "benchkit: missing --\n");
    exit(2);
}

/* ---------------- spawnloop ---------------- */
static int cmd_spawnloop(int argc, char **argv) {
    int count = atoi(argv[2]);
    int timeout_ms = atoi(argv[3]);
    int dd = find_dashdash(argc, argv, 4);
    int n = argc - dd - 1;
    int fails = 0;
    for (int i = 0; i < count; i++) {
        char idx[32];
        snprintf(idx, sizeof idx, "%d", i);
        char **av = build_argv(argv + dd + 1, n, idx, NULL, NULL, NULL);
        int64_t t0 = now_ns();
        pid_t pid = spawn(av, 1);
        int st = 0;
        int64_t t1 = 0;
        int pfd = pidfd_open_(pid);
        if (pfd < 0) die("pidfd_open");
        struct rusage ru;
        memset(&ru, 0, sizeof ru);
        if (!wait_deadline_ru(pid, pfd, timeout_ms, &st, &t1, &ru)) {
            kill_tree(pid, 0);
            waitpid(pid, NULL, 0);
            printf("timeout\n");
            fails++;
            close(pfd);
            free_argv(av);
            continue;
        }
        close(pfd);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fails++;
        /* CPU of CMD and of the children it reaped (user + system), from wait4 */
        long long cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
                        (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
        printf("%lld %lld\n", (long long)(t1 - t0), cpu);
        free_argv(av);
    }
    fprintf(stderr, "failures %d\n", fails);
    return 0;
}

/* ---------------- child / daemon ---------------- */
static int result_fd = -1;

static void on_stop(int sig) {
    int64_t t = now_ns();
    if (result_fd >= 0) {
        char buf[32];
        int i = 31;
        buf[i] = '\n';
        uint64_t v = (uint64_t)t;
        do {
            buf[--i] = (char)('0' + v % 10);
            v /= 10;
        } while (v && i > 0);
        ssize_t w = write(result_fd, buf + i, (size_t)(32 - i));
        (void)w;
    }
    (void)sig;
    _exit(0);
}

static void write_file_atomic(const char *path, const char *text) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(tmp);
    if (write(fd, text, strlen(text)) < 0) die("write");
    close(fd);
    if (rename(tmp, path) < 0) die("rename");
}

static int cmd_child(int argc, char **argv) {
    if (argc < 3) return 2;
    if (argc >= 4 && argv[3][0]) {
        result_fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (result_fd < 0) die(argv[3]);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    /* Report the inherited signal mask: a supervisor that leaves TERM blocked in its child
     * is a bug the harness should show rather than hide. */
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    char text[128];
    snprintf(text, sizeof text, "%d %d\n", (int)getpid(), sigismember(&cur, SIGTERM));
    write_file_atomic(argv[2], text);
    for (;;) pause();
}

/* Wait until path exists (deadline); returns 1 if it appeared. */
static int wait_file(const char *path, int timeout_ms, pid_t watch) {
    int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000LL;
    struct stat sb;
    while (stat(path, &sb) != 0) {
        if (now_ns() > deadline) return 0;
        if (watch > 0 && waitpid(watch, NULL, WNOHANG) == watch) return -1;
        sleep_us(100);
    }
    return 1;
}

/* The ready file of `child`: "PID TERM_BLOCKED". */
static pid_t read_ready(const char *path, int *term_blocked) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int pid = -1, blk = 0;
    if (fscanf(f, "%d %d", &pid, &blk) < 1) pid = -1;
    fclose(f);
    if (term_blocked) *term_blocked = blk;
    return pid;
}

static pid_t read_pid(const char *path) { return read_ready(path, NULL); }

static int64_t read_i64(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long long v = -1;
    if (fscanf(f, "%lld", &v) != 1) v = -1;
    fclose(f);
    return v;
}

/* 'A' alive, 'Z' zombie, 'X' gone */
static char proc_state(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 'X';
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 'X';
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p || !p[1] || !p[2]) return 'X';
    return p[2] == 'Z' || p[2] == 'X' ? 'Z' : 'A';
}

static void kill_tree(pid_t pgrp, pid_t extra) {
    if (pgrp > 0) kill(-pgrp, SIGKILL);
    if (extra > 0 && proc_state(extra) == 'A') kill(extra, SIGKILL);
}

static long rand_between(long lo, long hi) {
    if (hi <= lo) return lo;
    return lo + (long)(random() % (hi - lo));
}

/* ---------------- sigbench ---------------- */
static int cmd_sigbench(int argc, char **argv) {
    int count = atoi(argv[2]);
    long smin = atol(argv[3]), smax = atol(argv[4]);
    const char *dir = argv[5];
    int dd = find_dashdash(argc, argv, 6);
    int n = argc - dd - 1;
    srandom((unsigned)now_ns());
    for (int i = 0; i < count; i++) {
        char ready[4096], out[4096];
        snprintf(ready, sizeof ready, "%s/s%d.ready", dir, i);
        snprintf(out, sizeof out, "%s/s%d.out", dir, i);
        unlink(ready);
        unlink(out);
        char **av = build_argv(argv + dd + 1, n, NULL, ready, out, NULL);
        pid_t pid = spawn(av, 1);
        free_argv(av);
        int pfd = pidfd_open_(pid);
        if (pfd < 0) die("pidfd_open");
        int w = wait_file(ready, 5000, pid);
        if (w != 1) {
            printf("fail %s\n", w == 0 ? "not-ready" : "exited-early");
            kill_tree(pid, read_pid(ready));
            if (w == 0) waitpid(pid, NULL, 0);
            close(pfd);
            continue;
        }
        int blk = 0;
        pid_t child = read_ready(ready, &blk);
        const char *why = blk ? " (child inherited SIGTERM blocked)" : "";
        sleep_us(rand_between(smin, smax));
        int64_t t0 = now_ns();
        kill(pid, SIGTERM);
        int st = 0;
        int64_t t_exit = 0;
        if (!wait_deadline(pid, pfd, 5000, &st, &t_exit)) {
            printf("fail timeout%s\n", why);
            kill_tree(pid, child);
            waitpid(pid, NULL, 0);
            close(pfd);
            continue;
        }
        close(pfd);
        int64_t t1 = read_i64(out);
        if (t1 < 0) {
            printf("fail no-handler status=%d%s\n", st, why);
            kill_tree(0, child);
            continue;
        }
        printf("ok %lld %lld\n", (long long)(t1 - t0), (long long)(t_exit - t0));
    }
    return 0;
}

/* ---------------- markerbench ---------------- */
static const char *MARKER =
    "{\"version\":1,\"exit_code\":0,\"reason\":\"exited\",\"signal\":null,"
    "\"started_at\":\"2025-01-01T00:00:00Z\",\"finished_at\":\"2025-01-01T00:00:01Z\","
    "\"duration_ms\":1000}\n";

static int cmd_markerbench(int argc, char **argv) {
    int count = atoi(argv[2]);
    long smin = atol(argv[3]), smax = atol(argv[4]);
    int timeout_ms = atoi(argv[5]);
    int lease = atoi(argv[6]);
    const char *dir = argv[7];
    int dd = find_dashdash(argc, argv, 8);
    int n = argc - dd - 1;
    srandom((unsigned)(now_ns() ^ getpid()));
    for (int i = 0; i < count; i++) {
        char rdir[4096], ready[4200], done[4200], tmp[4200], leasep[4200], stopped[4200];
        snprintf(rdir, sizeof rdir, "%s/m%d", dir, i);
        if (mkdir(rdir, 0755) < 0 && errno != EEXIST) die(rdir);
        snprintf(ready, sizeof ready, "%s/ready", rdir);
        snprintf(done, sizeof done, "%s/done", rdir);
        snprintf(tmp, sizeof tmp, "%s/.done.tmp", rdir);
        snprintf(leasep, sizeof leasep, "%s/done.lease", rdir);
        snprintf(stopped, sizeof stopped, "%s/stopped", rdir);
        int lfd = -1;
        if (lease) {
            lfd = open(leasep, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
            if (lfd < 0 || flock(lfd, LOCK_EX) < 0) die(leasep);
        }
        char **av = build_argv(argv + dd + 1, n, NULL, NULL, NULL, rdir);
        pid_t pid = spawn(av, 1);
        free_argv(av);
        int pfd = pidfd_open_(pid);
        if (pfd < 0) die("pidfd_open");
        int w = wait_file(ready, 10000, pid);
        if (w != 1) {
            printf("fail %s\n", w == 0 ? "not-ready" : "exited-early");
            kill_tree(pid, read_pid(ready));
            if (w == 0) waitpid(pid, NULL, 0);
            if (lfd >= 0) close(lfd);
            close(pfd);
            continue;
        }
        int blk = 0;
        pid_t daemon = read_ready(ready, &blk);
        sleep_us(rand_between(smin, smax));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, MARKER, strlen(MARKER)) < 0) die(tmp);
        close(fd);
        int64_t t0 = now_ns();
        if (rename(tmp, done) < 0) die("rename");
        if (lfd >= 0) close(lfd); /* like a real main: marker first, then the lease goes */
        int st = 0;
        int64_t t1 = 0;
        if (!wait_deadline(pid, pfd, timeout_ms, &st, &t1)) {
            printf("fail timeout\n");
            kill_tree(pid, daemon);
            waitpid(pid, NULL, 0);
            close(pfd);
            continue;
        }
        close(pfd);
        int64_t td = read_i64(stopped);
        char ds = proc_state(daemon);
        if (ds == 'A') kill(daemon, SIGKILL);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        printf("ok %lld %lld %d %s%s\n", (long long)(t1 - t0), td > 0 ? (long long)(td - t0) : -1LL,
               code, ds == 'A' ? "daemon-alive" : "daemon-stopped", blk ? " term-blocked" : "");
        fflush(stdout);
    }
    return 0;
}

/* ---------------- hwm ---------------- */
static void proc_status_fields(pid_t pid, char *out, size_t outsz) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    out[0] = 0;
    if (!f) return;
    char line[256];
    const char *keys[] = {"VmHWM:", "VmRSS:", "RssAnon:", "RssFile:", "Threads:", "VmPeak:"};
    while (fgets(line, sizeof line, f)) {
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            size_t kl = strlen(keys[k]);
            if (strncmp(line, keys[k], kl) == 0) {
                long v = atol(line + kl);
                char item[64];
                snprintf(item, sizeof item, "%.*s=%ld ", (int)(kl - 1), keys[k], v);
                strncat(out, item, outsz - strlen(out) - 1);
            }
        }
    }
    fclose(f);
}

static int cmd_hwm(int argc, char **argv) {
    int dd = find_dashdash(argc, argv, 2);
    char **av = argv + dd + 1;
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(nul, 2);
        setpgid(0, 0);
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        raise(SIGSTOP);
        execvp(av[0], av);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) die("hwm: initial stop");
    ptrace(PTRACE_SETOPTIONS, pid, NULL,
           (void *)(long)(PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL));
    ptrace(PTRACE_CONT, pid, NULL, NULL);
    printf("pid %d\n", (int)pid);
    fflush(stdout);
    char fields[512] = "";
    for (;;) {
        if (waitpid(pid, &st, __WALL) != pid) {
            if (errno == EINTR) continue;
            die("hwm: waitpid");
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) break;
        if (!WIFSTOPPED(st)) continue;
        int event = st >> 16;
        int sig = WSTOPSIG(st);
        if (event == PTRACE_EVENT_EXIT) {
            proc_status_fields(pid, fields, sizeof fields);
            ptrace(PTRACE_CONT, pid, NULL, NULL);
        } else if (event == PTRACE_EVENT_EXEC) {
            ptrace(PTRACE_CONT, pid, NULL, NULL);
        } else {
            /* signal-delivery-stop: pass the signal on */
            ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig);
        }
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    printf("exit %d %s\n", code, fields);
    return 0;
}

/* ---------------- reap workload ---------------- */
/* One intermediate process forks N grandchildren that block on a shared pipe, then exits: all N
 * are re-parented to PID 1 at once (orphans, as after a double fork). Closing the pipe makes them
 * all exit; we time until every one has been reaped by PID 1 (kill(pid, 0) gives ESRCH). */
static int cmd_reap(int argc, char **argv) {
    if (argc < 4) return 2;
    int n = atoi(argv[2]);
    const char *result = argv[3];
    int gate[2], pids[2];
    if (pipe2(gate, O_CLOEXEC) < 0 || pipe2(pids, O_CLOEXEC) < 0) die("pipe");
    pid_t *gc = calloc((size_t)n, sizeof(pid_t));
    int64_t c0 = now_ns();
    pid_t mid = fork();
    if (mid < 0) die("fork");
    if (mid == 0) {
        close(pids[0]);
        for (int i = 0; i < n; i++) {
            pid_t g = fork();
            if (g < 0) _exit(1);
            if (g == 0) {
                char b;
                close(gate[1]);
                close(pids[1]);
                while (read(gate[0], &b, 1) < 0 && errno == EINTR) {
                }
                _exit(0);
            }
            gc[i] = g;
        }
        const char *p = (const char *)gc;
        size_t left = (size_t)n * sizeof(pid_t);
        while (left) {
            ssize_t w = write(pids[1], p, left);
            if (w < 0) {
                if (errno == EINTR) continue;
                _exit(1);
            }
            p += w;
            left -= (size_t)w;
        }
        _exit(0);
    }
    close(pids[1]);
    size_t got = 0, want = (size_t)n * sizeof(pid_t);
    while (got < want) {
        ssize_t r = read(pids[0], (char *)gc + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) die("reap: reading pids");
        got += (size_t)r;
    }
    int st;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
    }
    int64_t c1 = now_ns();
    /* all grandchildren are now orphans blocked on the gate, children of PID 1 */
    int alive = n;
    int64_t t0 = now_ns();
    close(gate[1]);
    int64_t deadline = t0 + 60LL * 1000000000LL;
    while (alive > 0 && now_ns() < deadline) {
        int k = 0;
        for (int i = 0; i < alive; i++)
            if (kill(gc[i], 0) == 0 || errno != ESRCH) gc[k++] = gc[i];
        alive = k;
        if (alive) sleep_us(100);
    }
    int64_t t1 = now_ns();
    FILE *f = fopen(result, "w");
    if (!f) die(result);
    fprintf(f, "%d %lld %lld %d\n", n, (long long)(c1 - c0), (long long)(t1 - t0), alive);
    fclose(f);
    return alive ? 1 : 0;
}

/* ---------------- reference init ---------------- */
static int cmd_init(int argc, char **argv) {
    int dd = find_dashdash(argc, argv, 2);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        execvp(argv[dd + 1], argv + dd + 1);
        _exit(127);
    }
    for (;;) {
        int st;
        pid_t r = wait(&st);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 && errno == ECHILD) return 125;
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: benchkit MODE ...\n");
        return 2;
    }
    const char *m = argv[1];
    if (!strcmp(m, "spawnloop") && argc > 4) return cmd_spawnloop(argc, argv);
    if (!strcmp(m, "child")) return cmd_child(argc, argv);
    if (!strcmp(m, "sigbench") && argc > 6) return cmd_sigbench(argc, argv);
    if (!strcmp(m, "markerbench") && argc > 8) return cmd_markerbench(argc, argv);
    if (!strcmp(m, "hwm")) return cmd_hwm(argc, argv);
    if (!strcmp(m, "reap")) return cmd_reap(argc, argv);
    if (!strcmp(m, "init")) return cmd_init(argc, argv);
    fprintf(stderr, "benchkit: bad mode or arguments: %s\n", m);
    return 2;
}
