/*
 * runtime/ops_pipe.c — pipe: each partition's records go, one line each,
 * to an external command's standard input, and every line it prints is a
 * record (one string). As Spark's RDD.pipe: the command runs once per
 * partition, a non-zero exit status fails the task.
 *
 * args: {"command": "shell command" | ["argv0", "arg", ...],
 *        "env": {"NAME": "value", ...}}
 * A record is written as its string when it is one string, as the JSON
 * rendering of its element when it has one (42, 1.5, true, [1,"a"]), else
 * as its JSON rendering (docs/record-format.md). Input and output are pumped with
 * poll(), so a command that prints while it reads never deadlocks.
 */
#define _GNU_SOURCE /* pipe2, close_range */
#include "runtime/ops_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <stdio.h>
#include <unistd.h>

#include "ember/record.h"
#include "runtime/recval.h"

extern char **environ;

typedef struct pipe_state {
    pid_t pid;
    int in_fd, out_fd;  /* our ends: child's stdin, child's stdout */
    size_t in_off;      /* bytes of o->buf2 already written */
    int input_done;     /* parent exhausted */
    int eof;            /* child's stdout closed */
    ember_buf raw;      /* output bytes not yet cut into lines */
    size_t scanned;     /* bytes of raw known to hold no '\n' */
    char cmd[128];      /* for messages */
    uint64_t start_ms;
} pipe_state;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pipe_close(em_opnode *o)
{
    pipe_state *ps = o->extra;
    if (!ps)
        return;
    if (ps->in_fd >= 0)
        close(ps->in_fd);
    if (ps->out_fd >= 0)
        close(ps->out_fd);
    if (ps->pid > 0) {
        kill(ps->pid, SIGKILL);
        waitpid(ps->pid, NULL, 0);
    }
    ember_buf_release(&ps->raw);
    free(ps);
}

/* Renders the next parent batch into o->buf2 as lines. */
static ember_status fill_input(em_opnode *o, pipe_state *ps, ember_error *err)
{
    ember_batch in;
    ember_status s = o->in[0]->next(o->in[0], &in, err);
    if (s == EMBER_END) {
        ps->input_done = 1;
        close(ps->in_fd);
        ps->in_fd = -1;
        return EMBER_OK;
    }
    if (s != EMBER_OK)
        return s;
    o->buf2.len = 0;
    ps->in_off = 0;
    ember_batch_cursor c = ember_batch_cursor_of(&in);
    const uint8_t *r;
    size_t rl;
    while (ember_batch_next(&c, &r, &rl) == EMBER_OK) {
        ember_rec_cursor rc = ember_rec_cursor_init(r, rl);
        ember_value v;
        int single = ember_rec_next(&rc, &v) == EMBER_OK && rc.p == rc.end;
        if (single && v.type == EMBER_TYPE_STRING) {
            if (v.u.str.raw_len == v.u.str.len)
                s = ember_buf_append(&o->buf2, v.u.str.raw, v.u.str.len);
            else {
                size_t at = o->buf2.len;
                s = ember_buf_reserve(&o->buf2, v.u.str.len);
                if (s == EMBER_OK) {
                    ember_rec_string_copy(&v, o->buf2.data + at,
                                          v.u.str.len);
                    o->buf2.len += v.u.str.len;
                }
            }
        } else if (single) {
            s = ember_rec_json_value(&o->buf2, &v);
        } else {
            s = ember_rec_json(&o->buf2, r, rl);
        }
        if (s == EMBER_OK)
            s = ember_buf_put_u8(&o->buf2, '\n');
        if (s != EMBER_OK)
            return em_op_fail(o, err, s, "cannot render record for pipe");
    }
    return EMBER_OK;
}

/* Cuts complete lines of ps->raw into string records in o->buf. */
static ember_status cut_lines(em_opnode *o, pipe_state *ps, int final,
                              uint64_t *n, ember_error *err)
{
    size_t start = 0;
    /* a long line is scanned once, not again after every read */
    for (size_t i = ps->scanned; i < ps->raw.len; i++) {
        if (ps->raw.data[i] != '\n')
            continue;
        size_t end = i;
        size_t mark;
        ember_status s = ember_batch_frame_begin(&o->buf, &mark);
        if (s == EMBER_OK)
            s = ember_rec_put_string(&o->buf, (const char *)ps->raw.data + start,
                                     end - start);
        if (s == EMBER_OK)
            s = ember_batch_frame_end(&o->buf, mark);
        if (s != EMBER_OK)
            return em_op_fail(o, err, s, "out of memory");
        (*n)++;
        start = i + 1;
    }
    if (final && start < ps->raw.len) {
        size_t mark;
        ember_status s = ember_batch_frame_begin(&o->buf, &mark);
        if (s == EMBER_OK)
            s = ember_rec_put_string(&o->buf, (const char *)ps->raw.data + start,
                                     ps->raw.len - start);
        if (s == EMBER_OK)
            s = ember_batch_frame_end(&o->buf, mark);
        if (s != EMBER_OK)
            return em_op_fail(o, err, s, "out of memory");
        (*n)++;
        start = ps->raw.len;
    }
    if (start > 0) {
        memmove(ps->raw.data, ps->raw.data + start, ps->raw.len - start);
        ps->raw.len -= start;
    }
    ps->scanned = ps->raw.len;
    return EMBER_OK;
}

