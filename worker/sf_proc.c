/*  =========================================================================
    sf_proc - a child process started with posix_spawn

    glibc's posix_spawn uses clone(CLONE_VM|CLONE_VFORK) and then exec, so it
    is safe in a process with ZeroMQ and libvirt threads, where fork()
    without exec is not. Waiting uses a pidfd (Linux >= 5.3) so that the exit
    wakes the poll at once; without one we fall back to short poll ticks.
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define S_OUT_MAX   (4 * 1024 * 1024)   //  stdout kept (qemu-img info JSON)
#define S_ERR_MAX   (64 * 1024)         //  stderr kept (only the tail matters)

//  One captured stream
typedef struct {
    int fd;                 //  read end, -1 once at EOF or not captured
    char *data;             //  Owned, NUL-terminated
    size_t size;
    size_t max;
} stream_t;

//  Structure of our class

struct _sf_proc_t {
    pid_t pid;
    int pidfd;              //  -1 if the kernel has none
    char *name;             //  Owned, argv [0] for messages
    stream_t out;
    stream_t err;
    bool exited;            //  reaped
    int status;             //  waitpid status once exited
};

SF_LOG_MODULE ("worker.proc");

static void
s_stream_init (stream_t *stream, size_t max)
{
    stream->fd = -1;
    stream->data = (char *) zmalloc (1);
    stream->size = 0;
    stream->max = max;
}

//  Read what is available. Keeps the head of stdout and the tail of stderr
//  within max. Returns false at EOF (fd closed).

static bool
s_stream_read (stream_t *stream, bool keep_tail)
{
    char buf [65536];
    ssize_t got = read (stream->fd, buf, sizeof (buf));
    if (got == -1 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (got <= 0) {
        close (stream->fd);
        stream->fd = -1;
        return false;
    }
    size_t keep = (size_t) got;
    if (stream->size + keep > stream->max) {
        if (keep_tail && keep <= stream->max) {
            size_t drop = stream->size + keep - stream->max;
            memmove (stream->data, stream->data + drop, stream->size - drop);
            stream->size -= drop;
        }
        else
            keep = stream->max - stream->size;
    }
    stream->data = (char *) realloc (stream->data, stream->size + keep + 1);
    assert (stream->data);
    memcpy (stream->data + stream->size, buf, keep);
    stream->size += keep;
    stream->data [stream->size] = 0;
    return true;
}

static int
s_spawn_attrs (posix_spawnattr_t *attr, int flags)
{
    sigset_t mask, dflt;
    sigemptyset (&mask);
    sigemptyset (&dflt);
    if (flags & SF_PROC_BLOCKTERM) {
        sigaddset (&mask, SIGTERM);
        sigaddset (&mask, SIGINT);
        sigaddset (&mask, SIGHUP);
    }
    int sigs [] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT, SIGUSR1,
                    SIGUSR2, SIGCHLD, SIGALRM };
    for (size_t i = 0; i < sizeof (sigs) / sizeof (sigs [0]); i++)
        sigaddset (&dflt, sigs [i]);
    short spawn_flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (flags & SF_PROC_NEWPGRP)
        spawn_flags |= POSIX_SPAWN_SETPGROUP;
    if (posix_spawnattr_init (attr)
    ||  posix_spawnattr_setsigmask (attr, &mask)
    ||  posix_spawnattr_setsigdefault (attr, &dflt)
    ||  posix_spawnattr_setpgroup (attr, 0)
    ||  posix_spawnattr_setflags (attr, spawn_flags))
        return -1;
    return 0;
}

//  Spawn with stdin from /dev/null and, if asked, stdout/stderr to pipes

static int
s_spawn (sf_proc_t *self, char *const argv [], int flags, sf_err_t *err)
{
    int rc = -1;
    int out_pipe [2] = { -1, -1 }, err_pipe [2] = { -1, -1 };
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init (&actions);
    bool have_attr = s_spawn_attrs (&attr, flags) == 0;
    if (!have_attr) {
        sf_err_set (err, SF_EIO, "cannot set up spawn attributes");
        goto cleanup;
    }
    posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);
    if (flags & SF_PROC_CAPTURE) {
        if (pipe2 (out_pipe, O_CLOEXEC) || pipe2 (err_pipe, O_CLOEXEC)) {
            sf_err_set (err, SF_EIO, "cannot create pipe: %s", strerror (errno));
            goto cleanup;
        }
        posix_spawn_file_actions_adddup2 (&actions, out_pipe [1], 1);
        posix_spawn_file_actions_adddup2 (&actions, err_pipe [1], 2);
    }
    int error = posix_spawnp (&self->pid, argv [0], &actions, &attr, argv, environ);
    if (error) {
        sf_err_set (err, SF_EIO, "cannot run '%s': %s", argv [0], strerror (error));
        goto cleanup;
    }
    if (flags & SF_PROC_CAPTURE) {
        self->out.fd = out_pipe [0];
        self->err.fd = err_pipe [0];
        out_pipe [0] = err_pipe [0] = -1;
    }
    rc = 0;
 cleanup:
    for (int i = 0; i < 2; i++) {
        if (out_pipe [i] != -1)
            close (out_pipe [i]);
        if (err_pipe [i] != -1)
            close (err_pipe [i]);
    }
    posix_spawn_file_actions_destroy (&actions);
    if (have_attr)
        posix_spawnattr_destroy (&attr);
    return rc;
}

//  --------------------------------------------------------------------------
//  Constructor

sf_proc_t *
sf_proc_new (char *const argv [], int flags, sf_err_t *err)
{
    assert (argv && argv [0]);
    sf_proc_t *self = (sf_proc_t *) zmalloc (sizeof (sf_proc_t));
    self->pid = -1;
    self->pidfd = -1;
    self->name = strdup (argv [0]);
    s_stream_init (&self->out, S_OUT_MAX);
    s_stream_init (&self->err, S_ERR_MAX);
    if (s_spawn (self, argv, flags, err)) {
        self->exited = true;        //  nothing to reap
        sf_proc_destroy (&self);
        return NULL;
    }
    self->pidfd = (int) syscall (SYS_pidfd_open, self->pid, 0);
    SF_DEBUG (NULL, "started '%s' as pid %d", self->name, (int) self->pid);
    return self;
}

//  --------------------------------------------------------------------------
//  Destructor

void
sf_proc_destroy (sf_proc_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_proc_t *self = *self_p;
        if (!self->exited)
            sf_proc_stop (self, 0);
        if (self->pidfd != -1)
            close (self->pidfd);
        if (self->out.fd != -1)
            close (self->out.fd);
        if (self->err.fd != -1)
            close (self->err.fd);
        free (self->out.data);
        free (self->err.data);
        free (self->name);
        free (self);
        *self_p = NULL;
    }
}

pid_t
sf_proc_pid (sf_proc_t *self)
{
    assert (self);
    return self->pid;
}

//  Reap the child if it has exited. Returns true once reaped.

static bool
s_reap (sf_proc_t *self, bool block)
{
    if (self->exited)
        return true;
    pid_t rc;
    do
        rc = waitpid (self->pid, &self->status, block ? 0 : WNOHANG);
    while (rc == -1 && errno == EINTR);
    if (rc == self->pid || (rc == -1 && errno == ECHILD)) {
        self->exited = true;
        SF_DEBUG (NULL, "'%s' (pid %d) ended, exit code %d", self->name,
                  (int) self->pid, sf_proc_exit_code (self));
    }
    return self->exited;
}

//  Build the poll set: [cancel] [stdout] [stderr] [pidfd]

static int
s_poll_items (sf_proc_t *self, zsock_t *cancel, zmq_pollitem_t *items)
{
    int count = 0;
    if (cancel)
        items [count++] = (zmq_pollitem_t) { zsock_resolve (cancel), 0, ZMQ_POLLIN, 0 };
    if (self->out.fd != -1)
        items [count++] = (zmq_pollitem_t) { NULL, self->out.fd, ZMQ_POLLIN, 0 };
    if (self->err.fd != -1)
        items [count++] = (zmq_pollitem_t) { NULL, self->err.fd, ZMQ_POLLIN, 0 };
    if (self->pidfd != -1)
        items [count++] = (zmq_pollitem_t) { NULL, self->pidfd, ZMQ_POLLIN, 0 };
    return count;
}

int
sf_proc_wait (sf_proc_t *self, zsock_t *cancel, int64_t deadline_ms, sf_err_t *err)
{
    assert (self);
    while (true) {
        //  Exit is final only once the pipes are drained too
        if (self->out.fd == -1 && self->err.fd == -1 && s_reap (self, false))
            return SF_PROC_EXITED;
        if (cancel && (zsock_events (cancel) & ZMQ_POLLIN))
            return SF_PROC_CANCELLED;
        int64_t now = sf_time_mono_ms ();
        if (deadline_ms && now >= deadline_ms)
            return SF_PROC_TIMEOUT;
        long timeout = self->pidfd == -1 ? 20 : 1000;
        if (deadline_ms && deadline_ms - now < timeout)
            timeout = (long) (deadline_ms - now);
        zmq_pollitem_t items [4];
        int count = s_poll_items (self, cancel, items);
        if (zmq_poll (items, count, timeout) == -1 && errno != EINTR)
            return sf_err_set (err, SF_EIO, "cannot poll '%s': %s", self->name,
                               zmq_strerror (errno));
        for (int i = 0; i < count; i++) {
            if (!(items [i].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) || items [i].socket)
                continue;
            if (items [i].fd == self->out.fd)
                s_stream_read (&self->out, false);
            else
            if (items [i].fd == self->err.fd)
                s_stream_read (&self->err, true);
        }
    }
}

void
sf_proc_stop (sf_proc_t *self, int grace_ms)
{
    assert (self);
    if (s_reap (self, false))
        return;
    if (grace_ms > 0) {
        kill (self->pid, SIGTERM);
        int64_t until = sf_time_mono_ms () + grace_ms;
        while (sf_time_mono_ms () < until)
            if (sf_proc_wait (self, NULL, until, NULL) == SF_PROC_EXITED)
                return;
    }
    kill (self->pid, SIGKILL);
    s_reap (self, true);
}

bool
sf_proc_exited (sf_proc_t *self)
{
    assert (self);
    return s_reap (self, false);
}

int
sf_proc_exit_code (sf_proc_t *self)
{
    assert (self);
    if (!self->exited)
        return -1;
    if (WIFEXITED (self->status))
        return WEXITSTATUS (self->status);
    if (WIFSIGNALED (self->status))
        return 128 + WTERMSIG (self->status);
    return -1;
}

const char *
sf_proc_stdout (sf_proc_t *self)
{
    assert (self);
    return self->out.data;
}

const char *
sf_proc_stderr (sf_proc_t *self)
{
    assert (self);
    return self->err.data;
}

//  Last non-empty line of text, copied into buf

static const char *
s_last_line (const char *text, char *buf, size_t size)
{
    const char *end = text + strlen (text);
    while (end > text && isspace ((unsigned char) end [-1]))
        end--;
    const char *start = end;
    while (start > text && start [-1] != '\n')
        start--;
    snprintf (buf, size, "%.*s", (int) (end - start), start);
    return buf;
}

int
sf_proc_check (sf_proc_t *self, sf_err_t *err)
{
    assert (self);
    int code = sf_proc_exit_code (self);
    if (code == 0)
        return 0;
    char line [200];
    s_last_line (self->err.data, line, sizeof (line));
    if (code > 128 && WIFSIGNALED (self->status))
        return sf_err_set (err, SF_EIO, "'%s' killed by signal %d%s%s", self->name,
                           code - 128, *line ? ": " : "", line);
    return sf_err_set (err, SF_EIO, "'%s' failed (exit code %d)%s%s", self->name, code,
                       *line ? ": " : "", line);
}

sf_proc_t *
sf_proc_run (char *const argv [], zsock_t *cancel, int64_t deadline_ms, sf_err_t *err)
{
    sf_proc_t *self = sf_proc_new (argv, SF_PROC_CAPTURE, err);
    if (!self)
        return NULL;
    int rc = sf_proc_wait (self, cancel, deadline_ms, err);
    if (rc == SF_PROC_EXITED && sf_proc_check (self, err) == 0)
        return self;
    if (rc == SF_PROC_CANCELLED)
        sf_err_set (err, SF_ECANCELED, "'%s' cancelled", argv [0]);
    else
    if (rc == SF_PROC_TIMEOUT)
        sf_err_set (err, SF_ETIMEDOUT, "'%s' did not finish in time", argv [0]);
    sf_proc_stop (self, 2000);
    sf_proc_destroy (&self);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Self test

void
sf_proc_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_proc: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    //  Output is captured, exit code reported
    char *echo [] = { "sh", "-c", "echo out; echo oops >&2; echo last >&2; exit 3", NULL };
    sf_proc_t *proc = sf_proc_new (echo, SF_PROC_CAPTURE, &err);
    assert (proc);
    assert (sf_proc_wait (proc, NULL, 0, &err) == SF_PROC_EXITED);
    assert (sf_proc_exit_code (proc) == 3);
    assert (streq (sf_proc_stdout (proc), "out\n"));
    assert (streq (sf_proc_stderr (proc), "oops\nlast\n"));
    assert (sf_proc_check (proc, &err) == -1);
    assert (streq (err.text, "'sh' failed (exit code 3): last"));
    sf_proc_destroy (&proc);
    assert (proc == NULL);

    //  A missing program is a clear error
    char *missing [] = { "/nonexistent/qemu-img", NULL };
    assert (sf_proc_new (missing, 0, &err) == NULL);
    assert (err.code == SF_EIO && strstr (err.text, "cannot run '/nonexistent/qemu-img'"));

    //  Large output is kept
    char *big [] = { "sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x", NULL };
    proc = sf_proc_run (big, NULL, 0, &err);
    assert (proc && strlen (sf_proc_stdout (proc)) == 300000);
    sf_proc_destroy (&proc);

    //  Deadline: the child is stopped, not left behind
    char *sleeper [] = { "sleep", "30", NULL };
    int64_t start = sf_time_mono_ms ();
    assert (sf_proc_run (sleeper, NULL, start + 100, &err) == NULL);
    assert (err.code == SF_ETIMEDOUT);
    assert (sf_time_mono_ms () - start < 5000);

    //  Cancel: a message on the socket interrupts the wait, stays unread
    zsock_t *reader = zsock_new_pair ("@inproc://sf-proc-test");
    zsock_t *writer = zsock_new_pair (">inproc://sf-proc-test");
    proc = sf_proc_new (sleeper, SF_PROC_NEWPGRP, &err);
    assert (proc);
    pid_t pid = sf_proc_pid (proc);
    zstr_send (writer, "CANCEL");
    zclock_sleep (20);
    assert (sf_proc_wait (proc, reader, 0, &err) == SF_PROC_CANCELLED);
    assert (!sf_proc_exited (proc));
    sf_proc_stop (proc, 2000);
    assert (sf_proc_exited (proc));
    assert (sf_proc_exit_code (proc) == 128 + SIGTERM);
    assert (kill (pid, 0) == -1);       //  reaped
    sf_proc_destroy (&proc);
    char *msg = zstr_recv (reader);
    assert (msg && streq (msg, "CANCEL"));
    zstr_free (&msg);
    zsock_destroy (&writer);
    zsock_destroy (&reader);

    //  Destroying a running child kills and reaps it
    proc = sf_proc_new (sleeper, 0, &err);
    assert (proc);
    pid = sf_proc_pid (proc);
    sf_proc_destroy (&proc);
    assert (kill (pid, 0) == -1);
    //  @end
    printf ("OK\n");
}
