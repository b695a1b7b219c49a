/*
 * benchkit: small measurement helpers for bench/bench.py.
 *
 * Compiled at bench time (gcc -O2) into a temporary directory; see docs/bench.md.
 * All times are CLOCK_MONOTONIC nanoseconds. Every wait has a deadline, and on a
 * deadline the process group we spawned is SIGKILLed, so a broken contender cannot
 * hang the benchmark or leak processes.
 *
 * Modes (argument substitution: %N run index, %R ready path, %O result path, %D run dir,
 * %P port):
 *   spawnloop COUNT TIMEOUT_MS -- CMD... time COUNT sequential runs of CMD (stdio -> /dev/null):
 *                                        "WALL_NS CPU_NS" per run (CPU: CMD + its reaped children)
 *   child READY [RESULT]                 idle child/daemon: on TERM/INT/USR1 write "T_HANDLER
 *                                        T_EXIT" (when the handler ran, when it was about to exit)
 *                                        to RESULT and _exit(0); READY holds its pid
 *   sigbench COUNT SMIN_US SMAX_US DIR -- CMD...
 *                                        spawn CMD (whose child is `child %R %O`; %N is the
 *                                        run's index), wait ready,
 *                                        kill(CMD, SIGTERM), report child-handler time - send time
 *   markerbench COUNT SMIN_US SMAX_US TIMEOUT_MS LEASE DIR -- CMD... [++ CMD2...]
 *                                        spawn a sidecar CMD (daemon `child %D/ready %D/stopped`),
 *                                        rename a marker to %D/done, report marker -> CMD exit.
 *                                        LEASE 0: no lease file; 1: hold %D/done.lease, release
 *                                        it right after the rename; 2: hold it and release it
 *                                        without any marker (the main vanished). CMD2 (chain
 *                                        stops) starts first; its daemon writes %D/ready2
 *   waiter inotify|inotify-held|dnotify|lease DONE -- CMD...
 *                                        reference sidecar: run CMD in its own group, wait for DONE
 *                                        (inotify on its directory, or a blocked shared flock of
 *                                        DONE.lease), SIGTERM the group, reap CMD, exit;
 *                                        inotify-held: a holder process keeps the inotify instance
 *                                        open past our exit
 *   stamp OUT                            write the monotonic time at entry to OUT (atomically)
 *   gatebench COUNT DMIN_US DMAX_US KIND NETNS DIR -- CMD... [++ CMD2...]
 *                                        readiness gates: spawn CMD (whose command is
 *                                        `stamp %D/started`), after a random delay make the target
 *                                        ready (KIND tcp|http: listen on 127.0.0.1:%P, unix: listen
 *                                        on %D/sock, file: rename %D/ready.flag into place), report
 *                                        ready -> stamp and the TCP connects made meanwhile (the
 *                                        netns's ActiveOpens; NETNS 1 = a network namespace of our
 *                                        own). CMD2 (a sidecar) starts first, is TERMed at the end
 *   deathbench COUNT SMIN_US SMAX_US MODE WINDOW_MS DIR -- SIDECAR... ++ MAIN...
 *                                        SIDECAR's daemon is `child %D/dready`, MAIN's command
 *                                        `child %D/cready %D/cstopped`; SIGKILL the daemon (MODE
 *                                        daemon) or the sidecar supervisor (MODE sidecar), report
 *                                        kill -> MAIN's command signalled; WINDOW_MS: how long to
 *                                        wait for that
 *   hwm -- CMD...                        run CMD under ptrace; at its exit-stop print VmHWM etc.
 *   reap N RESULT                        orphan storm workload (run as CMD of a PID 1)
 *   zombies N RESULT                     N orphans already zombies handed to PID 1 at once: the
 *                                        reaper's own speed (run as CMD of a PID 1)
 *   init -- CMD...                       reference PID 1: blocking wait(-1) loop
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
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

/* The port of the current run (gatebench), substituted for %P. */
static char g_port[16] = "";