static ember_status finish(em_opnode *o, pipe_state *ps, ember_error *err)
{
    int status = 0;
    pid_t pid = ps->pid;
    ps->pid = -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return EMBER_OK;
    if (WIFEXITED(status))
        return em_op_fail(o, err, EMBER_EPLUGIN,
                          "pipe command '%s' exited with status %d", ps->cmd,
                          WEXITSTATUS(status));
    return em_op_fail(o, err, EMBER_EPLUGIN,
                      "pipe command '%s' was killed by signal %d", ps->cmd,
                      WTERMSIG(status));
}

static ember_status pipe_next(em_opnode *o, ember_batch *b, ember_error *err)
{
    pipe_state *ps = o->extra;
    o->buf.len = 0;
    uint64_t n = 0;
    ember_status s;
    while (!ps->eof && o->buf.len < o->env->batch_bytes) {
        if ((s = em_op_check_cancel(o, err)) != EMBER_OK)
            return s;
        if (o->env->pipe_timeout_ms > 0 &&
            now_ms() - ps->start_ms > (uint64_t)o->env->pipe_timeout_ms)
            return em_op_fail(o, err, EMBER_ETIMEDOUT,
                              "pipe command '%s' ran longer than "
                              "ember.pipe.timeout", ps->cmd);
        if (!ps->input_done && ps->in_off == o->buf2.len &&
            (s = fill_input(o, ps, err)) != EMBER_OK)
            return s;
        struct pollfd fds[2];
        int nf = 0;
        fds[nf++] = (struct pollfd){ps->out_fd, POLLIN, 0};
        if (!ps->input_done && ps->in_off < o->buf2.len)
            fds[nf++] = (struct pollfd){ps->in_fd, POLLOUT, 0};
        if (poll(fds, (nfds_t)nf, 200) < 0 && errno != EINTR)
            return em_op_fail(o, err, EMBER_EIO, "poll: %s", strerror(errno));
        if (nf == 2 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(ps->in_fd, o->buf2.data + ps->in_off,
                              o->buf2.len - ps->in_off);
            if (w > 0)
                ps->in_off += (size_t)w;
            else if (w < 0 && errno == EPIPE) {
                /* the command stopped reading: drop the rest of the input */
                ps->input_done = 1;
                close(ps->in_fd);
                ps->in_fd = -1;
            }
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if ((s = ember_buf_reserve(&ps->raw, 65536)) != EMBER_OK)
                return em_op_fail(o, err, s, "out of memory");
            ssize_t r = read(ps->out_fd, ps->raw.data + ps->raw.len, 65536);
            if (r > 0)
                ps->raw.len += (size_t)r;
            else if (r == 0)
                ps->eof = 1;
            else if (errno != EINTR && errno != EAGAIN)
                return em_op_fail(o, err, EMBER_EIO, "read from pipe: %s",
                                  strerror(errno));
        }
        if ((s = cut_lines(o, ps, ps->eof, &n, err)) != EMBER_OK)
            return s;
    }
    if (ps->eof && ps->pid > 0) {
        if (!ps->input_done) {
            /* output closed before input ended: drain the parent anyway so
             * the exit status decides */
            ps->input_done = 1;
            if (ps->in_fd >= 0)
                close(ps->in_fd);
            ps->in_fd = -1;
        }
        if ((s = finish(o, ps, err)) != EMBER_OK)
            return s;
    }
    if (n == 0 && ps->eof)
        return EMBER_END;
    *b = (ember_batch){o->buf.data, o->buf.len, n};
    return EMBER_OK;
}

/* environ with the names of env replaced or added: *envp points into
 * *mem and environ. */
