/*  =========================================================================
    sf_leftover - the Ceph objects journal and its sweeper

    Claims are a set of job ids under one mutex; a condition variable wakes
    a task waiting for the sweeper to let go of its job. Ceph calls never
    run under the mutex.
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_stor_fake.h"                //  the self-test's cluster

#include <dirent.h>
#include <pthread.h>
#include <unistd.h>

#define S_MAX_OBJECTS   (2 * SF_WIRE_MAX_DISKS)

//  Structure of our class

struct _sf_leftover_t {
    char *dir;                      //  Owned, <workdir>/leftovers
    sf_stor_t *stor;                //  Borrowed from the agent, may be NULL
    int64_t settle_ms;              //  a cleaned entry waits this long
    pthread_mutex_t lock;
    pthread_cond_t released;
    zhashx_t *claims;               //  job ids claimed (value unused)
    zhashx_t *failures;             //  job id -> last sweep error (owned strings)
};

SF_LOG_MODULE ("worker.leftover");

//  --------------------------------------------------------------------------
//  Constructor

sf_leftover_t *
sf_leftover_new (const char *workdir, sf_stor_t *stor, int64_t settle_ms, sf_err_t *err)
{
    assert (workdir);
    char *dir = zsys_sprintf ("%s/leftovers", workdir);
    if (zsys_dir_create ("%s", dir)) {
        sf_err_set (err, SF_EIO, "cannot create '%s': %s", dir, strerror (errno));
        zstr_free (&dir);
        return NULL;
    }
    sf_leftover_t *self = (sf_leftover_t *) zmalloc (sizeof (sf_leftover_t));
    self->dir = dir;
    self->stor = stor;
    self->settle_ms = settle_ms;
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->released, NULL);
    self->claims = zhashx_new ();
    self->failures = zhashx_new ();
    zhashx_set_destructor (self->failures, (zhashx_destructor_fn *) zstr_free);
    zhashx_set_duplicator (self->failures, (zhashx_duplicator_fn *) strdup);
    return self;
}

//  --------------------------------------------------------------------------
//  Destructor

void
sf_leftover_destroy (sf_leftover_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_leftover_t *self = *self_p;
        zhashx_destroy (&self->claims);
        zhashx_destroy (&self->failures);
        pthread_cond_destroy (&self->released);
        pthread_mutex_destroy (&self->lock);
        free (self->dir);
        free (self);
        *self_p = NULL;
    }
}

char *
sf_leftover_path (sf_leftover_t *self, const char *job_id)
{
    assert (self && job_id);
    return zsys_sprintf ("%s/%s", self->dir, job_id);
}

//  --------------------------------------------------------------------------
//  Entries on disk

//  What an entry holds
typedef struct {
    const char *job_id;
    const char *catalog_id;
    const sf_stor_obj_t *objs;
    size_t count;
    int64_t cleaned_at;
} entry_t;

static int
s_write_entry (FILE *file, void *arg)
{
    entry_t *entry = (entry_t *) arg;
    fprintf (file, "# snapfleet: Ceph objects of job '%s' to remove\n", entry->job_id);
    fprintf (file, "catalog %s\n", entry->catalog_id);
    if (entry->cleaned_at)
        fprintf (file, "# cleaned at %" PRId64 "\n", entry->cleaned_at);
    for (size_t i = 0; i < entry->count; i++) {
        char line [600];
        fprintf (file, "%s\n", sf_stor_obj_str (&entry->objs [i], line, sizeof (line)));
    }
    return ferror (file) ? -1 : 0;
}

static int
s_write (sf_leftover_t *self, const char *job_id, const char *catalog_id,
         const sf_stor_obj_t *objs, size_t count, int64_t cleaned_at, sf_err_t *err)
{
    char *path = sf_leftover_path (self, job_id);
    entry_t entry = { job_id, catalog_id, objs, count, cleaned_at };
    int rc = sf_file_replace (path, "", s_write_entry, &entry, err);
    zstr_free (&path);
    return rc;
}

static int
s_remove (sf_leftover_t *self, const char *job_id, sf_err_t *err)
{
    char *path = sf_leftover_path (self, job_id);
    int rc = 0;
    if (unlink (path) && errno != ENOENT)
        rc = sf_err_set (err, SF_EIO, "cannot remove '%s': %s", path, strerror (errno));
    else
        sf_fsync_path (self->dir);
    zstr_free (&path);
    return rc;
}

//  Read job_id's entry into objs (up to S_MAX_OBJECTS) and its catalogue
//  id into catalog ("" if it has none). Returns the count, 0 if there is
//  no entry, or -1 with err.

static int
s_read (sf_leftover_t *self, const char *job_id, sf_stor_obj_t *objs,
        char catalog [SF_NAMING_ID_LEN + 1], int64_t *cleaned_at, sf_err_t *err)
{
    *cleaned_at = 0;
    *catalog = 0;
    char *path = sf_leftover_path (self, job_id);
    FILE *file = fopen (path, "re");
    if (!file) {
        int rc = errno == ENOENT ? 0 : sf_err_set (err, SF_EIO, "cannot read '%s': %s",
                                                   path, strerror (errno));
        zstr_free (&path);
        return rc;
    }
    char line [1024];
    int count = 0, rc = 0, number = 0;
    while (rc == 0 && fgets (line, sizeof (line), file)) {
        number++;
        long long when;
        if (sscanf (line, "# cleaned at %lld", &when) == 1)
            *cleaned_at = (int64_t) when;
        if (*line == '#' || *line == '\n')
            continue;
        if (strncmp (line, "catalog ", 8) == 0) {
            line [strcspn (line, "\n")] = 0;
            if (strlen (line + 8) == SF_NAMING_ID_LEN)
                memcpy (catalog, line + 8, SF_NAMING_ID_LEN + 1);
            continue;
        }
        if (count == S_MAX_OBJECTS)
            rc = sf_err_set (err, SF_EIO, "'%s' lists too many objects", path);
        else
        if (sf_stor_obj_parse (line, &objs [count++], err))
            rc = sf_err_prefix (err, "%s:%d", path, number);
    }
    fclose (file);
    zstr_free (&path);
    return rc ? -1 : count;
}

//  --------------------------------------------------------------------------
//  Claims

static void
s_claim (sf_leftover_t *self, const char *job_id)
{
    pthread_mutex_lock (&self->lock);
    while (zhashx_lookup (self->claims, job_id))
        pthread_cond_wait (&self->released, &self->lock);
    zhashx_insert (self->claims, job_id, (void *) 1);
    pthread_mutex_unlock (&self->lock);
}

//  Claim only if free; returns true if claimed

static bool
s_try_claim (sf_leftover_t *self, const char *job_id)
{
    pthread_mutex_lock (&self->lock);
    bool free_ = !zhashx_lookup (self->claims, job_id);
    if (free_)
        zhashx_insert (self->claims, job_id, (void *) 1);
    pthread_mutex_unlock (&self->lock);
    return free_;
}

void
sf_leftover_release (sf_leftover_t *self, const char *job_id)
{
    assert (self && job_id);
    pthread_mutex_lock (&self->lock);
    zhashx_delete (self->claims, job_id);
    pthread_cond_broadcast (&self->released);
    pthread_mutex_unlock (&self->lock);
}

int
sf_leftover_claim (sf_leftover_t *self, const char *job_id, sf_err_t *err)
{
    assert (self && job_id);
    s_claim (self, job_id);
    char *path = sf_leftover_path (self, job_id);
    bool earlier = zsys_file_exists (path);
    zstr_free (&path);
    if (earlier && sf_leftover_clean (self, job_id, false, err)) {
        sf_leftover_release (self, job_id);
        return sf_err_prefix (err, "cannot remove what an earlier attempt of job '%s' "
                              "left", job_id);
    }
    sf_logctx_t ctx = { job_id, NULL, NULL };
    if (earlier)
        SF_NOTICE (&ctx, "removed the Ceph objects an earlier attempt of this job left");
    return 0;
}

//  --------------------------------------------------------------------------
//  Record, clean, forget

int
sf_leftover_record (sf_leftover_t *self, const char *job_id, const char *catalog_id,
                    const sf_stor_obj_t *objs, size_t count, sf_err_t *err)
{
    assert (self && job_id && catalog_id && (objs || count == 0));
    assert (count <= S_MAX_OBJECTS);
    return s_write (self, job_id, catalog_id, objs, count, 0, err);
}

int
sf_leftover_forget (sf_leftover_t *self, const char *job_id, sf_err_t *err)
{
    assert (self && job_id);
    return s_remove (self, job_id, err);
}

//  Objects text for logs: "clone a/b, snap a/c@d"

static void
s_objs_text (const sf_stor_obj_t *objs, size_t count, char *buf, size_t size)
{
    *buf = 0;
    for (size_t i = 0; i < count; i++) {
        char line [600];
        size_t len = strlen (buf);
        snprintf (buf + len, size - len, "%s%s", i ? ", " : "",
                  sf_stor_obj_str (&objs [i], line, sizeof (line)));
    }
}

int
sf_leftover_clean (sf_leftover_t *self, const char *job_id, bool settle, sf_err_t *err)
{
    assert (self && job_id);
    sf_stor_obj_t *objs = (sf_stor_obj_t *) zmalloc (S_MAX_OBJECTS * sizeof (sf_stor_obj_t));
    sf_stor_obj_t *left = (sf_stor_obj_t *) zmalloc (S_MAX_OBJECTS * sizeof (sf_stor_obj_t));
    sf_logctx_t ctx = { job_id, NULL, NULL };
    int64_t cleaned_at = 0;
    char catalog [SF_NAMING_ID_LEN + 1];
    int count = s_read (self, job_id, objs, catalog, &cleaned_at, err);
    int rc = count < 0 ? -1 : 0;
    size_t n_left = 0;
    if (count > 0 && !self->stor) {
        rc = sf_err_set (err, SF_ENOTSUP, "cannot remove the Ceph objects of job '%s': "
                         "RBD support is off ([storage.rbd] ceph_conf is empty)", job_id);
        count = -1;
    }
    //  Clones first (a snapshot with clones cannot be unprotected)
    bool away = false;
    for (int pass = 0; count > 0 && pass < 2; pass++)
        for (int i = 0; i < count; i++) {
            if ((pass == 0) != (objs [i].kind == SF_STOR_CLONE))
                continue;
            sf_err_t obj_err = SF_ERR_INIT;
            if (away || sf_stor_obj_remove (self->stor, &objs [i], catalog, job_id,
                                            &obj_err)) {
                left [n_left++] = objs [i];
                if (rc == 0)
                    *err = obj_err;
                rc = -1;
                away = away || obj_err.code == SF_ETIMEDOUT;
            }
        }
    int64_t now = sf_time_now_ms ();
    bool settled = !settle || count == 0 || (cleaned_at && now - cleaned_at >= self->settle_ms);
    if (count >= 0 && rc == 0 && settled) {
        if (s_remove (self, job_id, err))
            rc = -1;
    }
    else
    if (count > 0 && rc == 0 && !cleaned_at) {
        //  Gone now; a late creation is caught by the clean after settle_ms
        if (s_write (self, job_id, catalog, objs, (size_t) count, now, err))
            rc = -1;
    }
    else
    if (count > 0 && rc && n_left < (size_t) count) {
        sf_err_t write_err = SF_ERR_INIT;
        if (s_write (self, job_id, catalog, left, n_left, cleaned_at, &write_err))
            SF_ERROR (&ctx, "%s", write_err.text);
    }
    if (count > 0 && rc == 0) {
        char text [1024];
        s_objs_text (objs, (size_t) count, text, sizeof (text));
        SF_DEBUG (&ctx, "removed %s%s", text, settled ? "" : " (the entry settles)");
    }
    free (left);
    free (objs);
    return rc;
}

//  --------------------------------------------------------------------------
//  Sweeping

size_t
sf_leftover_count (sf_leftover_t *self)
{
    assert (self);
    size_t count = 0;
    DIR *dir = opendir (self->dir);
    struct dirent *entry;
    while (dir && (entry = readdir (dir)))
        if (entry->d_name [0] != '.' && !strstr (entry->d_name, ".tmp"))
            count++;
    if (dir)
        closedir (dir);
    return count;
}

//  Entries now on disk (names), removing the uncommitted .tmp files of
//  jobs that no task runs (a running task may be writing its own)

static zlistx_t *
s_entries (sf_leftover_t *self)
{
    zlistx_t *names = zlistx_new ();
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    DIR *dir = opendir (self->dir);
    struct dirent *entry;
    while (dir && (entry = readdir (dir))) {
        if (entry->d_name [0] == '.')
            continue;
        size_t len = strlen (entry->d_name);
        if (len > 4 && streq (entry->d_name + len - 4, ".tmp")) {
            char *job_id = strdup (entry->d_name);
            job_id [len - 4] = 0;
            if (s_try_claim (self, job_id)) {
                char *path = zsys_sprintf ("%s/%s", self->dir, entry->d_name);
                unlink (path);  //  never committed: nothing was created after it
                zstr_free (&path);
                sf_leftover_release (self, job_id);
            }
            zstr_free (&job_id);
        }
        else
            zlistx_add_end (names, strdup (entry->d_name));
    }
    if (dir)
        closedir (dir);
    return names;
}

int
sf_leftover_sweep (sf_leftover_t *self)
{
    assert (self);
    int cleaned = 0;
    zlistx_t *names = s_entries (self);
    for (char *job_id = (char *) zlistx_first (names); job_id;
         job_id = (char *) zlistx_next (names)) {
        if (!s_try_claim (self, job_id))
            continue;           //  a task runs this job
        sf_logctx_t ctx = { job_id, NULL, NULL };
        sf_stor_obj_t *objs = (sf_stor_obj_t *) zmalloc (S_MAX_OBJECTS * sizeof (*objs));
        sf_err_t err = SF_ERR_INIT;
        int64_t cleaned_at = 0;
        char catalog [SF_NAMING_ID_LEN + 1];
        int count = s_read (self, job_id, objs, catalog, &cleaned_at, &err);
        char text [1024] = "";
        if (count > 0)
            s_objs_text (objs, (size_t) count, text, sizeof (text));
        free (objs);
        if (cleaned_at && sf_time_now_ms () - cleaned_at < self->settle_ms) {
            sf_leftover_release (self, job_id);
            continue;           //  settling: not yet
        }
        int rc = count < 0 ? -1 : sf_leftover_clean (self, job_id, true, &err);
        pthread_mutex_lock (&self->lock);
        const char *before = (const char *) zhashx_lookup (self->failures, job_id);
        bool news = rc && (!before || !streq (before, err.text));
        if (rc)
            zhashx_update (self->failures, job_id, err.text);
        else
            zhashx_delete (self->failures, job_id);
        pthread_mutex_unlock (&self->lock);
        if (rc == 0 && cleaned_at)
            SF_DEBUG (&ctx, "no late creation of what the job left in Ceph; entry dropped");
        else
        if (rc == 0) {
            cleaned++;
            SF_NOTICE (&ctx, "cleaned up what the job left in Ceph: %s",
                       count ? text : "nothing");
        }
        else
        if (news)
            SF_WARN (&ctx, "cannot clean up what the job left in Ceph yet (will retry): %s",
                     err.text);
        sf_leftover_release (self, job_id);
        if (rc && err.code == SF_ETIMEDOUT)
            break;              //  the cluster is away: the other entries wait too
    }
    zlistx_destroy (&names);
    return cleaned;
}

void
sf_leftover_actor (zsock_t *pipe, void *args)
{
    sf_leftover_t *self = (sf_leftover_t *) args;
    zsock_signal (pipe, 0);
    while (true) {
        char *command = zstr_recv (pipe);
        if (!command || streq (command, "$TERM")) {
            zstr_free (&command);
            break;
        }
        bool stop = false;
        while (zsock_events (pipe) & ZMQ_POLLIN) {      //  merge queued SWEEPs
            char *next = zstr_recv (pipe);
            stop = !next || streq (next, "$TERM");
            zstr_free (&next);
            if (stop)
                break;
        }
        if (stop) {
            zstr_free (&command);
            break;
        }
        if (streq (command, "SWEEP"))
            sf_leftover_sweep (self);
        zstr_free (&command);
    }
}

//  --------------------------------------------------------------------------
//  Self test

#define S_CAT           "0123456789abcdef"
#define S_SNAP(job)     "snapfleet-" S_CAT "-" job

void
sf_leftover_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_leftover: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    char dir [] = "/tmp/sf-leftover-test-XXXXXX";
    assert (mkdtemp (dir));
    sf_stor_fake_t *fake = sf_stor_fake_new ();
    sf_stor_fake_add (fake, "rbd/vm1", 1 << 20);
    sf_stor_cfg_t cfg = { NULL, "/c.conf", "admin", "", 200 };
    sf_stor_t *stor = sf_stor_new_with (&cfg, &sf_stor_fake_driver, fake, &err);
    assert (stor);
    sf_leftover_t *left = sf_leftover_new (dir, stor, 300, &err);
    assert (left && sf_leftover_count (left) == 0);

    //  A job records, creates, and forgets (clone mode success)
    sf_stor_obj_t objs [2];
    assert (sf_stor_obj_parse ("snap rbd/vm1@" S_SNAP ("J1"), &objs [0], &err) == 0);
    assert (sf_stor_obj_parse ("clone rbd/vm1-" S_SNAP ("J1"), &objs [1], &err) == 0);
    assert (sf_leftover_claim (left, "J1", &err) == 0);
    assert (sf_leftover_record (left, "J1", S_CAT, objs, 2, &err) == 0);
    assert (sf_leftover_count (left) == 1);
    char *path = sf_leftover_path (left, "J1");
    char *cmd = zsys_sprintf ("grep -q '^snap rbd/vm1@" S_SNAP ("J1") "$' %s && "
                              "grep -q '^clone rbd/vm1-" S_SNAP ("J1") "$' %s && "
                              "grep -q '^catalog " S_CAT "$' %s", path, path, path);
    assert (system (cmd) == 0);         //  test check only
    zstr_free (&cmd);
    assert (sf_stor_snap_create (stor, &objs [0].spec, objs [0].snap, &err) == 0);
    assert (sf_stor_snap_protect (stor, &objs [0].spec, objs [0].snap, &err) == 0);
    assert (sf_stor_clone (stor, &objs [0].spec, objs [0].snap, &objs [1].spec, &err) == 0);
    //  The sweeper leaves a claimed job alone
    assert (sf_leftover_sweep (left) == 0 && sf_stor_fake_objects (fake) == 2);
    assert (sf_leftover_forget (left, "J1", &err) == 0);
    sf_leftover_release (left, "J1");
    assert (sf_leftover_count (left) == 0 && sf_stor_fake_objects (fake) == 2);

    //  A failed job cleans up, clones first, whatever the recorded order
    assert (sf_leftover_claim (left, "J2", &err) == 0);
    sf_stor_obj_t j2 [2] = { objs [0], objs [1] };
    snprintf (j2 [0].snap, sizeof (j2 [0].snap), S_SNAP ("J2"));
    snprintf (j2 [1].spec.image, sizeof (j2 [1].spec.image), "vm1-" S_SNAP ("J2"));
    assert (sf_leftover_record (left, "J2", S_CAT, j2, 2, &err) == 0);
    assert (sf_stor_snap_create (stor, &j2 [0].spec, j2 [0].snap, &err) == 0);
    assert (sf_stor_snap_protect (stor, &j2 [0].spec, j2 [0].snap, &err) == 0);
    assert (sf_stor_clone (stor, &j2 [0].spec, j2 [0].snap, &j2 [1].spec, &err) == 0);
    assert (sf_leftover_clean (left, "J2", false, &err) == 0);
    assert (sf_stor_fake_objects (fake) == 2 && sf_leftover_count (left) == 0);
    sf_leftover_release (left, "J2");

    //  Ceph unreachable: the entry stays; the sweeper cleans it later
    assert (sf_leftover_claim (left, "J3", &err) == 0);
    snprintf (j2 [0].snap, sizeof (j2 [0].snap), S_SNAP ("J3"));
    assert (sf_leftover_record (left, "J3", S_CAT, j2, 1, &err) == 0);
    assert (sf_stor_snap_create (stor, &j2 [0].spec, j2 [0].snap, &err) == 0);
    sf_stor_fake_hang (fake, true);
    assert (sf_leftover_clean (left, "J3", true, &err) == -1 && err.code == SF_ETIMEDOUT);
    assert (strstr (err.text, "ceph: removal of snapshot 'rbd/vm1@" S_SNAP ("J3")
                    "' timed out"));
    sf_leftover_release (left, "J3");
    assert (sf_leftover_count (left) == 1);
    assert (sf_leftover_sweep (left) == 0 && sf_leftover_count (left) == 1);
    sf_stor_fake_hang (fake, false);
    for (int i = 0; i < 500 && sf_stor_hung (stor); i++)
        zclock_sleep (10);
    //  Back: the sweep removes the objects; the entry settles (a creation
    //  that was stuck in the cluster may still land) and goes later
    assert (sf_leftover_sweep (left) == 1 && sf_leftover_count (left) == 1);
    assert (!sf_stor_fake_has (fake, "rbd/vm1@" S_SNAP ("J3")));
    cmd = zsys_sprintf ("grep -q '^# cleaned at ' %s/leftovers/J3", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    assert (sf_stor_snap_create (stor, &j2 [0].spec, j2 [0].snap, &err) == 0);   //  late
    assert (sf_leftover_sweep (left) == 0 && sf_leftover_count (left) == 1);    //  too soon
    zactor_t *sweeper = zactor_new (sf_leftover_actor, left);
    for (int i = 0; i < 500 && sf_leftover_count (left); i++) {
        zstr_send (sweeper, "SWEEP");
        zclock_sleep (20);
    }
    assert (sf_leftover_count (left) == 0);
    assert (!sf_stor_fake_has (fake, "rbd/vm1@" S_SNAP ("J3")));
    zactor_destroy (&sweeper);

    //  A new attempt removes what an earlier one left before it starts
    snprintf (j2 [0].snap, sizeof (j2 [0].snap), S_SNAP ("J4"));
    assert (sf_leftover_record (left, "J4", S_CAT, j2, 1, &err) == 0);
    assert (sf_stor_snap_create (stor, &j2 [0].spec, j2 [0].snap, &err) == 0);
    assert (sf_leftover_claim (left, "J4", &err) == 0);
    assert (sf_leftover_count (left) == 0 && !sf_stor_fake_has (fake, "rbd/vm1@" S_SNAP ("J4")));
    sf_leftover_release (left, "J4");
    //  ... and refuses to start if it cannot
    assert (sf_leftover_record (left, "J4", S_CAT, j2, 1, &err) == 0);
    sf_stor_fake_fail (fake, "snap_remove", EACCES);
    assert (sf_stor_snap_create (stor, &j2 [0].spec, j2 [0].snap, &err) == 0);
    assert (sf_leftover_claim (left, "J4", &err) == -1 && err.code == SF_ECEPH);
    assert (strstr (err.text, "earlier attempt of job 'J4'"));
    assert (strstr (err.text, "Permission denied"));
    assert (sf_leftover_claim (left, "J4", &err) == 0);   //  the claim was given up
    sf_leftover_release (left, "J4");

    //  Uncommitted and unreadable entries
    cmd = zsys_sprintf ("touch %s/leftovers/J9.tmp && echo 'volume x' > %s/leftovers/J8",
                        dir, dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    assert (sf_leftover_sweep (left) == 0 && sf_leftover_count (left) == 1);
    assert (sf_leftover_clean (left, "J8", true, &err) == -1 && err.code == SF_EINVAL);
    assert (strstr (err.text, "J8:1"));
    assert (sf_leftover_forget (left, "J8", &err) == 0);

    //  An entry never removes what its job did not make: another job's
    //  snapshot, one not named by snapfleet, the source image as a
    //  "clone"; nor anything when it has no catalogue id
    sf_stor_obj_t bad [3];
    assert (sf_stor_obj_parse ("snap rbd/vm1@" S_SNAP ("J6"), &bad [0], &err) == 0);
    assert (sf_stor_obj_parse ("snap rbd/vm1@manual", &bad [1], &err) == 0);
    assert (sf_stor_obj_parse ("clone rbd/vm1", &bad [2], &err) == 0);
    assert (sf_stor_snap_create (stor, &bad [0].spec, bad [0].snap, &err) == 0);
    assert (sf_stor_snap_create (stor, &bad [1].spec, bad [1].snap, &err) == 0);
    assert (sf_leftover_record (left, "J5", S_CAT, bad, 3, &err) == 0);
    assert (sf_leftover_clean (left, "J5", false, &err) == -1 && err.code == SF_EINVAL);
    assert (strstr (err.text, "is not one snapfleet made for job J5; not deleted"));
    assert (sf_leftover_sweep (left) == 0 && sf_leftover_count (left) == 1);
    assert (sf_stor_fake_has (fake, "rbd/vm1@" S_SNAP ("J6")));
    assert (sf_stor_fake_has (fake, "rbd/vm1@manual") && sf_stor_fake_has (fake, "rbd/vm1"));
    assert (sf_leftover_forget (left, "J5", &err) == 0);
    cmd = zsys_sprintf ("echo 'snap rbd/vm1@" S_SNAP ("J6") "' > %s/leftovers/J6", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    assert (sf_leftover_clean (left, "J6", false, &err) == -1 && err.code == SF_EINVAL);
    assert (sf_stor_fake_has (fake, "rbd/vm1@" S_SNAP ("J6")));
    assert (sf_leftover_forget (left, "J6", &err) == 0);
    assert (sf_stor_snap_remove (stor, &bad [0].spec, bad [0].snap, &err) == 0);
    assert (sf_stor_snap_remove (stor, &bad [1].spec, bad [1].snap, &err) == 0);

    sf_leftover_destroy (&left);
    sf_stor_destroy (&stor);
    for (int i = 0; i < 500 && sf_stor_fake_active (fake); i++)
        zclock_sleep (10);
    assert (sf_stor_fake_objects (fake) == 2);      //  J1's product
    sf_stor_fake_destroy (&fake);
    zstr_free (&path);
    cmd = zsys_sprintf ("rm -rf %s", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    //  @end
    printf ("OK\n");
}
