/*  =========================================================================
    sf_proc - a child process started with posix_spawn

    glibc's posix_spawn uses clone(CLONE_VM|CLONE_VFORK) and then exec, so it
    is safe in a process with ZeroMQ and libvirt threads, where fork()
    without exec is not. Waiting uses a pidfd (Linux >= 5.3) so that the exit
    wakes the poll at once; without one we fall back to short poll ticks.

    A child that must die with the worker is spawned through setpriv and
    sh (sf_proc.h). The program is looked up in PATH here, before the
    spawn, so that a missing one is still a synchronous "cannot run" error.
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define S_OUT_MAX   (4 * 1024 * 1024)   //  stdout kept (qemu-img info JSON)
#define S_ERR_MAX   (64 * 1024)         //  stderr kept (only the tail matters)

//  The death wrapper: setpriv arms the parent-death signal, then this
//  script (run as: sh -c S_DEATH_CHECK NAME PPID PATH ARGS...) execs PATH
//  only if its parent is still PPID
#define S_DEATH_CHECK   "[ \"$PPID\" = \"$1\" ] || exit 127; shift; exec \"$@\""

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
    int held_fd;            //  closed with the object, -1 if none
    int pidfd;              //  -1 if the kernel has none
    char *name;             //  Owned, argv [0] for messages
    stream_t out;
    stream_t err;
    bool exited;            //  reaped
    int status;             //  waitpid status once exited
};

SF_LOG_MODULE ("worker.proc");

//  Released children, reaped whenever a process is started or destroyed
#define S_RELEASED_MAX  64
static pid_t s_released [S_RELEASED_MAX];
static pthread_mutex_t s_released_lock = PTHREAD_MUTEX_INITIALIZER;

static void
s_reap_released (void)
{
    pthread_mutex_lock (&s_released_lock);
    for (size_t i = 0; i < S_RELEASED_MAX; i++)
        if (s_released [i] > 0 && waitpid (s_released [i], NULL, WNOHANG) != 0)
            s_released [i] = 0;     //  reaped, or not ours any more
    pthread_mutex_unlock (&s_released_lock);
}

static void
s_remember_released (pid_t pid)
{
    pthread_mutex_lock (&s_released_lock);
    for (size_t i = 0; i < S_RELEASED_MAX && pid; i++)
        if (s_released [i] <= 0) {
            s_released [i] = pid;
            pid = 0;
        }
    pthread_mutex_unlock (&s_released_lock);
    if (pid)                        //  a zombie at worst, until we exit
        SF_WARN (NULL, "too many released children; pid %d is not reaped", (int) pid);
}

//  Where name runs from: itself if it has a slash, else the first
//  executable match in PATH. Returns a new string, or NULL with errno.

static char *
s_which (const char *name)
{
    if (strchr (name, '/'))
        return access (name, X_OK) == 0 ? strdup (name) : NULL;
    const char *path = getenv ("PATH");
    char *dirs = strdup (path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *found = NULL, *save = NULL;
    errno = ENOENT;
    for (char *dir = strtok_r (dirs, ":", &save); dir && !found;
         dir = strtok_r (NULL, ":", &save)) {
        char *candidate = zsys_sprintf ("%s/%s", *dir ? dir : ".", name);
        struct stat st;
        if (stat (candidate, &st) == 0 && S_ISREG (st.st_mode)
        &&  access (candidate, X_OK) == 0)
            found = candidate;
        else
            zstr_free (&candidate);
    }
    free (dirs);
    if (!found)
        errno = ENOENT;
    return found;
}

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

//  Spawn with stdin from /dev/null, pass_fd as fd 3 if >= 0 and, if
//  asked, stdout/stderr to pipes. Without SF_PROC_SURVIVE through the
//  exec wrapper.

static int
s_spawn (sf_proc_t *self, char *const argv [], int flags, int pass_fd, sf_err_t *err)
{
    int rc = -1;
    int out_pipe [2] = { -1, -1 }, err_pipe [2] = { -1, -1 };
    int pass_dup = -1;
    char **wrapped = NULL;
    char *setpriv = NULL;
    char *path = s_which (argv [0]);
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init (&actions);
    bool have_attr = s_spawn_attrs (&attr, flags) == 0;
    if (!path) {
        sf_err_set (err, SF_EIO, "cannot run '%s': %s", argv [0], strerror (errno));
        goto cleanup;
    }
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
    if (pass_fd >= 0) {
        //  dup2 onto itself would keep FD_CLOEXEC: never pass fd 3 as 3
        pass_dup = fcntl (pass_fd, F_DUPFD_CLOEXEC, 4);
        if (pass_dup == -1) {
            sf_err_set (err, SF_EIO, "cannot pass a descriptor: %s", strerror (errno));
            goto cleanup;
        }
        posix_spawn_file_actions_adddup2 (&actions, pass_dup, 3);
    }
    const char *exe = path;
    char *const *args = argv;
    char ppid [24];
    if (!(flags & SF_PROC_SURVIVE)) {
        if (!(setpriv = s_which ("setpriv"))) {
            sf_err_set (err, SF_EIO, "cannot run '%s': setpriv (util-linux), which makes "
                        "it die with the worker, is not in PATH", argv [0]);
            goto cleanup;
        }
        size_t argc = 0;
        while (argv [argc])
            argc++;
        wrapped = (char **) zmalloc ((argc + 11) * sizeof (char *));
        snprintf (ppid, sizeof (ppid), "%d", (int) getpid ());
        char **arg = wrapped;
        *arg++ = "setpriv";
        *arg++ = "--pdeathsig";
        *arg++ = "KILL";
        *arg++ = "--";
        *arg++ = "/bin/sh";
        *arg++ = "-c";
        *arg++ = S_DEATH_CHECK;
        *arg++ = argv [0];          //  $0: what the shell's own errors name
        *arg++ = ppid;
        *arg++ = path;
        for (size_t i = 1; i <= argc; i++)
            *arg++ = argv [i];
        exe = setpriv;
        args = wrapped;
    }
    int error = posix_spawn (&self->pid, exe, &actions, &attr, args, environ);
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
    if (pass_dup != -1)
        close (pass_dup);
    posix_spawn_file_actions_destroy (&actions);
    if (have_attr)
        posix_spawnattr_destroy (&attr);
    free (wrapped);
    free (setpriv);
    free (path);
    return rc;
}

//  --------------------------------------------------------------------------
//  Constructor

sf_proc_t *
sf_proc_new (char *const argv [], int flags, sf_err_t *err)
{
    return sf_proc_new_pass (argv, flags, -1, err);
}

sf_proc_t *
sf_proc_new_pass (char *const argv [], int flags, int pass_fd, sf_err_t *err)
{
    assert (argv && argv [0]);
    s_reap_released ();
    sf_proc_t *self = (sf_proc_t *) zmalloc (sizeof (sf_proc_t));
    self->pid = -1;
    self->pidfd = -1;
    self->held_fd = -1;
    self->name = strdup (argv [0]);
    s_stream_init (&self->out, S_OUT_MAX);
    s_stream_init (&self->err, S_ERR_MAX);
    if (s_spawn (self, argv, flags, pass_fd, err)) {
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

static bool
    s_reap (sf_proc_t *self, bool block);

static void
s_free (sf_proc_t *self)
{
    if (self->held_fd != -1)
        close (self->held_fd);
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
}

void
sf_proc_destroy (sf_proc_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_proc_t *self = *self_p;
        if (!self->exited)
            sf_proc_stop (self, 0);
        s_free (self);
        *self_p = NULL;
    }
    s_reap_released ();
}

pid_t
sf_proc_release (sf_proc_t **self_p)
{
    assert (self_p && *self_p);
    sf_proc_t *self = *self_p;
    pid_t pid = self->pid;
    if (!s_reap (self, false)) {
        SF_DEBUG (NULL, "'%s' (pid %d) goes on alone", self->name, (int) pid);
        s_remember_released (pid);
    }
    s_free (self);
    *self_p = NULL;
    return pid;
}

void
sf_proc_hold_fd (sf_proc_t *self, int fd)
{
    assert (self);
    if (self->held_fd != -1)
        close (self->held_fd);
    self->held_fd = fd;
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

//  State letter of pid from /proc (0 if it is gone)

static char
s_test_state (pid_t pid)
{
    char path [64], line [512] = "";
    snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    char *got = fgets (line, sizeof (line), file);
    fclose (file);
    char *paren = got ? strrchr (line, ')') : NULL;
    return paren && paren [1] == ' ' ? paren [2] : 0;
}

//  Gone or a zombie within ms?

static bool
s_test_dies (pid_t pid, int ms)
{
    for (int64_t until = sf_time_mono_ms () + ms; sf_time_mono_ms () < until; ) {
        char state = s_test_state (pid);
        if (state == 0 || state == 'Z' || state == 'X')
            return true;
        zclock_sleep (20);
    }
    return false;
}

//  A child dies with the thread that started it (as with the worker: its
//  task threads wait for their children, so that is the worker's death);
//  a child whose worker is already gone never runs the program

static void *
s_test_spawner (void *arg)
{
    sf_err_t err = SF_ERR_INIT;
    char *sleeper [] = { "sleep", "30", NULL };
    sf_proc_t *proc = sf_proc_new (sleeper, 0, &err);
    *(sf_proc_t **) arg = proc;
    //  Once it runs sleep, setpriv has armed the signal
    char path [64], comm [32] = "";
    snprintf (path, sizeof (path), "/proc/%d/comm", (int) sf_proc_pid (proc));
    for (int64_t until = sf_time_mono_ms () + 20000; sf_time_mono_ms () < until; ) {
        FILE *file = fopen (path, "r");
        bool read = file && fgets (comm, sizeof (comm), file);
        if (file)
            fclose (file);
        if (read && streq (comm, "sleep\n"))
            break;
        zclock_sleep (10);
    }
    assert (streq (comm, "sleep\n"));
    return NULL;                //  the thread ends, its child still runs
}

static void
s_test_death (void)
{
    sf_err_t err = SF_ERR_INIT;
    sf_proc_t *proc = NULL;
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_test_spawner, &proc) == 0);
    assert (pthread_join (thread, NULL) == 0);
    assert (proc);
    assert (sf_proc_wait (proc, NULL, sf_time_mono_ms () + 25000, &err) == SF_PROC_EXITED);
    assert (sf_proc_exit_code (proc) == 128 + SIGKILL);     //  not sleep's 30 s
    sf_proc_destroy (&proc);
    //  The parent check: pid 1 is not our parent, so echo never runs
    char *wrong [] = { "setpriv", "--pdeathsig", "KILL", "--", "/bin/sh", "-c",
                       S_DEATH_CHECK, "echo", "1", "/bin/echo", "ran", NULL };
    proc = sf_proc_new (wrong, SF_PROC_CAPTURE | SF_PROC_SURVIVE, &err);
    assert (proc);
    assert (sf_proc_wait (proc, NULL, 0, &err) == SF_PROC_EXITED);
    assert (sf_proc_exit_code (proc) == 127 && streq (sf_proc_stdout (proc), ""));
    sf_proc_destroy (&proc);
    //  Through the wrapper, the program is the one that runs (by its path)
    char *cat [] = { "sh", "-c", "cat /proc/$$/cmdline | tr '\\0' ' '", NULL };
    proc = sf_proc_run (cat, NULL, 0, &err);
    assert (proc && strstr (sf_proc_stdout (proc), "sh -c cat /proc/$$/cmdline | tr "));
    assert (*sf_proc_stdout (proc) == '/');
    sf_proc_destroy (&proc);
}

//  A passed descriptor is the child's fd 3; a held one is closed with the
//  object; a released child runs on

static void
s_test_pass_release (void)
{
    sf_err_t err = SF_ERR_INIT;
    int fds [2];
    assert (pipe2 (fds, O_CLOEXEC) == 0);   //  (s_test_dies: gone or a zombie)
    //  The child reads fd 3 until EOF, i.e. until we close the write end
    char *waiter [] = { "sh", "-c", "cat <&3; echo eof", NULL };
    sf_proc_t *proc = sf_proc_new_pass (waiter, SF_PROC_CAPTURE | SF_PROC_SURVIVE, fds [0],
                                        &err);
    assert (proc);
    close (fds [0]);
    sf_proc_hold_fd (proc, fds [1]);
    assert (sf_proc_wait (proc, NULL, sf_time_mono_ms () + 300, &err) == SF_PROC_TIMEOUT);
    pid_t pid = sf_proc_release (&proc);
    assert (proc == NULL && pid > 0);
    assert (s_test_dies (pid, 20000));  //  EOF on fd 3: it ends on its own
    char *sleeper [] = { "sleep", "30", NULL };
    proc = sf_proc_new (sleeper, SF_PROC_SURVIVE, &err);
    assert (proc);
    pid = sf_proc_release (&proc);
    zclock_sleep (100);
    assert (s_test_state (pid) == 'S');  //  still running, not killed
    kill (pid, SIGKILL);
    assert (s_test_dies (pid, 20000));
    proc = sf_proc_new (sleeper, 0, &err);
    sf_proc_destroy (&proc);            //  reaps the released ones too
    assert (s_test_state (pid) == 0);
}

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

    s_test_death ();
    s_test_pass_release ();
    //  @end
    printf ("OK\n");
}