/* Build argv for one run, replacing %N %R %O %D %P. */
static char **build_argv(char **tmpl, int n, const char *idx, const char *ready, const char *out,
                         const char *dir) {
    char **av = calloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        char *a = subst(tmpl[i], "%N", idx ? idx : "");
        char *b = subst(a, "%R", ready ? ready : "");
        char *c = subst(b, "%O", out ? out : "");
        char *d = subst(c, "%D", dir ? dir : "");
        av[i] = subst(d, "%P", g_port);
        free(d);
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

/* Decimal digits of v ending at end (exclusive); returns the start. Async-signal-safe. */
static char *fmt_u64(char *end, uint64_t v) {
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

/* "T_HANDLER T_EXIT\n": when the handler ran, and when it was about to _exit (after formatting),
 * so the harness can tell the supervisor's own exit time from the child's. */
static void on_stop(int sig) {
    int64_t t = now_ns();
    if (result_fd >= 0) {
        char buf[64];
        char *end = buf + sizeof buf;
        *--end = '\n';
        char *p = fmt_u64(end, (uint64_t)t);
        int64_t t2 = now_ns();
        char tail[32];
        char *q = fmt_u64(tail + sizeof tail, (uint64_t)t2);
        size_t ql = (size_t)(tail + sizeof tail - q);
        /* assemble "t1 t2\n" in front of the newline */
        char out[80];
        size_t pl = (size_t)(buf + sizeof buf - p); /* digits + newline */
        memcpy(out, p, pl - 1);
        out[pl - 1] = ' ';
        memcpy(out + pl, q, ql);
        out[pl + ql] = '\n';
        ssize_t w = write(result_fd, out, pl + ql + 1);
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

/* The two numbers of a `child` result file ("T_HANDLER T_EXIT"); 0 if absent. */
static int read_two(const char *path, int64_t *a, int64_t *b) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long long x = -1, y = -1;
    int n = fscanf(f, "%lld %lld", &x, &y);
    fclose(f);
    *a = x;
    *b = y;
    return n;
}

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
        char idx[32];
        snprintf(idx, sizeof idx, "%d", i);
        char **av = build_argv(argv + dd + 1, n, idx, ready, out, NULL);
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
        int64_t t1 = -1, t2 = -1;
        read_two(out, &t1, &t2);
        if (t1 < 0) {
            printf("fail no-handler status=%d%s\n", st, why);
            kill_tree(0, child);
            continue;
        }
        /* handler latency, SIGTERM -> X exited, child about to _exit -> X exited */
        printf("ok %lld %lld %lld\n", (long long)(t1 - t0), (long long)(t_exit - t0),
               t2 > 0 ? (long long)(t_exit - t2) : -1LL);
    }
    return 0;
}

/* ---------------- markerbench ---------------- */
static const char *MARKER =
    "{\"version\":1,\"exit_code\":0,\"reason\":\"exited\",\"signal\":null,"
    "\"started_at\":\"2025-01-01T00:00:00Z\",\"finished_at\":\"2025-01-01T00:00:01Z\","
    "\"duration_ms\":1000}\n";

/* DIR/<tag><i>, created: the directory of one run. */
static void run_dir(char *out, size_t n, const char *dir, char tag, int i) {
    snprintf(out, n, "%s/%c%d", dir, tag, i);
    if (mkdir(out, 0755) < 0 && errno != EEXIST) die(out);
}

/* A file of a run's directory. */
#define IN_RUN(buf, rdir, name) snprintf(buf, sizeof buf, "%s/%s", rdir, name)

/* Splits "-- CMD... [++ CMD2...]": *n1 args of CMD from argv[dd+1]; CMD2 (or NULL) and *n2. */
static void split_two(int argc, char **argv, int dd, int *n1, char ***cmd2, int *n2) {
    *cmd2 = NULL;
    *n2 = 0;
    *n1 = argc - dd - 1;
    for (int i = dd + 1; i < argc; i++)
        if (strcmp(argv[i], "++") == 0) {
            *n1 = i - dd - 1;
            *cmd2 = argv + i + 1;
            *n2 = argc - i - 1;
            break;
        }
}

/* Wait for a process to exit within timeout_ms, SIGKILL its group (and extra) otherwise. */
static int wait_or_kill(pid_t pid, int pfd, int timeout_ms, int *st, int64_t *t, pid_t extra) {
    if (wait_deadline(pid, pfd, timeout_ms, st, t)) return 1;
    kill_tree(pid, extra);
    waitpid(pid, st, 0);
    return 0;
}

static int cmd_markerbench(int argc, char **argv) {
    int count = atoi(argv[2]);
    long smin = atol(argv[3]), smax = atol(argv[4]);
    int timeout_ms = atoi(argv[5]);
    int lease = atoi(argv[6]);
    const char *dir = argv[7];
    int dd = find_dashdash(argc, argv, 8);
    int n, n2;
    char **cmd2;
    split_two(argc, argv, dd, &n, &cmd2, &n2);
    srandom((unsigned)(now_ns() ^ getpid()));
    for (int i = 0; i < count; i++) {
        char rdir[4096], ready[4200], ready2[4200], done[4200], tmp[4200], leasep[4200],
            stopped[4200];
        run_dir(rdir, sizeof rdir, dir, 'm', i);
        IN_RUN(ready, rdir, "ready");
        IN_RUN(ready2, rdir, "ready2");
        IN_RUN(done, rdir, "done");
        IN_RUN(tmp, rdir, ".done.tmp");
        IN_RUN(leasep, rdir, "done.lease");
        IN_RUN(stopped, rdir, "stopped");
        int lfd = -1;
        if (lease) {
            lfd = open(leasep, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
            if (lfd < 0 || flock(lfd, LOCK_EX) < 0) die(leasep);
        }
        /* chain: the first sidecar (CMD2) starts first; CMD (measured) waits on its marker */
        pid_t pid2 = -1;
        int pfd2 = -1;
        if (cmd2) {
            char **av2 = build_argv(cmd2, n2, NULL, NULL, NULL, rdir);
            pid2 = spawn(av2, 1);
            free_argv(av2);
            pfd2 = pidfd_open_(pid2);
            if (pfd2 < 0) die("pidfd_open");
        }
        char **av = build_argv(argv + dd + 1, n, NULL, NULL, NULL, rdir);
        pid_t pid = spawn(av, 1);
        free_argv(av);
        int pfd = pidfd_open_(pid);
        if (pfd < 0) die("pidfd_open");
        int w = wait_file(ready, 10000, pid);
        if (w == 1 && cmd2) w = wait_file(ready2, 10000, pid2);
        if (w != 1) {
            printf("fail %s\n", w == 0 ? "not-ready" : "exited-early");
            kill_tree(pid, read_pid(ready));
            waitpid(pid, NULL, 0);
            if (cmd2) {
                kill_tree(pid2, read_pid(ready2));
                waitpid(pid2, NULL, 0);
                close(pfd2);
            }
            if (lfd >= 0) close(lfd);
            close(pfd);
            continue;
        }
        int blk = 0;
        pid_t daemon = read_ready(ready, &blk);
        pid_t daemon2 = cmd2 ? read_pid(ready2) : -1;
        sleep_us(rand_between(smin, smax));
        int64_t t0;
        if (lease == 2) {
            t0 = now_ns(); /* the main vanished: its lease goes, no marker ever comes */
            close(lfd);
        } else {
            int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || write(fd, MARKER, strlen(MARKER)) < 0) die(tmp);
            close(fd);
            t0 = now_ns();
            if (rename(tmp, done) < 0) die("rename");
            if (lfd >= 0) close(lfd); /* like a real main: marker first, then the lease goes */
        }
        int st = 0, st2 = 0;
        int64_t t1 = 0, t2 = 0;
        int ok2 = 1;
        if (cmd2) {
            ok2 = wait_or_kill(pid2, pfd2, timeout_ms, &st2, &t2, daemon2);
            close(pfd2);
        }
        if (!wait_or_kill(pid, pfd, timeout_ms, &st, &t1, daemon) || !ok2) {
            printf("fail timeout%s\n", ok2 ? "" : " (first sidecar)");
            if (cmd2 && ok2) kill_tree(0, daemon2);
            close(pfd);
            continue;
        }
        close(pfd);
        int64_t td = read_i64(stopped);
        char ds = proc_state(daemon);
        if (ds == 'A') kill(daemon, SIGKILL);
        if (cmd2 && proc_state(daemon2) == 'A') {
            kill(daemon2, SIGKILL);
            ds = 'A';
        }
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        /* marker -> CMD exited, -> CMD's daemon signalled, CMD's code, daemons, [-> CMD2 exited] */
        printf("ok %lld %lld %d %s%s", (long long)(t1 - t0), td > 0 ? (long long)(td - t0) : -1LL,
               code, ds == 'A' ? "daemon-alive" : "daemon-stopped", blk ? " term-blocked" : "");
        if (cmd2) printf(" first-exited %lld", (long long)(t2 - t0));
        printf("\n");
        fflush(stdout);
    }
    return 0;
}

/* ---------------- waiter (reference sidecar) ---------------- */
/* The least a sidecar can do on each mechanism: block until the marker appears (inotify on its
 * directory) or the lease is released (a shared flock that blocks), then stop its daemon and
 * exit. No logging, no parsing, no checks: the physical limit the supervisor is compared to. */
static int cmd_waiter(int argc, char **argv) {
    if (argc < 5) return 2;
    int lease = strcmp(argv[2], "lease") == 0;
    /* inotify-held: a holder process shares the inotify instance, so our exit does not destroy
     * it: closing the last reference of an instance with watches waits for an SRCU grace period
     * (fsnotify_destroy_group -> fsnotify_wait_marks_destroyed), 10-20 ms, and an exiting
     * process closes its files before its parent is told. The holder pays that later. */
    int held = strcmp(argv[2], "inotify-held") == 0;
    /* dnotify: the same fsnotify events through the directory's fd and a real-time signal; its
     * marks belong to one global group that is never destroyed, so closing the fd (at exit)
     * does not wait for a grace period */
    int dn = strcmp(argv[2], "dnotify") == 0;
    const char *done = argv[3];
    int dd = find_dashdash(argc, argv, 4);
    char dcopy[4096], bcopy[4096];
    snprintf(dcopy, sizeof dcopy, "%s", done);
    snprintf(bcopy, sizeof bcopy, "%s", done);
    const char *dname = dirname(dcopy), *bname = basename(bcopy);
    int ifd = -1, lfd = -1;
    if (lease) {
        char lp[4200];
        snprintf(lp, sizeof lp, "%s.lease", done);
        lfd = open(lp, O_RDONLY | O_CLOEXEC);
        if (lfd < 0) die(lp);
    } else if (dn) {
        sigset_t rt;
        sigemptyset(&rt);
        sigaddset(&rt, SIGRTMIN + 1);
        sigprocmask(SIG_BLOCK, &rt, NULL);
        ifd = open(dname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ifd < 0 || fcntl(ifd, F_SETSIG, SIGRTMIN + 1) < 0 ||
            fcntl(ifd, F_NOTIFY, DN_CREATE | DN_RENAME | DN_MULTISHOT) < 0)
            die("dnotify");
    } else {
        ifd = inotify_init1(IN_CLOEXEC);
        if (ifd < 0 || inotify_add_watch(ifd, dname, IN_MOVED_TO | IN_CREATE) < 0) die("inotify");
    }
    if (held) {
        int gate[2];
        if (pipe2(gate, O_CLOEXEC) < 0) die("pipe");
        pid_t h = fork();
        if (h < 0) die("fork");
        if (h == 0) { /* keeps ifd open until the waiter is gone (EOF on the gate) */
            char b;
            close(gate[1]);
            while (read(gate[0], &b, 1) < 0 && errno == EINTR) {
            }
            _exit(0);
        }
        close(gate[0]); /* gate[1] stays open (close-on-exec) until we exit */
    }
    pid_t pid = spawn(argv + dd + 1, 1);
    struct stat sb;
    if (lease) {
        while (flock(lfd, LOCK_SH) < 0)
            if (errno != EINTR) die("flock");
    } else if (dn) {
        sigset_t rt;
        sigemptyset(&rt);
        sigaddset(&rt, SIGRTMIN + 1);
        while (stat(done, &sb) != 0) sigwaitinfo(&rt, NULL);
    } else {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        while (stat(done, &sb) != 0) {
            ssize_t r = read(ifd, buf, sizeof buf);
            if (r < 0 && errno != EINTR) die("inotify read");
            int hit = 0;
            for (char *p = buf; r > 0 && p < buf + r;) {
                struct inotify_event *ev = (struct inotify_event *)p;
                if (ev->len && strcmp(ev->name, bname) == 0) hit = 1;
                p += sizeof *ev + ev->len;
            }
            if (hit) break;
        }
    }
    kill(-pid, SIGTERM);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return 0;
}

/* ---------------- stamp ---------------- */
static int cmd_stamp(int argc, char **argv) {
    int64_t t = now_ns();
    if (argc < 3) return 2;
    char text[32];
    snprintf(text, sizeof text, "%lld\n", (long long)t);
    write_file_atomic(argv[2], text);
    return 0;
}

/* ---------------- gatebench ---------------- */
/* Bring up lo in a fresh network namespace: each lane of runs gets its own ports and its own
 * TCP counters, so connects counted are this lane's only. */
static void own_netns(void) {
    if (unshare(CLONE_NEWNET) < 0) die("unshare(CLONE_NEWNET)");
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die("SIOCGIFFLAGS lo");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die("SIOCSIFFLAGS lo");
    close(s);
}

/* Tcp ActiveOpens of this network namespace: every connect() that sent a SYN. */
static long long tcp_active_opens(void) {
    FILE *f = fopen("/proc/net/snmp", "r");
    if (!f) return -1;
    char hdr[1024], val[1024];
    long long out = -1;
    while (fgets(hdr, sizeof hdr, f)) {
        if (strncmp(hdr, "Tcp:", 4) != 0) continue;
        if (!fgets(val, sizeof val, f)) break;
        char *hs, *vs, *h = strtok_r(hdr, " \n", &hs), *v = strtok_r(val, " \n", &vs);
        while (h && v) {
            if (strcmp(h, "ActiveOpens") == 0) out = atoll(v);
            h = strtok_r(NULL, " \n", &hs);
            v = strtok_r(NULL, " \n", &vs);
        }
        break;
    }
    fclose(f);
    return out;
}

static int listen_on(int kind_unix, const char *path, int port, int64_t *t0) {
    int s;
    if (kind_unix) {
        s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_un a;
        memset(&a, 0, sizeof a);
        a.sun_family = AF_UNIX;
        if (strlen(path) >= sizeof a.sun_path) {
            fprintf(stderr, "benchkit: socket path too long: %s\n", path);
            exit(2);
        }
        memcpy(a.sun_path, path, strlen(path) + 1);
        unlink(path);
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind unix");
    } else {
        s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind tcp");
    }
    /* "starts listening": connects before this are refused, after it they are accepted */
    *t0 = now_ns();
    if (listen(s, 128) < 0) die("listen");
    return s;
}

/* Accept what is pending; for http, answer each request with 200 and close. */
static void serve(int ls, int http) {
    for (;;) {
        int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) return;
        if (http) {
            char buf[2048];
            struct pollfd p = {c, POLLIN, 0};
            /* the request comes right after the connect; do not wait long for a silent client */
            if (poll(&p, 1, 1000) > 0 && read(c, buf, sizeof buf) > 0) {
                static const char ok[] =
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
                ssize_t w = write(c, ok, sizeof ok - 1);
                (void)w;
            }
        }
        close(c);
    }
}

