/*  =========================================================================
    sf_guard - the pause guard and the pause journal

    The guard is a separate exec'd process, not a forked copy of the
    worker: the worker is threaded (ZeroMQ, libvirt), and a fork without
    exec of a threaded process may deadlock on any lock another thread held.
    It opens its own libvirt connection only when it has to act, so a
    libvirtd restart during the pause does not break it.
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

SF_LOG_MODULE ("worker.guard");

#define S_CONNECT_TRIES 30      //  guard: one a second if libvirtd is away
#define S_JOURNAL_TRIES (24 * 3600)  //  ... while its journal entry stays
#define S_WORKER_FD     3       //  the guard's end of the worker pipe
#define S_TMP_AGE_S     60      //  an uncommitted journal entry this old is stale

//  --------------------------------------------------------------------------
//  Journal

char *
sf_guard_journal_path (const char *workdir, const char *uuid)
{
    return zsys_sprintf ("%s/paused/%s", workdir, uuid);
}

static int
s_write_entry (FILE *file, void *arg)
{
    return json_dumpf ((json_t *) arg, file, JSON_COMPACT);
}

int
sf_guard_journal_write (const char *workdir, const sf_guard_entry_t *entry, sf_err_t *err)
{
    assert (workdir && entry);
    char *dir = zsys_sprintf ("%s/paused", workdir);
    char *path = sf_guard_journal_path (workdir, entry->uuid);
    json_t *doc = json_pack ("{s:s, s:s, s:s, s:I, s:i, s:b}", "uuid", entry->uuid,
                             "run_id", entry->run_id, "job_id", entry->job_id,
                             "deadline_ms", (json_int_t) entry->deadline_ms,
                             "pid", (int) getpid (), "frozen", entry->frozen);
    int rc = -1;
    if (sf_dir_make (dir, SF_DIR_MODE))
        sf_err_set (err, SF_EIO, "cannot create journal directory '%s': %s", dir,
                    strerror (errno));
    else
        rc = sf_file_replace (path, "journal entry ", s_write_entry, doc, err);
    json_decref (doc);
    zstr_free (&path);
    zstr_free (&dir);
    return rc;
}

int
sf_guard_journal_remove (const char *workdir, const char *uuid, sf_err_t *err)
{
    assert (workdir && uuid);
    char *path = sf_guard_journal_path (workdir, uuid);
    int rc = 0;
    if (unlink (path) && errno != ENOENT)
        rc = sf_err_set (err, SF_EIO, "cannot remove journal entry '%s': %s", path,
                         strerror (errno));
    zstr_free (&path);
    return rc;
}

static int
s_journal_read (const char *path, sf_guard_entry_t *entry)
{
    json_error_t jerr;
    json_t *doc = json_load_file (path, 0, &jerr);
    const char *uuid = NULL, *run_id = NULL, *job_id = "";
    json_int_t deadline = 0;
    int frozen = 0;
    int rc = json_unpack (doc, "{s:s, s:s, s?s, s?I, s?b}", "uuid", &uuid, "run_id", &run_id,
                          "job_id", &job_id, "deadline_ms", &deadline, "frozen", &frozen);
    if (rc == 0) {
        snprintf (entry->uuid, sizeof (entry->uuid), "%s", uuid);
        snprintf (entry->run_id, sizeof (entry->run_id), "%s", run_id);
        snprintf (entry->job_id, sizeof (entry->job_id), "%s", job_id);
        entry->deadline_ms = deadline;
        entry->frozen = frozen;
    }
    json_decref (doc);
    return rc;
}

//  Recover one entry. Returns 1 if it resumed the domain, 0 if not, -1 if
//  the entry must stay (the domain could not be checked).

static int
s_recover_entry (sf_hv_t *hv, const char *workdir, const char *path,
                 const sf_guard_entry_t *entry)
{
    sf_logctx_t ctx = { entry->job_id, NULL, entry->uuid };
    sf_err_t err = SF_ERR_INIT;
    int rc = sf_guard_check (hv, entry->uuid, entry->frozen, &err);
    if (rc == -1 && err.code != SF_ENOENT) {
        SF_ERROR (&ctx, "cannot recover pause journal entry '%s': %s", path, err.text);
        return -1;
    }
    if (rc == 1)
        SF_WARN (&ctx, "resumed domain '%s' that worker run '%s' paused and did not "
                 "resume", entry->uuid, entry->run_id);
    if (sf_guard_journal_remove (workdir, entry->uuid, &err))
        SF_ERROR (&ctx, "%s", err.text);
    return rc == 1;
}

int
sf_guard_recover (sf_hv_t *hv, const char *workdir, const char *run_id)
{
    assert (hv && workdir && run_id);
    char *dir = zsys_sprintf ("%s/paused", workdir);
    zdir_t *listing = zsys_file_exists (dir) ? zdir_new (dir, "-") : NULL;
    zstr_free (&dir);
    if (!listing)
        return 0;
    zfile_t **files = zdir_flatten (listing);
    int resumed = 0;
    for (size_t i = 0; files [i]; i++) {
        const char *path = zfile_filename (files [i], NULL);
        sf_guard_entry_t entry;
        if (strstr (path, ".tmp")) {
            //  Never committed, so nothing was paused; but a task of this
            //  run may be writing it right now: only old ones go
            if (zfile_modified (files [i]) < time (NULL) - S_TMP_AGE_S)
                unlink (path);
        }
        else
        if (s_journal_read (path, &entry))
            SF_ERROR (NULL, "unreadable pause journal entry '%s'", path);
        else
        if (!streq (entry.run_id, run_id) && s_recover_entry (hv, workdir, path, &entry) == 1)
            resumed++;
    }
    zdir_flatten_free (&files);
    zdir_destroy (&listing);
    return resumed;
}

//  --------------------------------------------------------------------------
//  Guard process, seen from the worker

sf_proc_t *
sf_guard_spawn (const char *exe, const char *uri, const char *uuid, int64_t deadline_ms,
                const char *journal, bool thaw, sf_err_t *err)
{
    assert (exe && uri && uuid);
    char deadline [32], worker_fd [8];
    snprintf (deadline, sizeof (deadline), "%" PRId64, deadline_ms);
    snprintf (worker_fd, sizeof (worker_fd), "%d", S_WORKER_FD);
    char *argv [14];
    int argc = 0;
    argv [argc++] = (char *) exe;
    argv [argc++] = "--guard";
    argv [argc++] = "--uri";
    argv [argc++] = (char *) uri;
    argv [argc++] = "--domain";
    argv [argc++] = (char *) uuid;
    argv [argc++] = "--deadline-ms";
    argv [argc++] = deadline;
    argv [argc++] = "--worker-fd";
    argv [argc++] = worker_fd;
    if (journal) {
        argv [argc++] = "--journal";
        argv [argc++] = (char *) journal;
    }
    if (thaw)
        argv [argc++] = "--thaw";
    argv [argc] = NULL;
    //  The write end stays in this process only (O_CLOEXEC): its closing,
    //  by sf_guard_stop or by the kernel when the worker dies, is EOF there
    int pipe_fds [2];
    if (pipe2 (pipe_fds, O_CLOEXEC)) {
        sf_err_set (err, SF_EIO, "cannot start the pause guard: cannot create a pipe: %s",
                    strerror (errno));
        return NULL;
    }
    sf_proc_t *guard = sf_proc_new_pass (argv, SF_PROC_NEWPGRP | SF_PROC_BLOCKTERM
                                               | SF_PROC_SURVIVE, pipe_fds [0], err);
    close (pipe_fds [0]);
    if (guard)
        sf_proc_hold_fd (guard, pipe_fds [1]);
    else {
        close (pipe_fds [1]);
        sf_err_prefix (err, "cannot start the pause guard");
    }
    return guard;
}

int
sf_guard_stop (sf_proc_t **guard_p)
{
    assert (guard_p);
    if (!*guard_p)
        return -1;
    sf_proc_t *guard = *guard_p;
    if (!sf_proc_exited (guard)) {
        kill (sf_proc_pid (guard), SIGTERM);
        int64_t until = sf_time_mono_ms () + SF_GUARD_STOP_MS;
        while (sf_time_mono_ms () < until
           &&  sf_proc_wait (guard, NULL, until, NULL) != SF_PROC_EXITED)
            ;
    }
    if (!sf_proc_exited (guard)) {
        pid_t pid = sf_proc_release (guard_p);
        SF_WARN (NULL, "the pause guard (pid %d) is still trying to reach libvirt after "
                 "%d s; it goes on alone and resumes the guest once it can", (int) pid,
                 SF_GUARD_STOP_MS / 1000);
        return SF_GUARD_EXIT_BUSY;
    }
    int code = sf_proc_exit_code (guard);
    sf_proc_destroy (guard_p);
    return code;
}

int
sf_guard_check (sf_hv_t *hv, const char *uuid, bool thaw, sf_err_t *err)
{
    int state;
    if (sf_hv_state (hv, uuid, &state, err))
        return -1;
    int rc = 0;
    if (state == SF_HV_PAUSED) {
        if (sf_hv_resume (hv, uuid, err))
            return -1;
        rc = 1;
    }
    //  After the resume: the guest agent that thaws runs inside the guest
    sf_err_t thaw_err = SF_ERR_INIT;
    sf_logctx_t ctx = { NULL, NULL, uuid };
    if (thaw && sf_hv_fs_thaw (hv, uuid, &thaw_err)) {
        if (thaw_err.code == SF_ENOTSUP)    //  no agent: nothing was frozen
            SF_DEBUG (&ctx, "nothing to thaw: %s", thaw_err.text);
        else
            SF_ERROR (&ctx, "cannot thaw the filesystems of '%s': %s", uuid, thaw_err.text);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Guard process, from the inside

typedef struct {
    const char *uri;
    const char *uuid;
    const char *journal;
    int64_t deadline_ms;
    int worker_fd;              //  -1 if none
    bool thaw;
} guard_args_t;

//  Why the guard acts
#define S_WHY_DEADLINE  0
#define S_WHY_SIGNAL    1
#define S_WHY_WORKER    2

static int
s_guard_args (int argc, char *argv [], guard_args_t *args)
{
    memset (args, 0, sizeof (*args));
    args->worker_fd = -1;
    for (int argn = 1; argn < argc; argn++) {
        const char *arg = argv [argn];
        const char *value = argn + 1 < argc ? argv [argn + 1] : NULL;
        if (streq (arg, "--guard"))
            continue;
        if (streq (arg, "--thaw")) {
            args->thaw = true;
            continue;
        }
        if (!value)
            return -1;
        if (streq (arg, "--uri"))
            args->uri = value;
        else
        if (streq (arg, "--domain"))
            args->uuid = value;
        else
        if (streq (arg, "--journal"))
            args->journal = value;
        else
        if (streq (arg, "--deadline-ms"))
            args->deadline_ms = strtoll (value, NULL, 10);
        else
        if (streq (arg, "--worker-fd")) {
            char *end = NULL;
            long fd = strtol (value, &end, 10);
            if (*end || fd < 3 || fd > 1023 || fcntl ((int) fd, F_GETFD) == -1)
                return -1;
            args->worker_fd = (int) fd;
        }
        else
            return -1;
        argn++;
    }
    return args->uri && args->uuid && args->deadline_ms > 0 ? 0 : -1;
}

//  Sleep until the deadline, one of the blocked signals (read from
//  sigfd) or EOF on the worker's pipe. Returns S_WHY_*.

static int
s_guard_sleep (int sigfd, int worker_fd, int64_t deadline_ms, int *signum)
{
    while (true) {
        int64_t left = deadline_ms - sf_time_now_ms ();
        if (left <= 0)
            return S_WHY_DEADLINE;
        struct pollfd fds [2] = { { sigfd, POLLIN, 0 }, { worker_fd, POLLIN, 0 } };
        int rc = poll (fds, worker_fd == -1 ? 1 : 2, left > 60000 ? 60000 : (int) left);
        if (rc == -1 && errno != EINTR)
            zclock_sleep (100);     //  cannot wait on them: tick to the deadline
        if (rc > 0 && fds [0].revents) {
            struct signalfd_siginfo info;
            if (read (sigfd, &info, sizeof (info)) == (ssize_t) sizeof (info)) {
                *signum = (int) info.ssi_signo;
                return S_WHY_SIGNAL;
            }
        }
        if (rc > 0 && worker_fd != -1 && fds [1].revents) {
            char byte;
            if (read (worker_fd, &byte, 1) <= 0)
                return S_WHY_WORKER;
        }
    }
}

//  With a journal: may the guard act? Only while the entry is there and
//  names the job and run it started for (or cannot be read: then acting
//  is the safe side).

static bool
s_guard_entry_ours (const guard_args_t *args, const sf_guard_entry_t *start)
{
    if (!args->journal)
        return true;
    if (!zsys_file_exists (args->journal))
        return false;
    sf_guard_entry_t now;
    if (s_journal_read (args->journal, &now) || !*start->run_id)
        return true;
    return streq (now.run_id, start->run_id) && streq (now.job_id, start->job_id);
}

static const char *
s_why_text (int why, int signum)
{
    return why == S_WHY_WORKER ? "when its worker died"
         : why == S_WHY_SIGNAL ? (signum == SIGTERM ? "when the guard was told to stop"
                                                    : "when the guard got a signal")
         : "at its max_pause deadline";
}

//  Connect (retrying while libvirtd is away), check, resume if paused

static int
s_guard_act (const guard_args_t *args, const sf_guard_entry_t *start, sf_logctx_t *ctx,
             int why, int signum)
{
    sf_err_t err = SF_ERR_INIT;
    int tries = args->journal ? S_JOURNAL_TRIES : S_CONNECT_TRIES;
    for (int attempt = 0; attempt < tries; attempt++) {
        if (attempt)
            sleep (1);
        if (!s_guard_entry_ours (args, start)) {
            SF_INFO (ctx, "pause guard: journal entry '%s' is gone or names another job; "
                     "domain '%s' is not ours to resume", args->journal, args->uuid);
            return SF_GUARD_EXIT_IDLE;
        }
        sf_hv_t *hv = sf_hv_new (args->uri, &err);
        if (!hv) {
            if (attempt % 30 == 0)
                SF_WARN (ctx, "pause guard: %s; trying again", err.text);
            continue;
        }
        int rc = sf_guard_check (hv, args->uuid, args->thaw, &err);
        sf_hv_destroy (&hv);
        if (args->thaw && why != S_WHY_SIGNAL && rc != -1)
            SF_ERROR (ctx, "PAUSE GUARD: thawed the filesystems of domain '%s' %s",
                      args->uuid, s_why_text (why, signum));
        if (rc == 0 || (rc == -1 && err.code == SF_ENOENT))
            return SF_GUARD_EXIT_IDLE;
        if (rc == 1) {
            SF_ERROR (ctx, "PAUSE GUARD: domain '%s' was still paused %s%s%s%s; resumed it",
                      args->uuid, s_why_text (why, signum), *start->job_id ? " (job " : "",
                      start->job_id, *start->job_id ? ")" : "");
            if (args->journal)
                unlink (args->journal);
            return SF_GUARD_EXIT_RESUMED;
        }
        if (attempt % 30 == 0)
            SF_WARN (ctx, "pause guard: %s; trying again", err.text);
    }
    SF_ERROR (ctx, "PAUSE GUARD: cannot resume domain '%s', it may still be paused: %s",
              args->uuid, err.text);
    return SF_GUARD_EXIT_FAILED;
}

int
sf_guard_main (int argc, char *argv [])
{
    umask (077);                //  what it writes gets explicit modes
    guard_args_t args;
    if (s_guard_args (argc, argv, &args)) {
        fprintf (stderr, "usage: snapfleet-worker --guard --uri URI --domain UUID "
                 "--deadline-ms EPOCH_MS [--worker-fd FD] [--journal PATH] [--thaw]\n");
        return SF_GUARD_EXIT_USAGE;
    }
    //  Its libvirt calls wait for libvirtd however long it takes: the
    //  guard must act once it answers again (sf_hv_libvirt)
    sf_hv_set_answer_timeout (0);
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGHUP);
    sigprocmask (SIG_BLOCK, &signals, NULL);
    int sigfd = signalfd (-1, &signals, SFD_CLOEXEC);
    if (args.worker_fd != -1)
        fcntl (args.worker_fd, F_SETFD, FD_CLOEXEC);
    //  What the entry says now, to tell it from a later pause's
    sf_guard_entry_t start;
    memset (&start, 0, sizeof (start));
    if (args.journal && s_journal_read (args.journal, &start))
        memset (&start, 0, sizeof (start));
    sf_logctx_t ctx = { *start.job_id ? start.job_id : NULL, NULL, args.uuid };
    int signum = 0;
    int why = sigfd == -1 ? S_WHY_DEADLINE
                          : s_guard_sleep (sigfd, args.worker_fd, args.deadline_ms, &signum);
    if (sigfd == -1)            //  cannot wait on signals: sleep to the deadline
        for (int64_t left; (left = args.deadline_ms - sf_time_now_ms ()) > 0; )
            zclock_sleep ((int) (left > 1000 ? 1000 : left));
    SF_DEBUG (&ctx, "pause guard woke up (%s)", s_why_text (why, signum));
    int rc = s_guard_act (&args, &start, &ctx, why, signum);
    if (sigfd != -1)
        close (sigfd);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_test_journal (const char *dir)
{
    sf_err_t err = SF_ERR_INIT;
    const char *uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f";
    sf_hv_t *hv = sf_hv_new ("test:///default", &err);
    assert (hv);
    //  Paused by an older run: recovered (resumed) and the entry removed
    sf_guard_entry_t entry = { .deadline_ms = sf_time_now_ms () + 60000 };
    snprintf (entry.uuid, sizeof (entry.uuid), "%s", uuid);
    snprintf (entry.run_id, sizeof (entry.run_id), "old-run");
    snprintf (entry.job_id, sizeof (entry.job_id), "J1");
    assert (sf_guard_journal_write (dir, &entry, &err) == 0);
    char *path = sf_guard_journal_path (dir, uuid);
    assert (zsys_file_exists (path));
    assert (sf_hv_suspend (hv, uuid, &err) == 0);
    //  The current run's own entries are left alone
    assert (sf_guard_recover (hv, dir, "old-run") == 0);
    assert (zsys_file_exists (path));
    assert (sf_guard_recover (hv, dir, "new-run") == 1);
    assert (!zsys_file_exists (path));
    int state;
    assert (sf_hv_state (hv, uuid, &state, &err) == 0 && state == SF_HV_RUNNING);
    //  An entry for a domain that is gone is dropped
    snprintf (entry.uuid, sizeof (entry.uuid), "00000000-0000-0000-0000-000000000000");
    assert (sf_guard_journal_write (dir, &entry, &err) == 0);
    assert (sf_guard_recover (hv, dir, "new-run") == 0);
    char *gone = sf_guard_journal_path (dir, entry.uuid);
    assert (!zsys_file_exists (gone));
    assert (sf_guard_journal_remove (dir, uuid, &err) == 0);
    //  The guard's check: resumes only what is paused
    assert (sf_guard_check (hv, uuid, false, &err) == 0);
    assert (sf_hv_suspend (hv, uuid, &err) == 0);
    assert (sf_guard_check (hv, uuid, false, &err) == 1);
    //  ... and thaws first when asked (the mock can freeze)
    assert (sf_hv_fs_freeze (hv, uuid, &err) == 0);
    assert (sf_hv_suspend (hv, uuid, &err) == 0);
    assert (sf_guard_check (hv, uuid, true, &err) == 1);
    //  A frozen entry of an older run is thawed and resumed too
    entry.frozen = true;
    snprintf (entry.uuid, sizeof (entry.uuid), "%s", uuid);
    assert (sf_guard_journal_write (dir, &entry, &err) == 0);
    assert (sf_hv_suspend (hv, uuid, &err) == 0);
    assert (sf_guard_recover (hv, dir, "new-run") == 1);
    assert (!zsys_file_exists (path));
    assert (sf_hv_state (hv, uuid, &state, &err) == 0 && state == SF_HV_RUNNING);
    zstr_free (&gone);
    zstr_free (&path);
    sf_hv_destroy (&hv);
}

//  The guard of a worker that dies (its pipe's write end closed, as the
//  kernel does for a SIGKILLed worker: sf_proc_release closes it and lets
//  the guard run) acts at once, long before its deadline, while the
//  journal entry is its job's; not when the entry is gone or names another
//  job. Returns the guard's exit code and how long it took.

static int
s_test_orphan (const char *dir, const char *exe, const char *uri, const char *uuid,
               const char *rewrite_job, bool remove, int64_t *took)
{
    sf_err_t err = SF_ERR_INIT;
    sf_guard_entry_t entry = { .deadline_ms = sf_time_now_ms () + 600000 };
    snprintf (entry.uuid, sizeof (entry.uuid), "%s", uuid);
    snprintf (entry.run_id, sizeof (entry.run_id), "run-1");
    snprintf (entry.job_id, sizeof (entry.job_id), "J1");
    assert (sf_guard_journal_write (dir, &entry, &err) == 0);
    char *journal = sf_guard_journal_path (dir, uuid);
    sf_proc_t *guard = sf_guard_spawn (exe, uri, uuid, entry.deadline_ms, journal, false,
                                       &err);
    assert (guard);
    //  It has read the entry (a sanitized build takes up to a second to
    //  start, more on a loaded host; a guard that read the rewritten entry
    //  would take J2 for its own job)
    zclock_sleep (3000);
    assert (!sf_proc_exited (guard));
    if (rewrite_job) {
        snprintf (entry.job_id, sizeof (entry.job_id), "%s", rewrite_job);
        assert (sf_guard_journal_write (dir, &entry, &err) == 0);
    }
    if (remove)
        assert (sf_guard_journal_remove (dir, uuid, &err) == 0);
    int64_t start = sf_time_mono_ms ();
    pid_t pid = sf_proc_release (&guard);
    int status = 0;
    assert (waitpid (pid, &status, 0) == pid && WIFEXITED (status));
    *took = sf_time_mono_ms () - start;
    int code = WEXITSTATUS (status);
    if (code == SF_GUARD_EXIT_RESUMED)
        assert (!zsys_file_exists (journal));
    else
        assert (sf_guard_journal_remove (dir, uuid, &err) == 0);
    zstr_free (&journal);
    return code;
}

static void
s_test_worker_death (const char *dir, const char *exe, const char *uri, const char *paused)
{
    int64_t took = 0;
    assert (s_test_orphan (dir, exe, uri, paused, NULL, false, &took)
            == SF_GUARD_EXIT_RESUMED);
    assert (took < 30000);          //  at once, not at the deadline (600 s)
    assert (s_test_orphan (dir, exe, uri, paused, "J2", false, &took) == SF_GUARD_EXIT_IDLE);
    assert (s_test_orphan (dir, exe, uri, paused, NULL, true, &took) == SF_GUARD_EXIT_IDLE);
}

//  A real guard process (this test binary also answers --guard). Its own
//  test:// connection starts from node.xml, where 'p' is paused.

static void
s_test_spawn (const char *dir, const char *exe)
{
    sf_err_t err = SF_ERR_INIT;
    char *node = zsys_sprintf ("%s/node.xml", dir);
    FILE *file = fopen (node, "w");
    assert (file);
    fprintf (file, "<node><domain type='test' "
             "xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>p</name>"
             "<uuid>11111111-2222-3333-4444-555555555555</uuid><memory>65536</memory>"
             "<os><type>hvm</type></os><test:runstate>3</test:runstate></domain></node>\n");
    fclose (file);
    char *uri = zsys_sprintf ("test://%s", node);
    const char *paused = "11111111-2222-3333-4444-555555555555";
    char *journal = zsys_sprintf ("%s/entry", dir);
    file = fopen (journal, "w");
    assert (file);
    fclose (file);
    //  At the deadline: finds it paused, resumes it, removes the entry
    sf_proc_t *guard = sf_guard_spawn (exe, uri, paused, sf_time_now_ms () + 200,
                                       journal, true, &err);
    assert (guard);
    assert (sf_proc_wait (guard, NULL, sf_time_mono_ms () + 20000, &err) == SF_PROC_EXITED);
    assert (sf_proc_exit_code (guard) == SF_GUARD_EXIT_RESUMED);
    assert (!zsys_file_exists (journal));
    sf_proc_destroy (&guard);
    //  Told to stand down long before the deadline: acts at once
    guard = sf_guard_spawn (exe, "test:///default", "6695eb01-f6a4-8304-79aa-97f2502e193f",
                            sf_time_now_ms () + 600000, NULL, false, &err);
    assert (guard);
    zclock_sleep (100);
    int64_t start = sf_time_mono_ms ();
    assert (sf_guard_stop (&guard) == SF_GUARD_EXIT_IDLE);
    assert (guard == NULL && sf_time_mono_ms () - start < 10000);
    //  Killed as a group while its guest is paused: resumes it
    guard = sf_guard_spawn (exe, uri, paused, sf_time_now_ms () + 600000, NULL, false, &err);
    zclock_sleep (100);
    assert (sf_guard_stop (&guard) == SF_GUARD_EXIT_RESUMED);
    s_test_worker_death (dir, exe, uri, paused);
    //  Usage errors
    char *bad [] = { (char *) exe, "--guard", "--uri", NULL };
    assert (sf_guard_main (3, bad) == SF_GUARD_EXIT_USAGE);
    char *bad_fd [] = { (char *) exe, "--guard", "--uri", uri, "--domain", (char *) paused,
                        "--deadline-ms", "1", "--worker-fd", "999", NULL };
    assert (sf_guard_main (10, bad_fd) == SF_GUARD_EXIT_USAGE);
    zstr_free (&journal);
    zstr_free (&uri);
    zstr_free (&node);
}

void
sf_guard_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_guard: ");
    //  @selftest
    char dir [] = "/tmp/sf-guard-test-XXXXXX";
    assert (mkdtemp (dir));
    s_test_journal (dir);
    char exe [4096];
    ssize_t len = readlink ("/proc/self/exe", exe, sizeof (exe) - 1);
    assert (len > 0);
    exe [len] = 0;
    s_test_spawn (dir, exe);
    char *cmd = zsys_sprintf ("rm -rf %s", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    //  @end
    printf ("OK\n");
}
