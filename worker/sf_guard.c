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

#include <jansson.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

SF_LOG_MODULE ("worker.guard");

#define S_CONNECT_TRIES 30      //  guard: one a second if libvirtd is away
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
    char deadline [32];
    snprintf (deadline, sizeof (deadline), "%" PRId64, deadline_ms);
    char *argv [12];
    int argc = 0;
    argv [argc++] = (char *) exe;
    argv [argc++] = "--guard";
    argv [argc++] = "--uri";
    argv [argc++] = (char *) uri;
    argv [argc++] = "--domain";
    argv [argc++] = (char *) uuid;
    argv [argc++] = "--deadline-ms";
    argv [argc++] = deadline;
    if (journal) {
        argv [argc++] = "--journal";
        argv [argc++] = (char *) journal;
    }
    if (thaw)
        argv [argc++] = "--thaw";
    argv [argc] = NULL;
    sf_proc_t *guard = sf_proc_new (argv, SF_PROC_NEWPGRP | SF_PROC_BLOCKTERM, err);
    if (!guard)
        sf_err_prefix (err, "cannot start the pause guard");
    return guard;
}

int
sf_guard_stop (sf_proc_t **guard_p)
{
    assert (guard_p);
    if (!*guard_p)
        return -1;
    sf_proc_stop (*guard_p, 15000);
    int code = sf_proc_exit_code (*guard_p);
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
    bool thaw;
} guard_args_t;

static int
s_guard_args (int argc, char *argv [], guard_args_t *args)
{
    memset (args, 0, sizeof (*args));
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
            return -1;
        argn++;
    }
    return args->uri && args->uuid && args->deadline_ms > 0 ? 0 : -1;
}

//  Sleep until the deadline or one of the blocked signals. Returns the
//  signal, or 0 at the deadline.

static int
s_guard_sleep (const sigset_t *signals, int64_t deadline_ms)
{
    while (true) {
        int64_t left = deadline_ms - sf_time_now_ms ();
        if (left <= 0)
            return 0;
        struct timespec wait = { left / 1000, (left % 1000) * 1000000 };
        int signum = sigtimedwait (signals, NULL, &wait);
        if (signum > 0)
            return signum;
    }
}

//  Connect (retrying while libvirtd is away), check, resume if paused

static int
s_guard_act (const guard_args_t *args, sf_logctx_t *ctx, int signum)
{
    sf_err_t err = SF_ERR_INIT;
    for (int attempt = 0; attempt < S_CONNECT_TRIES; attempt++) {
        if (attempt)
            sleep (1);
        sf_hv_t *hv = sf_hv_new (args->uri, &err);
        if (!hv)
            continue;
        int rc = sf_guard_check (hv, args->uuid, args->thaw, &err);
        sf_hv_destroy (&hv);
        if (args->thaw && !signum && rc != -1)
            SF_ERROR (ctx, "PAUSE GUARD: max_pause deadline reached; thawed the filesystems "
                      "of domain '%s'", args->uuid);
        if (rc == 0 || (rc == -1 && err.code == SF_ENOENT))
            return SF_GUARD_EXIT_IDLE;
        if (rc == 1) {
            SF_ERROR (ctx, "PAUSE GUARD: domain '%s' was still paused %s; resumed it",
                      args->uuid, signum ? "when the guard was told to stop"
                                         : "at its max_pause deadline");
            if (args->journal)
                unlink (args->journal);
            return SF_GUARD_EXIT_RESUMED;
        }
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
                 "--deadline-ms EPOCH_MS [--journal PATH] [--thaw]\n");
        return SF_GUARD_EXIT_USAGE;
    }
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGHUP);
    sigprocmask (SIG_BLOCK, &signals, NULL);
    sf_logctx_t ctx = { NULL, NULL, args.uuid };
    int signum = s_guard_sleep (&signals, args.deadline_ms);
    SF_DEBUG (&ctx, "pause guard woke up (%s)", signum ? strsignal (signum) : "deadline");
    return s_guard_act (&args, &ctx, signum);
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
    //  Usage errors
    char *bad [] = { (char *) exe, "--guard", "--uri", NULL };
    assert (sf_guard_main (3, bad) == SF_GUARD_EXIT_USAGE);
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