static int cmd_gatebench(int argc, char **argv) {
    int count = atoi(argv[2]);
    long dmin = atol(argv[3]), dmax = atol(argv[4]);
    const char *kind = argv[5];
    int netns = atoi(argv[6]);
    const char *dir = argv[7];
    int dd = find_dashdash(argc, argv, 8);
    int n, n2;
    char **cmd2;
    split_two(argc, argv, dd, &n, &cmd2, &n2);
    int is_unix = !strcmp(kind, "unix"), is_http = !strcmp(kind, "http"),
        is_file = !strcmp(kind, "file");
    if (netns) own_netns();
    srandom((unsigned)(now_ns() ^ getpid()));
    for (int i = 0; i < count; i++) {
        char rdir[4096], started[4200], sock[4200], flag[4200], ftmp[4200], dready[4200];
        run_dir(rdir, sizeof rdir, dir, 'g', i);
        IN_RUN(started, rdir, "started");
        IN_RUN(sock, rdir, "sock");
        IN_RUN(flag, rdir, "ready.flag");
        IN_RUN(ftmp, rdir, ".ready.tmp");
        IN_RUN(dready, rdir, "dready");
        int port = 20000 + i % 20000;
        snprintf(g_port, sizeof g_port, "%d", port);
        long long c0 = tcp_active_opens();
        pid_t pid2 = -1;
        if (cmd2) { /* a sidecar in front: ready-when the port, writing a ready file */
            char **av2 = build_argv(cmd2, n2, NULL, NULL, NULL, rdir);
            pid2 = spawn(av2, 1);
            free_argv(av2);
        }
        char **av = build_argv(argv + dd + 1, n, NULL, NULL, NULL, rdir);
        int64_t ts = now_ns();
        pid_t pid = spawn(av, 1);
        free_argv(av);
        int pfd = pidfd_open_(pid);
        if (pfd < 0) die("pidfd_open");
        /* the dependency takes a while to come up; the contender polls or watches meanwhile */
        sleep_us(rand_between(dmin, dmax));
        int st = 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            printf("fail exited-early status=%d\n", st);
            close(pfd);
            if (pid2 > 0) {
                kill_tree(pid2, read_pid(dready));
                waitpid(pid2, NULL, 0);
            }
            continue;
        }
        int64_t t0 = 0;
        int ls = -1;
        if (is_file) {
            int fd = open(ftmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || write(fd, "ready\n", 6) < 0) die(ftmp);
            close(fd);
            t0 = now_ns();
            if (rename(ftmp, flag) < 0) die("rename");
        } else {
            ls = listen_on(is_unix, sock, port, &t0);
        }
        /* serve until the contender has exited (its command is `stamp`, which exits at once) */
        int64_t deadline = now_ns() + 10000000000LL, t_exit = 0;
        int done = 0;
        while (!done && now_ns() < deadline) {
            struct pollfd p[2] = {{pfd, POLLIN, 0}, {ls, POLLIN, 0}};
            int r = poll(p, ls >= 0 ? 2 : 1, 100);
            if (r < 0 && errno != EINTR) die("poll");
            if (ls >= 0 && (p[1].revents & POLLIN)) serve(ls, is_http);
            if (p[0].revents & POLLIN) {
                t_exit = now_ns();
                waitpid(pid, &st, 0);
                done = 1;
            }
        }
        close(pfd);
        long long c1 = tcp_active_opens();
        if (!done) {
            printf("fail timeout\n");
            kill_tree(pid, 0);
            waitpid(pid, NULL, 0);
        }
        if (ls >= 0) close(ls);
        if (pid2 > 0) { /* stop the sidecar the way a pod's end would, then make sure */
            kill(pid2, SIGTERM);
            int pf2 = pidfd_open_(pid2), s2;
            if (pf2 < 0 || !wait_deadline(pid2, pf2, 5000, &s2, NULL)) {
                kill_tree(pid2, read_pid(dready));
                waitpid(pid2, NULL, 0);
            }
            if (pf2 >= 0) close(pf2);
        }
        if (!done) continue;
        int64_t t1 = read_i64(started);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (t1 < 0) {
            printf("fail no-start code=%d\n", code);
            continue;
        }
        /* ready -> CMD started, connects while waiting, contender start -> CMD started, code */
        printf("ok %lld %lld %lld %d\n", (long long)(t1 - t0),
               c0 >= 0 && c1 >= 0 ? c1 - c0 : -1LL, (long long)(t1 - ts), code);
        (void)t_exit;
        fflush(stdout);
    }
    return 0;
}

