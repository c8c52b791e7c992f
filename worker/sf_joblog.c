/*  =========================================================================
    sf_joblog - the worker's durable job journal

    An entry is a few "key value" lines; the result is the encoded frame in
    hex on one line. Every write replaces the whole file (sf_file_replace),
    so after a crash an entry is the old one or the new one, never a mix.
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

//  A result frame is at most an envelope; its hex twice that, plus lines
#define S_MAX_FILE  (2 * (size_t) SF_WIRE_MAX_BYTES + 4096)

//  Structure of our class

struct _sf_joblog_t {
    char *dir;                  //  Owned, <workdir>/jobs
};

SF_LOG_MODULE ("worker.joblog");

void
sf_joblog_entry_destroy (sf_joblog_entry_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zframe_destroy (&(*self_p)->result);
        free (*self_p);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Constructor and destructor

sf_joblog_t *
sf_joblog_new (const char *workdir, sf_err_t *err)
{
    assert (workdir);
    char *dir = zsys_sprintf ("%s/jobs", workdir);
    if (zsys_dir_create ("%s", dir)) {
        sf_err_set (err, SF_EIO, "cannot create '%s': %s", dir, strerror (errno));
        zstr_free (&dir);
        return NULL;
    }
    sf_joblog_t *self = (sf_joblog_t *) zmalloc (sizeof (sf_joblog_t));
    self->dir = dir;
    //  No task runs yet: a .tmp is a write that a killed run never
    //  committed (the entry before it, if any, is whole)
    DIR *handle = opendir (dir);
    struct dirent *entry;
    while (handle && (entry = readdir (handle))) {
        size_t len = strlen (entry->d_name);
        if (entry->d_name [0] != '.' && len > 4 && streq (entry->d_name + len - 4, ".tmp")
        &&  entry->d_type == DT_REG)
            unlinkat (dirfd (handle), entry->d_name, 0);
    }
    if (handle)
        closedir (handle);
    return self;
}

void
sf_joblog_destroy (sf_joblog_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->dir);
        free (*self_p);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Entries on disk

static char *
s_path (sf_joblog_t *self, const char *job_id)
{
    return zsys_sprintf ("%s/%s", self->dir, job_id);
}

static int
s_write_entry (FILE *file, void *arg)
{
    sf_joblog_entry_t *entry = (sf_joblog_entry_t *) arg;
    fprintf (file, "# snapfleet: job journal entry\n");
    fprintf (file, "job %s\nattempt %u\nuuid %s\nstrategy %s\nstate %s\npausing %d\n",
             entry->job_id, entry->attempt, entry->uuid, entry->strategy,
             entry->finished ? "finished" : "running", entry->pausing ? 1 : 0);
    if (entry->result) {
        char *hex = zframe_strhex (entry->result);
        fprintf (file, "result %s\n", hex);
        free (hex);
    }
    return ferror (file) ? -1 : 0;
}

static int
s_write (sf_joblog_t *self, sf_joblog_entry_t *entry, sf_err_t *err)
{
    char *path = s_path (self, entry->job_id);
    int rc = sf_file_replace (path, "job journal entry ", s_write_entry, entry, err);
    zstr_free (&path);
    return rc;
}

static int
s_hex (char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
         : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static zframe_t *
s_unhex (const char *text)
{
    size_t len = strlen (text);
    if (len == 0 || len % 2)
        return NULL;
    zframe_t *frame = zframe_new (NULL, len / 2);
    byte *data = zframe_data (frame);
    for (size_t i = 0; i < len / 2; i++) {
        int high = s_hex (text [2 * i]), low = s_hex (text [2 * i + 1]);
        if (high < 0 || low < 0) {
            zframe_destroy (&frame);
            return NULL;
        }
        data [i] = (byte) (high * 16 + low);
    }
    return frame;
}

//  Parse the content of an entry file named name. Returns the entry, or
//  NULL with err set (SF_EIO) if it is not a well-formed entry.

static sf_joblog_entry_t *
s_parse (const char *name, char *text, sf_err_t *err)
{
    sf_joblog_entry_t *entry = (sf_joblog_entry_t *) zmalloc (sizeof (sf_joblog_entry_t));
    bool have_state = false, have_attempt = false;
    char *save = NULL;
    for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
        char *value = strchr (line, ' ');
        if (*line == '#' || !value)
            continue;
        *value++ = 0;
        if (streq (line, "job"))
            snprintf (entry->job_id, sizeof (entry->job_id), "%s", value);
        else
        if (streq (line, "attempt"))
            have_attempt = sscanf (value, "%u", &entry->attempt) == 1;
        else
        if (streq (line, "uuid"))
            snprintf (entry->uuid, sizeof (entry->uuid), "%s", value);
        else
        if (streq (line, "strategy"))
            snprintf (entry->strategy, sizeof (entry->strategy), "%s", value);
        else
        if (streq (line, "state")) {
            have_state = streq (value, "running") || streq (value, "finished");
            entry->finished = streq (value, "finished");
        }
        else
        if (streq (line, "pausing"))
            entry->pausing = streq (value, "1");
        else
        if (streq (line, "result"))
            entry->result = s_unhex (value);
    }
    if (!streq (entry->job_id, name) || !have_attempt || !have_state
    ||  (entry->finished && !entry->result)) {
        sf_err_set (err, SF_EIO, "'%s' is not a well-formed job journal entry", name);
        sf_joblog_entry_destroy (&entry);
    }
    return entry;
}

//  Read the entry of job_id. Returns 1 and *entry_p, 0 if there is none,
//  or -1 with err set.

static int
s_read (sf_joblog_t *self, const char *job_id, sf_joblog_entry_t **entry_p, sf_err_t *err)
{
    *entry_p = NULL;
    char *path = s_path (self, job_id);
    int rc = -1;
    char *text = NULL;
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat info;
    if (fd == -1 && errno == ENOENT)
        rc = 0;
    else
    if (fd == -1 || fstat (fd, &info))
        sf_err_set (err, SF_EIO, "cannot read '%s': %s", path, strerror (errno));
    else
    if (!S_ISREG (info.st_mode) || (size_t) info.st_size > S_MAX_FILE)
        sf_err_set (err, SF_EIO, "'%s' is not a job journal entry", path);
    else {
        text = (char *) zmalloc ((size_t) info.st_size + 1);
        ssize_t got = read (fd, text, (size_t) info.st_size);
        if (got != info.st_size)
            sf_err_set (err, SF_EIO, "cannot read '%s': %s", path,
                        got < 0 ? strerror (errno) : "short read");
        else
        if ((*entry_p = s_parse (job_id, text, err)))
            rc = 1;
    }
    if (fd != -1)
        close (fd);
    free (text);
    zstr_free (&path);
    return rc;
}

//  --------------------------------------------------------------------------
//  The journal's life cycle of one job

int
sf_joblog_start (sf_joblog_t *self, const char *job_id, uint32_t attempt,
                 const char *uuid, const char *strategy, sf_err_t *err)
{
    assert (self && job_id && uuid && strategy);
    if (!sf_name_is_safe (job_id))
        return sf_err_set (err, SF_EINVAL, "job id '%s' is not a safe name", job_id);
    sf_joblog_entry_t entry = { .attempt = attempt };
    snprintf (entry.job_id, sizeof (entry.job_id), "%s", job_id);
    snprintf (entry.uuid, sizeof (entry.uuid), "%s", uuid);
    snprintf (entry.strategy, sizeof (entry.strategy), "%s", strategy);
    return s_write (self, &entry, err);
}

int
sf_joblog_pausing (sf_joblog_t *self, const char *job_id, uint32_t attempt, sf_err_t *err)
{
    if (!self)
        return 0;
    assert (job_id);
    sf_joblog_entry_t *entry = NULL;
    int rc = s_read (self, job_id, &entry, err);
    if (rc == 0 || (rc == 1 && (entry->attempt != attempt || entry->finished)))
        rc = sf_err_set (err, SF_ENOENT, "job journal has no running entry of job '%s' "
                         "(attempt %u)", job_id, attempt);
    else
    if (rc == 1) {
        entry->pausing = true;
        rc = s_write (self, entry, err);
    }
    sf_joblog_entry_destroy (&entry);
    return rc;
}

int
sf_joblog_finish (sf_joblog_t *self, const char *job_id, uint32_t attempt,
                  zframe_t *result, sf_err_t *err)
{
    assert (self && job_id && result);
    if (!sf_name_is_safe (job_id))
        return sf_err_set (err, SF_EINVAL, "job id '%s' is not a safe name", job_id);
    sf_joblog_entry_t *entry = NULL;
    if (s_read (self, job_id, &entry, err) < 0)
        return -1;
    if (!entry || entry->attempt != attempt) {
        sf_joblog_entry_destroy (&entry);
        entry = (sf_joblog_entry_t *) zmalloc (sizeof (sf_joblog_entry_t));
        snprintf (entry->job_id, sizeof (entry->job_id), "%s", job_id);
        entry->attempt = attempt;
    }
    entry->finished = true;
    zframe_destroy (&entry->result);
    entry->result = zframe_dup (result);
    int rc = s_write (self, entry, err);
    sf_joblog_entry_destroy (&entry);
    return rc;
}

bool
sf_joblog_has (sf_joblog_t *self, const char *job_id)
{
    assert (self && job_id);
    if (!sf_name_is_safe (job_id))
        return false;
    char *path = s_path (self, job_id);
    struct stat st;
    bool has = lstat (path, &st) == 0 && S_ISREG (st.st_mode);
    free (path);
    return has;
}

int
sf_joblog_forget (sf_joblog_t *self, const char *job_id, uint32_t attempt, sf_err_t *err)
{
    assert (self && job_id);
    if (!sf_name_is_safe (job_id))
        return 0;               //  never written
    sf_joblog_entry_t *entry = NULL;
    int rc = s_read (self, job_id, &entry, err);
    if (rc == 1 && entry->attempt == attempt) {
        char *path = s_path (self, job_id);
        if (unlink (path) && errno != ENOENT)
            rc = sf_err_set (err, SF_EIO, "cannot remove '%s': %s", path, strerror (errno));
        else
            sf_fsync_path (self->dir);
        zstr_free (&path);
    }
    sf_joblog_entry_destroy (&entry);
    return rc < 0 ? -1 : 0;
}

//  --------------------------------------------------------------------------
//  Reading back after a restart

static int
s_compare (const sf_joblog_entry_t *a, const sf_joblog_entry_t *b)
{
    return strcmp (a->job_id, b->job_id);
}

zlistx_t *
sf_joblog_load (sf_joblog_t *self)
{
    assert (self);
    zlistx_t *entries = zlistx_new ();
    zlistx_set_destructor (entries, (zlistx_destructor_fn *) sf_joblog_entry_destroy);
    zlistx_set_comparator (entries, (zlistx_comparator_fn *) s_compare);
    DIR *dir = opendir (self->dir);
    struct dirent *item;
    while (dir && (item = readdir (dir))) {
        const char *name = item->d_name;
        size_t len = strlen (name);
        if (*name == '.' || (len > 4 && streq (name + len - 4, ".tmp")))
            continue;
        sf_err_t err = SF_ERR_INIT;
        sf_joblog_entry_t *entry = NULL;
        if (!sf_name_is_safe (name))
            SF_WARN (NULL, "'%s/%s' is not a job journal entry (its name); left in place",
                     self->dir, name);
        else
        if (s_read (self, name, &entry, &err) < 0)
            SF_WARN (NULL, "%s; left in place", err.text);
        else
        if (entry)
            zlistx_add_end (entries, entry);
    }
    if (dir)
        closedir (dir);
    zlistx_sort (entries);
    return entries;
}

zframe_t *
sf_joblog_lost_result (const sf_joblog_entry_t *entry, const char *node)
{
    assert (entry && node);
    char text [512];
    snprintf (text, sizeof (text), "worker on node '%s' was restarted during job '%s' "
              "(attempt %u)%s", node, entry->job_id, entry->attempt,
              entry->pausing ? "" : "; it had not paused the guest");
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    error.code = SF_ENODE;
    error.text = text;
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = (char *) entry->job_id;
    result.attempt = entry->attempt;
    result.strategy = (char *) entry->strategy;
    result.consistency = streq (entry->strategy, "offline") ? "offline" : "paused";
    result.error = &error;
    result.retryable = !entry->pausing;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    sf_err_t err = SF_ERR_INIT;
    zframe_t *frame = sf_wire_encode (&env, &err);
    assert (frame);             //  our own message: always encodes
    return frame;
}

//  --------------------------------------------------------------------------
//  Self test

void
sf_joblog_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_joblog: ");
    //  @selftest
    char dir [] = "/tmp/sf_joblog_test.XXXXXX";
    assert (mkdtemp (dir));
    sf_err_t err = SF_ERR_INIT;
    sf_joblog_t *log = sf_joblog_new (dir, &err);
    assert (log);
    //  Job ids come from the wire: an unsafe one is refused, nothing written
    assert (sf_joblog_start (log, "../x", 1, "u", "file-cold", &err) == -1);
    assert (err.code == SF_EINVAL);
    //  Start, pause mark, finish; another attempt's mark is refused
    assert (sf_joblog_start (log, "J1", 2, "uuid-1", "file-cold", &err) == 0);
    assert (sf_joblog_start (log, "J2", 1, "uuid-2", "offline", &err) == 0);
    assert (sf_joblog_pausing (log, "J1", 1, &err) == -1 && err.code == SF_ENOENT);
    assert (sf_joblog_pausing (log, "J1", 2, &err) == 0);
    assert (sf_joblog_pausing (NULL, "J1", 2, &err) == 0);
    zframe_t *result = zframe_new ("\x00\x01\xfe\xff result", 11);
    assert (sf_joblog_finish (log, "J1", 2, result, &err) == 0);
    //  A planted .tmp (an interrupted write) goes when the journal opens;
    //  a file that is no entry stays, unread
    char *tmp = zsys_sprintf ("%s/jobs/J3.tmp", dir);
    char *junk = zsys_sprintf ("%s/jobs/J9", dir);
    FILE *file = fopen (tmp, "w");
    fputs ("job J3\n", file);
    fclose (file);
    file = fopen (junk, "w");
    fputs ("not an entry\n", file);
    fclose (file);
    sf_joblog_destroy (&log);
    assert (log == NULL);
    log = sf_joblog_new (dir, &err);
    assert (log && access (tmp, F_OK) == -1 && access (junk, F_OK) == 0);
    zlistx_t *entries = sf_joblog_load (log);
    assert (zlistx_size (entries) == 2);
    sf_joblog_entry_t *entry = (sf_joblog_entry_t *) zlistx_first (entries);
    assert (streq (entry->job_id, "J1") && entry->attempt == 2 && entry->finished);
    assert (entry->pausing && streq (entry->uuid, "uuid-1"));
    assert (zframe_eq (entry->result, result));
    entry = (sf_joblog_entry_t *) zlistx_next (entries);
    assert (streq (entry->job_id, "J2") && !entry->finished && !entry->pausing);
    assert (entry->result == NULL && streq (entry->strategy, "offline"));
    //  A running entry after a restart: a failed, retryable result (it
    //  never paused)
    zframe_t *lost = sf_joblog_lost_result (entry, "n1");
    sf_envelope_t *env = sf_wire_decode (lost, &err);
    assert (env && env->body_case == SF_BODY_JOB_RESULT);
    assert (!env->job_result->ok && env->job_result->retryable);
    assert (env->job_result->error->code == SF_ENODE);
    assert (strstr (env->job_result->error->text, "worker on node 'n1' was restarted "
                    "during job 'J2' (attempt 1)"));
    sf_wire_free (&env);
    assert (sf_joblog_finish (log, "J2", 1, lost, &err) == 0);
    zframe_destroy (&lost);
    zlistx_destroy (&entries);
    //  Forgotten once acknowledged, only for its own attempt
    assert (sf_joblog_forget (log, "J1", 1, &err) == 0);
    entries = sf_joblog_load (log);
    assert (zlistx_size (entries) == 2);
    zlistx_destroy (&entries);
    assert (sf_joblog_has (log, "J1"));
    assert (sf_joblog_forget (log, "J1", 2, &err) == 0);
    assert (!sf_joblog_has (log, "J1") && !sf_joblog_has (log, "../x"));
    assert (sf_joblog_forget (log, "J1", 2, &err) == 0);       //  gone: fine
    assert (sf_joblog_forget (log, "../x", 1, &err) == 0);
    entries = sf_joblog_load (log);
    assert (zlistx_size (entries) == 1);
    zlistx_destroy (&entries);
    //  A symlink planted as an entry is not followed
    char *link = zsys_sprintf ("%s/jobs/J7", dir);
    assert (symlink (junk, link) == 0);
    sf_joblog_entry_t *none = NULL;
    assert (s_read (log, "J7", &none, &err) == -1 && none == NULL);
    zframe_destroy (&result);
    sf_joblog_destroy (&log);
    unlink (link);
    unlink (junk);
    char *j2 = zsys_sprintf ("%s/jobs/J2", dir);
    unlink (j2);
    char *jobs = zsys_sprintf ("%s/jobs", dir);
    assert (rmdir (jobs) == 0);
    assert (rmdir (dir) == 0);
    zstr_free (&jobs);
    zstr_free (&j2);
    zstr_free (&link);
    zstr_free (&tmp);
    zstr_free (&junk);
    //  @end
    printf ("OK\n");
}