static ember_status s_build_env(json_t *env, char ***envp, char **mem)
{
    size_t n = 0, bytes = 0;
    while (environ[n])
        n++;
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) {
        if (json_is_string(v))
            bytes += strlen(k) + json_string_length(v) + 2;
    }
    char **e = calloc(n + json_object_size(env) + 1, sizeof *e);
    char *m = malloc(bytes + 1);
    if (!e || !m) {
        free(e);
        free(m);
        return EMBER_ENOMEM;
    }
    size_t ne = 0, at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t kl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int replaced = 0;
        json_object_foreach(env, k, v) {
            if (json_is_string(v) && strlen(k) == kl &&
                memcmp(k, environ[i], kl) == 0)
                replaced = 1;
        }
        if (!replaced)
            e[ne++] = environ[i];
    }
    json_object_foreach(env, k, v) {
        if (!json_is_string(v))
            continue;
        int w = sprintf(m + at, "%s=%s", k, json_string_value(v));
        e[ne++] = m + at;
        at += (size_t)w + 1;
    }
    *envp = e;
    *mem = m;
    return EMBER_OK;
}

static ember_status spawn(em_opnode *o, pipe_state *ps, ember_error *err)
{
    json_t *cmd = json_object_get(o->args, "command");
    json_t *env = json_object_get(o->args, "env");
    size_t argc = json_is_array(cmd) ? json_array_size(cmd) : 0;
    if (!(json_is_string(cmd) && json_string_length(cmd) > 0) && argc == 0)
        return em_op_fail(o, err, EMBER_EINVAL,
                          "args.command must be a non-empty string or list");
    if (env && !json_is_object(env))
        return em_op_fail(o, err, EMBER_EINVAL, "args.env must be an object");
    const char **argv = calloc(argc + 4, sizeof *argv);
    if (!argv)
        return em_op_fail(o, err, EMBER_ENOMEM, "out of memory");
    if (argc == 0) {
        argv[0] = "/bin/sh";
        argv[1] = "-c";
        argv[2] = json_string_value(cmd);
        snprintf(ps->cmd, sizeof ps->cmd, "%s", argv[2]);
    } else {
        for (size_t i = 0; i < argc; i++) {
            json_t *a = json_array_get(cmd, i);
            if (!json_is_string(a)) {
                free(argv);
                return em_op_fail(o, err, EMBER_EINVAL,
                                  "args.command[%zu] must be a string", i);
            }
            argv[i] = json_string_value(a);
        }
        snprintf(ps->cmd, sizeof ps->cmd, "%s", argv[0]);
    }
    /* The environment is built before fork: the child of a threaded
     * process may only call async-signal-safe functions. */
    char **envp = NULL;
    char *envmem = NULL;
    if (env && json_object_size(env) > 0 &&
        (s_build_env(env, &envp, &envmem) != EMBER_OK)) {
        free(argv);
        return em_op_fail(o, err, EMBER_ENOMEM, "out of memory");
    }
    /* Close-on-exec from the start: a command another slot forks at the
     * same moment must not inherit these ends (it would hold this
     * command's stdin open for ever). */
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0) {
        free(envp);
        free(envmem);
        free(argv);
        return em_op_fail(o, err, EMBER_EIO, "pipe: %s", strerror(errno));
    }
    if (pipe2(out, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        free(envp);
        free(envmem);
        free(argv);
        return em_op_fail(o, err, EMBER_EIO, "pipe: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        /* nothing of the executor's but stdin/stdout/stderr, and SIGPIPE
         * as a shell expects it (the runtime ignores it) */
        close_range(3, ~0u, 0);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &dfl, NULL);
        if (envp)
            environ = envp;
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    free(envp);
    free(envmem);
    free(argv);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        return em_op_fail(o, err, EMBER_EIO, "fork: %s", strerror(errno));
    }
    ps->pid = pid;
    ps->in_fd = in[1];
    ps->out_fd = out[0];
    fcntl(ps->in_fd, F_SETFL, fcntl(ps->in_fd, F_GETFL) | O_NONBLOCK);
    ps->start_ms = now_ms();
    return EMBER_OK;
}

ember_status em_op_init_pipe(em_opnode *o, ember_error *err)
{
    if (strcmp(o->node->op->name, "pipe") != 0)
        return EMBER_EUNSUPPORTED;
    if (!o->args)
        return em_op_fail(o, err, EMBER_EINVAL, "args.command is missing");
    pipe_state *ps = calloc(1, sizeof *ps);
    if (!ps)
        return em_op_fail(o, err, EMBER_ENOMEM, "out of memory");
    ps->in_fd = ps->out_fd = -1;
    ps->raw = ember_buf_heap();
    o->extra = ps;
    o->close = pipe_close;
    ember_status s = em_op_build(&o->in[0], o->env, o->node->deps[0].parent,
                                 o->partition, o->depth + 1, err);
    if (s != EMBER_OK)
        return s;
    o->nin = 1;
    if ((s = spawn(o, ps, err)) != EMBER_OK)
        return s;
    o->next = pipe_next;
    return EMBER_OK;
}