/* ---------------- deathbench ---------------- */
static int cmd_deathbench(int argc, char **argv) {
    int count = atoi(argv[2]);
    long smin = atol(argv[3]), smax = atol(argv[4]);
    int kill_sidecar = !strcmp(argv[5], "sidecar");
    int window_ms = atoi(argv[6]);
    const char *dir = argv[7];
    int dd = find_dashdash(argc, argv, 8);
    int n, n2;
    char **cmd2;
    split_two(argc, argv, dd, &n, &cmd2, &n2);
    if (!cmd2) {
        fprintf(stderr, "deathbench: -- SIDECAR... ++ MAIN...\n");
        return 2;
    }
    srandom((unsigned)(now_ns() ^ getpid()));
    for (int i = 0; i < count; i++) {
        char rdir[4096], dready[4200], cready[4200], cstopped[4200], lease[4200];
        run_dir(rdir, sizeof rdir, dir, 'd', i);
        IN_RUN(dready, rdir, "dready");
        IN_RUN(cready, rdir, "cready");
        IN_RUN(cstopped, rdir, "cstopped");
        IN_RUN(lease, rdir, "side.done.lease");
        char **av = build_argv(argv + dd + 1, n, NULL, NULL, NULL, rdir);
        pid_t side = spawn(av, 1);
        free_argv(av);
        int spfd = pidfd_open_(side);
        int w = wait_file(dready, 10000, side);
        if (w == 1) w = wait_file(lease, 10000, side);
        pid_t daemon = read_pid(dready);
        pid_t mainp = -1;
        int mpfd = -1;
        if (w == 1) {
            av = build_argv(cmd2, n2, NULL, NULL, NULL, rdir);
            mainp = spawn(av, 1);
            free_argv(av);
            mpfd = pidfd_open_(mainp);
            w = wait_file(cready, 10000, mainp);
        }
        pid_t cmd = read_pid(cready);
        if (w != 1) {
            printf("fail %s\n", w == 0 ? "not-ready" : "exited-early");
            goto cleanup;
        }
        /* let the main arm its watches on the sidecar's marker and lease after CMD started */
        sleep_us(rand_between(smin, smax));
        int64_t t0 = now_ns();
        kill(kill_sidecar ? side : daemon, SIGKILL);
        int st = 0;
        int64_t t_main = 0;
        if (!wait_deadline(mainp, mpfd, window_ms, &st, &t_main)) {
            /* not noticed within the window: the job would run on until its own deadline */
            int alive = proc_state(cmd) == 'A';
            printf("unnoticed %d %s\n", window_ms, alive ? "cmd-running" : "cmd-gone");
            goto cleanup;
        }
        mainp = -1;
        int64_t t1 = read_i64(cstopped);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        /* kill -> CMD's handler ran, kill -> main exited, main's code */
        printf("ok %lld %lld %d\n", t1 > 0 ? (long long)(t1 - t0) : -1LL, (long long)(t_main - t0),
               code);
        fflush(stdout);
    cleanup:
        if (mainp > 0) {
            kill_tree(mainp, cmd);
            waitpid(mainp, NULL, 0);
        }
        if (mpfd >= 0) close(mpfd);
        int s2;
        if (!kill_sidecar || proc_state(side) == 'A') kill(side, SIGTERM);
        if (spfd < 0 || !wait_deadline(side, spfd, 5000, &s2, NULL)) {
            kill_tree(side, daemon);
            waitpid(side, NULL, 0);
        }
        if (spfd >= 0) close(spfd);
        /* a SIGKILLed sidecar supervisor leaves its daemon behind (in a pod, the PID namespace
         * would take it down) */
        if (daemon > 0 && proc_state(daemon) == 'A') kill(daemon, SIGKILL);
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

/* ---------------- reap workloads ---------------- */
/* One intermediate process forks N children of its own and hands us their pids; when it exits,
 * the kernel re-parents all N to PID 1 at once (orphans, as after a double fork).
 * `reap`: it exits at once, the N block on a shared pipe (the gate), and closing the gate makes
 * all N exit together: the kernel's N exits are part of what is timed.
 * `zombies`: the N exit as soon as they are forked and stay zombies (it never waits for them);
 * once all have exited, closing the gate makes it exit, and PID 1 has nothing left to do but reap
 * N zombies: the reaper's own speed.
 * Then we watch the orphans one at a time, in the order they were forked (about the order they
 * exit): a pid already gone costs one kill(); only a pid still there costs a 100 us sleep.
 * Rescanning every pid between sleeps would keep a core busy with up to N kill()s per pass, and
 * that measures the scan's fight for the CPU with the reaper more than the reaper. Nothing else
 * forks in this PID namespace, so a reaped pid is not reused meanwhile. */
static void await_gate(int fd) {
    char b;
    while (read(fd, &b, 1) < 0 && errno == EINTR) {
    }
}

static int orphan_storm(int argc, char **argv, int zombies) {
    if (argc < 4) return 2;
    int n = atoi(argv[2]);
    const char *result = argv[3];
    int gate[2], pids[2], done[2];
    if (pipe2(gate, O_CLOEXEC) < 0 || pipe2(pids, O_CLOEXEC) < 0 || pipe2(done, O_CLOEXEC) < 0)
        die("pipe");
    pid_t *gc = calloc((size_t)n, sizeof(pid_t));
    int64_t c0 = now_ns();
    pid_t mid = fork();
    if (mid < 0) die("fork");
    if (mid == 0) {
        close(pids[0]);
        close(gate[1]);
        close(done[0]);
        for (int i = 0; i < n; i++) {
            pid_t g = fork();
            if (g < 0) _exit(1);
            if (g == 0) {
                if (zombies) _exit(0); /* its copy of done[1] closes as it exits */
                close(pids[1]);
                close(done[1]);
                await_gate(gate[0]);
                _exit(0);
            }
            gc[i] = g;
        }
        close(done[1]);
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
        if (zombies) await_gate(gate[0]);
        _exit(0);
    }
    close(pids[1]);
    close(gate[0]);
    close(done[1]);
    size_t got = 0, want = (size_t)n * sizeof(pid_t);
    while (got < want) {
        ssize_t r = read(pids[0], (char *)gc + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) die("reap: reading pids");
        got += (size_t)r;
    }
    int st;
    if (zombies)
        await_gate(done[0]); /* EOF: every child has exited */
    else
        while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
        }
    int64_t c1 = now_ns();
    int64_t t0 = now_ns();
    close(gate[1]);
    if (zombies)
        while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
        }
    int next = 0;
    int64_t deadline = t0 + 60LL * 1000000000LL;
    while (next < n && now_ns() < deadline) {
        if (kill(gc[next], 0) < 0 && errno == ESRCH)
            next++;
        else
            sleep_us(100);
    }
    int alive = n - next;
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
    if (!strcmp(m, "markerbench") && argc > 8) {
        /* the reference waiter's holder process outlives it: re-parent it here and reap it */
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        int r = cmd_markerbench(argc, argv);
        alarm(10);
        while (wait(NULL) > 0 || errno == EINTR) {
        }
        return r;
    }
    if (!strcmp(m, "waiter") && argc > 5) return cmd_waiter(argc, argv);
    if (!strcmp(m, "stamp")) return cmd_stamp(argc, argv);
    if (!strcmp(m, "gatebench") && argc > 8) return cmd_gatebench(argc, argv);
    if (!strcmp(m, "deathbench") && argc > 8) return cmd_deathbench(argc, argv);
    if (!strcmp(m, "hwm")) return cmd_hwm(argc, argv);
    if (!strcmp(m, "reap")) return orphan_storm(argc, argv, 0);
    if (!strcmp(m, "zombies")) return orphan_storm(argc, argv, 1);
    if (!strcmp(m, "init")) return cmd_init(argc, argv);
    fprintf(stderr, "benchkit: bad mode or arguments: %s\n", m);
    return 2;
}
