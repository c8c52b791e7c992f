/*  =========================================================================
    sf_reconcile - what snapfleet made on this node, listed and removed for
    the scheduler's reconciler (see sf_reconcile.h)
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_stor_fake.h"                //  the self-test's cluster

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

SF_LOG_MODULE ("worker.reconcile");

//  Holdings listed at most (the wire's cap)
#define S_MAX SF_WIRE_MAX_HOLDINGS

//  --------------------------------------------------------------------------
//  Holdings

sf_holding_t *
sf_holding_new (int kind, const char *name, const char *job_id, uint64_t bytes,
                uint64_t age_ms)
{
    sf_holding_t *self = (sf_holding_t *) zmalloc (sizeof (sf_holding_t));
    *self = (sf_holding_t) SF_HOLDING_INIT;
    self->kind = (Sf__V1__HoldingKind) kind;
    self->name = strdup (name);
    self->job_id = strdup (job_id);
    self->error = strdup ("");
    self->bytes = bytes;
    self->age_ms = age_ms;
    return self;
}

void
sf_holding_destroy (sf_holding_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_holding_t *self = *self_p;
        free (self->name);
        free (self->job_id);
        free (self->error);
        free (self);
        *self_p = NULL;
    }
}

static void
s_holding_free (void **item)
{
    sf_holding_destroy ((sf_holding_t **) item);
}

static zlistx_t *
s_holdings_new (void)
{
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, s_holding_free);
    return list;
}

static uint64_t
s_age (int64_t now_ms, int64_t then_ms)
{
    return now_ms > then_ms ? (uint64_t) (now_ms - then_ms) : 0;
}

static int64_t
s_mtime_ms (const struct stat *st)
{
    return (int64_t) st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

//  --------------------------------------------------------------------------
//  The dir image store

//  One image id's files
typedef struct {
    bool json, pending, image;  //  image: <id>.qcow2 is there
    uint64_t bytes;             //  .qcow2 and .qcow2.tmp
    int64_t mtime_ms;           //  newest
    int64_t json_mtime_ms;
} entry_t;

static const char *s_suffixes [] = { ".json", ".json.tmp", ".qcow2", ".qcow2.tmp",
                                     ".pending", ".pending.tmp" };
#define S_SUFFIXES (sizeof (s_suffixes) / sizeof (s_suffixes [0]))

//  The job the JSON document file (in dfd) names for catalog_id and id,
//  into job (a safe identifier); false if it is not a regular file, names
//  another image or catalogue, or no safe job id

static bool
s_sidecar_job (int dfd, const char *file, const char *id, const char *catalog_id,
               char *job, size_t job_size)
{
    int fd = openat (dfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd == -1)
        return false;
    struct stat st;
    json_t *doc = NULL;
    bool ours = false;
    if (fstat (fd, &st) == 0 && S_ISREG (st.st_mode) && st.st_size < 65536
    &&  (doc = json_loadfd (fd, 0, NULL)) && json_is_object (doc)) {
        const char *doc_id = json_string_value (json_object_get (doc, "id"));
        const char *doc_cat = json_string_value (json_object_get (doc, "catalog_id"));
        const char *doc_job = json_string_value (json_object_get (doc, "job_id"));
        ours = doc_id && streq (doc_id, id) && doc_cat && streq (doc_cat, catalog_id)
            && doc_job && sf_name_is_safe (doc_job) && strlen (doc_job) < job_size;
        if (ours)
            snprintf (job, job_size, "%s", doc_job);
    }
    json_decref (doc);
    close (fd);
    return ours;
}

static void
s_entry_free (void **item)
{
    free (*item);
    *item = NULL;
}

static int
s_list_store (const sf_reconcile_args_t *args, zlistx_t *holdings, int64_t now_ms,
              char *note, size_t note_size)
{
    int dfd = open (args->store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = dfd == -1 ? NULL : fdopendir (dfd);
    if (!dir) {
        snprintf (note, note_size, "cannot read image directory '%s': %s", args->store_dir,
                  strerror (errno));
        if (dfd != -1)
            close (dfd);
        return -1;
    }
    zhashx_t *entries = zhashx_new ();
    zhashx_set_destructor (entries, s_entry_free);
    struct dirent *dirent;
    while ((dirent = readdir (dir))) {
        const char *name = dirent->d_name;
        size_t len = strlen (name);
        for (size_t i = 0; i < S_SUFFIXES; i++) {
            size_t slen = strlen (s_suffixes [i]);
            if (len <= slen || !streq (name + len - slen, s_suffixes [i]))
                continue;
            char *id = zsys_sprintf ("%.*s", (int) (len - slen), name);
            struct stat st;
            if (sf_name_is_safe (id) && !strchr (id, '.')
            &&  fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG (st.st_mode)) {
                entry_t *entry = (entry_t *) zhashx_lookup (entries, id);
                if (!entry) {
                    entry = (entry_t *) zmalloc (sizeof (entry_t));
                    zhashx_insert (entries, id, entry);
                }
                if (streq (s_suffixes [i], ".json"))
                    entry->json = true, entry->json_mtime_ms = s_mtime_ms (&st);
                if (streq (s_suffixes [i], ".pending"))
                    entry->pending = true;
                if (strstr (s_suffixes [i], ".qcow2"))
                    entry->bytes += (uint64_t) st.st_size;
                if (streq (s_suffixes [i], ".qcow2"))
                    entry->image = true;
                if (s_mtime_ms (&st) > entry->mtime_ms)
                    entry->mtime_ms = s_mtime_ms (&st);
            }
            zstr_free (&id);
            break;
        }
    }
    for (entry_t *entry = (entry_t *) zhashx_first (entries); entry;
         entry = (entry_t *) zhashx_next (entries)) {
        const char *id = (const char *) zhashx_cursor (entries);
        char job [256];
        char *file = zsys_sprintf ("%s.json", id);
        //  A JSON without its image is an incomplete entry too
        if (entry->json && s_sidecar_job (dfd, file, id, args->catalog_id, job, sizeof (job)))
            zlistx_add_end (holdings, sf_holding_new (entry->image ? SF_HOLDING_IMAGE
                                                                   : SF_HOLDING_TEMP,
                                                      id, job, entry->bytes,
                                                      s_age (now_ms, entry->json_mtime_ms)));
        else {
            zstr_free (&file);
            file = zsys_sprintf ("%s.pending", id);
            if (!entry->json && entry->pending
            &&  s_sidecar_job (dfd, file, id, args->catalog_id, job, sizeof (job)))
                zlistx_add_end (holdings, sf_holding_new (SF_HOLDING_TEMP, id, job,
                                                          entry->bytes,
                                                          s_age (now_ms, entry->mtime_ms)));
        }
        zstr_free (&file);
    }
    zhashx_destroy (&entries);
    closedir (dir);             //  closes dfd
    return 0;
}

//  --------------------------------------------------------------------------
//  Scratch directories in the workdir

//  A scratch directory's name is a job id of the scheduler: J and digits

static bool
s_scratch_name (const char *name)
{
    size_t digits = strspn (name + 1, "0123456789");
    return name [0] == 'J' && digits >= 1 && digits <= 18 && name [1 + digits] == 0;
}

static bool
s_scratch_file (const char *name)
{
    size_t stem = strspn (name, "abcdefghijklmnopqrstuvwxyz0123456789");
    return stem >= 1 && stem <= 32
        && (streq (name + stem, ".qcow2") || streq (name + stem, ".qcow2.tmp"));
}

//  Is workdir/name a directory of scratch files only? Sums their bytes
//  and newest mtime (the directory's own included)

static bool
s_scratch_dir (int wfd, const char *name, uint64_t *bytes, int64_t *mtime_ms)
{
    int fd = openat (wfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *dir = fd == -1 ? NULL : fdopendir (fd);
    if (!dir) {
        if (fd != -1)
            close (fd);
        return false;
    }
    struct stat st;
    bool ours = fstat (fd, &st) == 0;
    *bytes = 0;
    *mtime_ms = ours ? s_mtime_ms (&st) : 0;
    struct dirent *dirent;
    while (ours && (dirent = readdir (dir))) {
        if (streq (dirent->d_name, ".") || streq (dirent->d_name, ".."))
            continue;
        if (!s_scratch_file (dirent->d_name)
        ||  fstatat (fd, dirent->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG (st.st_mode))
            ours = false;
        else {
            *bytes += (uint64_t) st.st_size;
            if (s_mtime_ms (&st) > *mtime_ms)
                *mtime_ms = s_mtime_ms (&st);
        }
    }
    closedir (dir);
    return ours;
}

static void
s_list_scratch (const sf_reconcile_args_t *args, zlistx_t *holdings, int64_t now_ms)
{
    int wfd = open (args->workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = wfd == -1 ? NULL : fdopendir (wfd);
    if (!dir) {
        if (wfd != -1)
            close (wfd);
        return;                 //  no workdir yet: no scratch
    }
    struct dirent *dirent;
    while ((dirent = readdir (dir)) && zlistx_size (holdings) < S_MAX) {
        uint64_t bytes;
        int64_t mtime_ms;
        if (s_scratch_name (dirent->d_name)
        &&  s_scratch_dir (wfd, dirent->d_name, &bytes, &mtime_ms))
            zlistx_add_end (holdings, sf_holding_new (SF_HOLDING_SCRATCH, dirent->d_name,
                                                      dirent->d_name, bytes,
                                                      s_age (now_ms, mtime_ms)));
    }
    closedir (dir);
}

//  --------------------------------------------------------------------------
//  RBD snapshots and clones of the guests' RBD disks

//  Job id of an object name of ours (sf_naming), into job

static bool
s_obj_job (const sf_stor_obj_t *obj, const char *catalog_id, char *job, size_t job_size)
{
    const char *name = obj->kind == SF_STOR_SNAP ? obj->snap : obj->spec.image;
    bool ours = obj->kind == SF_STOR_SNAP ? sf_naming_is_snap (name, catalog_id, NULL)
                                          : sf_naming_is_clone (name, catalog_id, NULL,
                                                                NULL, 0);
    if (!ours)
        return false;
    //  Both names end in "snapfleet-<catalogue>-<job>" (a catalogue id has no '-')
    char tail [64];
    snprintf (tail, sizeof (tail), "snapfleet-%s-", catalog_id);
    const char *at = NULL;
    for (const char *next = strstr (name, tail); next; next = strstr (next + 1, tail))
        at = next;
    if (!at || strlen (at + strlen (tail)) >= job_size)
        return false;
    snprintf (job, job_size, "%s", at + strlen (tail));
    return sf_name_is_safe (job);
}

static int
s_list_rbd (const sf_reconcile_args_t *args, zlistx_t *holdings, int64_t now_ms,
            char *note, size_t note_size)
{
    int rc = 0;
    zhashx_t *seen_now = zhashx_new ();     //  names listed in this run
    const char *disk = args->rbd_disks ? (const char *) zlistx_first (args->rbd_disks) : NULL;
    for (; disk; disk = (const char *) zlistx_next (args->rbd_disks)) {
        sf_err_t err = SF_ERR_INIT;
        sf_stor_spec_t spec;
        if (sf_stor_spec_parse (disk, &spec, &err))
            continue;           //  not an RBD name: nothing of ours there
        zlistx_t *objs = sf_stor_list (args->stor, &spec, "snapfleet-", &err);
        if (!objs) {
            snprintf (note, note_size, "cannot list snapshots of rbd image '%s': %s", disk,
                      err.text);
            rc = -1;
            continue;
        }
        for (const sf_stor_obj_t *obj = (const sf_stor_obj_t *) zlistx_first (objs); obj;
             obj = (const sf_stor_obj_t *) zlistx_next (objs)) {
            char job [256], name [1024];
            if (!s_obj_job (obj, args->catalog_id, job, sizeof (job)))
                continue;
            char spec_text [600];
            sf_stor_spec_str (&obj->spec, spec_text, sizeof (spec_text));
            if (obj->kind == SF_STOR_SNAP)
                snprintf (name, sizeof (name), "%s@%s", spec_text, obj->snap);
            else
                snprintf (name, sizeof (name), "%s", spec_text);
            if (zhashx_lookup (seen_now, name) || zlistx_size (holdings) >= S_MAX)
                continue;
            zhashx_insert (seen_now, name, (void *) 1);
            int64_t *first = args->first_seen
                           ? (int64_t *) zhashx_lookup (args->first_seen, name) : NULL;
            if (!first && args->first_seen) {
                first = (int64_t *) zmalloc (sizeof (int64_t));
                *first = now_ms;
                zhashx_insert (args->first_seen, name, first);
            }
            zlistx_add_end (holdings, sf_holding_new (obj->kind == SF_STOR_SNAP
                                                      ? SF_HOLDING_SNAP : SF_HOLDING_CLONE,
                                                      name, job, 0,
                                                      s_age (now_ms, first ? *first
                                                                           : now_ms)));
        }
        zlistx_destroy (&objs);
    }
    //  Forget first sightings of objects that are gone
    if (args->first_seen && rc == 0) {
        zlistx_t *names = zhashx_keys (args->first_seen);
        for (const char *name = (const char *) zlistx_first (names); name;
             name = (const char *) zlistx_next (names))
            if (!zhashx_lookup (seen_now, name))
                zhashx_delete (args->first_seen, name);
        zlistx_destroy (&names);
    }
    zhashx_destroy (&seen_now);
    return rc;
}

zlistx_t *
sf_reconcile_list (const sf_reconcile_args_t *args, bool *store_complete, bool *rbd_complete,
                   char *note, size_t note_size)
{
    assert (args && args->catalog_id && args->workdir);
    int64_t now_ms = sf_time_now_ms ();
    zlistx_t *holdings = s_holdings_new ();
    *note = 0;
    *store_complete = !args->store_dir
                   || s_list_store (args, holdings, now_ms, note, note_size) == 0;
    s_list_scratch (args, holdings, now_ms);
    *rbd_complete = !args->stor
                 || s_list_rbd (args, holdings, now_ms, note, note_size) == 0;
    if (zlistx_size (holdings) >= S_MAX) {
        *store_complete = *rbd_complete = false;
        snprintf (note, note_size, "more than %d objects; listed the first", S_MAX);
        while (zlistx_size (holdings) > S_MAX) {
            zlistx_last (holdings);
            zlistx_delete (holdings, zlistx_cursor (holdings));
        }
    }
    return holdings;
}

//  --------------------------------------------------------------------------
//  Removal

int
sf_reconcile_remove (const sf_reconcile_args_t *args, const sf_holding_t *holding,
                     sf_err_t *err)
{
    assert (args && holding);
    const char *why = args->busy ? (const char *) zhashx_lookup (args->busy, holding->job_id)
                                 : NULL;
    if (why)
        return sf_err_set (err, SF_EBUSY, "job %s %s; %s '%s' kept", holding->job_id, why,
                           sf_wire_holding_kind_name (holding->kind), holding->name);
    switch (holding->kind) {
        case SF_HOLDING_IMAGE:
        case SF_HOLDING_TEMP:
            if (!args->store_dir)
                return sf_err_set (err, SF_ENOTSUP, "this worker has no dir image store");
            return sf_imgstore_remove (args->images, holding->name, args->catalog_id,
                                       holding->job_id, err);
        case SF_HOLDING_SCRATCH: {
            if (!s_scratch_name (holding->name) || !streq (holding->name, holding->job_id))
                return sf_err_set (err, SF_EINVAL, "'%s' is not a scratch directory of job "
                                   "%s; not removed", holding->name, holding->job_id);
            char *path = zsys_sprintf ("%s/%s", args->workdir, holding->name);
            int rc = 0;
            if (sf_task_scratch_clean (path))
                rc = sf_err_set (err, SF_EINVAL, "scratch directory '%s' holds files that "
                                 "are not ours; left in place", path);
            zstr_free (&path);
            return rc;
        }
        case SF_HOLDING_SNAP:
        case SF_HOLDING_CLONE: {
            if (!args->stor)
                return sf_err_set (err, SF_ENOTSUP, "this worker has no Ceph storage");
            sf_stor_obj_t obj = { .kind = holding->kind == SF_HOLDING_SNAP ? SF_STOR_SNAP
                                                                           : SF_STOR_CLONE };
            char spec [600];
            snprintf (spec, sizeof (spec), "%s", holding->name);
            char *at = strchr (spec, '@');
            if ((at != NULL) != (holding->kind == SF_HOLDING_SNAP))
                return sf_err_set (err, SF_EINVAL, "'%s' is not an rbd %s name", holding->name,
                                   sf_wire_holding_kind_name (holding->kind));
            if (at) {
                *at = 0;
                snprintf (obj.snap, sizeof (obj.snap), "%s", at + 1);
            }
            if (sf_stor_spec_parse (spec, &obj.spec, err))
                return -1;
            return sf_stor_obj_remove (args->stor, &obj, args->catalog_id, holding->job_id,
                                       err);
        }
        default:
            return sf_err_set (err, SF_EINVAL, "unknown holding kind %d", holding->kind);
    }
}

//  --------------------------------------------------------------------------
//  The actor

typedef struct {
    sf_reconcile_args_t args;       //  strings and lists owned (copies)
    zsock_t *pipe;
} reconcile_t;

static reconcile_t *
s_reconcile_new (const sf_reconcile_args_t *args)
{
    reconcile_t *self = (reconcile_t *) zmalloc (sizeof (reconcile_t));
    self->args = *args;
    self->args.request_id = strdup (args->request_id);
    self->args.catalog_id = strdup (args->catalog_id);
    self->args.store_dir = args->store_dir ? strdup (args->store_dir) : NULL;
    self->args.workdir = strdup (args->workdir);
    self->args.rbd_disks = args->rbd_disks ? zlistx_dup (args->rbd_disks) : NULL;
    self->args.busy = args->busy ? zhashx_dup (args->busy) : NULL;
    if (args->n_remove) {
        self->args.remove = (sf_holding_t **) zmalloc (args->n_remove * sizeof (sf_holding_t *));
        for (size_t i = 0; i < args->n_remove; i++) {
            const sf_holding_t *h = args->remove [i];
            self->args.remove [i] = sf_holding_new (h->kind, h->name, h->job_id, h->bytes,
                                                    h->age_ms);
        }
    }
    return self;
}

static void
s_reconcile_destroy (reconcile_t **self_p)
{
    reconcile_t *self = *self_p;
    free ((char *) self->args.request_id);
    free ((char *) self->args.catalog_id);
    free ((char *) self->args.store_dir);
    free ((char *) self->args.workdir);
    zlistx_destroy (&self->args.rbd_disks);
    zhashx_destroy (&self->args.busy);
    for (size_t i = 0; i < self->args.n_remove; i++)
        sf_holding_destroy (&self->args.remove [i]);
    free (self->args.remove);
    free (self);
    *self_p = NULL;
}

//  The holdings of list as an array of pointers (borrowed)

static sf_holding_t **
s_array (zlistx_t *list)
{
    sf_holding_t **array = (sf_holding_t **) zmalloc ((zlistx_size (list) + 1)
                                                      * sizeof (sf_holding_t *));
    size_t count = 0;
    for (sf_holding_t *h = (sf_holding_t *) zlistx_first (list); h;
         h = (sf_holding_t *) zlistx_next (list))
        array [count++] = h;
    return array;
}

static void
s_send_result (reconcile_t *self, sf_envelope_t *env)
{
    sf_err_t err = SF_ERR_INIT;
    zframe_t *frame = sf_wire_encode (env, &err);
    if (!frame)
        SF_ERROR (NULL, "cannot encode %s (request %s): %s",
                  sf_wire_body_name (env->body_case), self->args.request_id, err.text);
    zsock_send (self->pipe, "sf", "RESULT", frame);
    zframe_destroy (&frame);
}

static void
s_list (reconcile_t *self)
{
    bool store_complete, rbd_complete;
    char note [512];
    zlistx_t *holdings = sf_reconcile_list (&self->args, &store_complete, &rbd_complete,
                                            note, sizeof (note));
    sf_gc_holdings_t msg = SF_GC_HOLDINGS_INIT;
    msg.request_id = (char *) self->args.request_id;
    msg.holdings = s_array (holdings);
    msg.n_holdings = zlistx_size (holdings);
    msg.store_complete = store_complete;
    msg.rbd_complete = rbd_complete;
    msg.note = note;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_GC_HOLDINGS, &msg);
    s_send_result (self, &env);
    free (msg.holdings);
    zlistx_destroy (&holdings);
}

static void
s_remove (reconcile_t *self)
{
    zlistx_t *removed = s_holdings_new (), *failed = s_holdings_new ();
    //  Clones first: a snapshot cannot go while a clone of it exists
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < self->args.n_remove; i++) {
            sf_holding_t *h = self->args.remove [i];
            if ((h->kind == SF_HOLDING_SNAP) != (pass == 1))
                continue;
            sf_err_t err = SF_ERR_INIT;
            sf_holding_t *copy = sf_holding_new (h->kind, h->name, h->job_id, h->bytes,
                                                 h->age_ms);
            if (sf_reconcile_remove (&self->args, h, &err) == 0) {
                SF_NOTICE (NULL, "gc removed %s '%s' of job %s (%" PRIu64 " bytes, request %s)",
                           sf_wire_holding_kind_name (h->kind), h->name, h->job_id, h->bytes,
                           self->args.request_id);
                zlistx_add_end (removed, copy);
            }
            else {
                SF_WARN (NULL, "gc cannot remove %s '%s' of job %s: %s",
                         sf_wire_holding_kind_name (h->kind), h->name, h->job_id, err.text);
                free (copy->error);
                copy->error = strdup (err.text);
                zlistx_add_end (failed, copy);
            }
        }
    sf_gc_removed_t msg = SF_GC_REMOVED_INIT;
    msg.request_id = (char *) self->args.request_id;
    msg.removed = s_array (removed);
    msg.n_removed = zlistx_size (removed);
    msg.failed = s_array (failed);
    msg.n_failed = zlistx_size (failed);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_GC_REMOVED, &msg);
    s_send_result (self, &env);
    free (msg.removed);
    free (msg.failed);
    zlistx_destroy (&removed);
    zlistx_destroy (&failed);
}

static void
s_reconcile_actor (zsock_t *pipe, void *args)
{
    const sf_reconcile_args_t *given = (const sf_reconcile_args_t *) args;
    bool listing = given->remove == NULL;
    reconcile_t *self = s_reconcile_new (given);
    self->pipe = pipe;
    zsock_signal (pipe, 0);
    if (listing)
        s_list (self);
    else
        s_remove (self);
    sf_actor_wait_term (pipe);
    s_reconcile_destroy (&self);
}

zactor_t *
sf_reconcile_new (const sf_reconcile_args_t *args)
{
    assert (args && args->request_id && args->catalog_id && args->workdir);
    return zactor_new (s_reconcile_actor, (void *) args);
}

//  --------------------------------------------------------------------------
//  Self test

static void
s_write (const char *dir, const char *name, const char *text)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
    zstr_free (&path);
}

static void
s_sidecar (const char *dir, const char *file, const char *id, const char *catalog,
           const char *job)
{
    char *text = zsys_sprintf ("{\"id\":\"%s\",\"catalog_id\":\"%s\",\"job_id\":\"%s\"}",
                               id, catalog, job);
    s_write (dir, file, text);
    zstr_free (&text);
}

static bool
s_exists (const char *dir, const char *name)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    bool exists = access (path, F_OK) == 0;
    zstr_free (&path);
    return exists;
}

static const sf_holding_t *
s_find (zlistx_t *holdings, int kind, const char *name)
{
    for (const sf_holding_t *h = (const sf_holding_t *) zlistx_first (holdings); h;
         h = (const sf_holding_t *) zlistx_next (holdings))
        if ((int) h->kind == kind && streq (h->name, name))
            return h;
    return NULL;
}

void
sf_reconcile_test (bool verbose)
{
    printf (" * sf_reconcile: ");
    (void) verbose;
    //  @selftest
    const char *ours = "0123456789abcdef", *theirs = "fedcba9876543210";
    char root [] = "/tmp/sf_reconcile_XXXXXX";
    assert (mkdtemp (root));
    char *store = zsys_sprintf ("%s/store", root), *work = zsys_sprintf ("%s/work", root);
    assert (mkdir (store, 0700) == 0 && mkdir (work, 0700) == 0);
    //  A complete image of ours (J1), an incomplete one of J2 (temp with
    //  its pending sidecar), an image of another catalogue, a temp file
    //  with no sidecar, a foreign file, a sidecar naming another id
    s_write (store, "aaaa.qcow2", "0123456789");
    s_sidecar (store, "aaaa.json", "aaaa", ours, "J1");
    s_write (store, "bbbb.qcow2.tmp", "01234");
    s_sidecar (store, "bbbb.pending", "bbbb", ours, "J2");
    s_write (store, "cccc.qcow2", "x");
    s_sidecar (store, "cccc.json", "cccc", theirs, "J1");
    s_write (store, "dddd.qcow2.tmp", "x");
    s_write (store, "notes.txt", "not ours");
    s_write (store, "eeee.qcow2", "x");
    s_sidecar (store, "eeee.json", "ffff", ours, "J5");
    s_sidecar (store, "gggg.json", "gggg", ours, "J6");     //  its image is gone
    //  Scratch: J3's (scratch files only), J4's with a foreign file, the
    //  guard's journal directory, a directory not named for a job
    char *scratch = zsys_sprintf ("%s/J3", work);
    assert (mkdir (scratch, 0700) == 0);
    s_write (scratch, "vda.qcow2.tmp", "0123");
    char *mixed = zsys_sprintf ("%s/J4", work);
    assert (mkdir (mixed, 0700) == 0);
    s_write (mixed, "vda.qcow2", "x");
    s_write (mixed, "keep.txt", "x");
    char *paused = zsys_sprintf ("%s/paused", work);
    assert (mkdir (paused, 0700) == 0);

    sf_imgstore_cfg_t store_cfg = { .driver = "dir", .path = store };
    sf_err_t err = SF_ERR_INIT;
    sf_imgstore_t *images = sf_imgstore_new (&store_cfg, &err);
    assert (images);
    zhashx_t *first_seen = zhashx_new ();
    zhashx_set_destructor (first_seen, s_entry_free);
    sf_reconcile_args_t args = { .request_id = "G1", .catalog_id = ours,
                                 .store_dir = store, .workdir = work, .images = images,
                                 .first_seen = first_seen };
    bool store_complete, rbd_complete;
    char note [256];
    zlistx_t *held = sf_reconcile_list (&args, &store_complete, &rbd_complete, note,
                                        sizeof (note));
    assert (store_complete && rbd_complete);
    assert (zlistx_size (held) == 4);
    assert (s_find (held, SF_HOLDING_TEMP, "gggg"));
    const sf_holding_t *h = s_find (held, SF_HOLDING_IMAGE, "aaaa");
    assert (h && streq (h->job_id, "J1") && h->bytes == 10);
    h = s_find (held, SF_HOLDING_TEMP, "bbbb");
    assert (h && streq (h->job_id, "J2") && h->bytes == 5);
    h = s_find (held, SF_HOLDING_SCRATCH, "J3");
    assert (h && streq (h->job_id, "J3") && h->bytes == 4 && h->age_ms < 60000);
    zlistx_destroy (&held);

    //  Another catalogue sees only its own image
    args.catalog_id = theirs;
    held = sf_reconcile_list (&args, &store_complete, &rbd_complete, note, sizeof (note));
    assert (s_find (held, SF_HOLDING_IMAGE, "cccc") && !s_find (held, SF_HOLDING_IMAGE, "aaaa"));
    zlistx_destroy (&held);
    args.catalog_id = ours;

    //  Removal: only through the scoped deletions; a busy job is refused
    sf_holding_t *temp = sf_holding_new (SF_HOLDING_TEMP, "bbbb", "J2", 5, 0);
    sf_holding_t *wrong = sf_holding_new (SF_HOLDING_IMAGE, "aaaa", "J9", 0, 0);
    sf_holding_t *other = sf_holding_new (SF_HOLDING_IMAGE, "cccc", "J1", 0, 0);
    sf_holding_t *nosidecar = sf_holding_new (SF_HOLDING_TEMP, "dddd", "J1", 0, 0);
    sf_holding_t *dirty = sf_holding_new (SF_HOLDING_SCRATCH, "J4", "J4", 0, 0);
    sf_holding_t *clean = sf_holding_new (SF_HOLDING_SCRATCH, "J3", "J3", 0, 0);
    assert (sf_reconcile_remove (&args, wrong, &err) == -1 && err.code == SF_EINVAL);
    assert (sf_reconcile_remove (&args, other, &err) == -1 && err.code == SF_EINVAL);
    assert (sf_reconcile_remove (&args, nosidecar, &err) == -1 && err.code == SF_EINVAL);
    assert (sf_reconcile_remove (&args, dirty, &err) == -1);
    assert (s_exists (work, "J4/keep.txt"));
    args.busy = zhashx_new ();
    zhashx_insert (args.busy, "J2", "still runs on this worker");
    assert (sf_reconcile_remove (&args, temp, &err) == -1 && err.code == SF_EBUSY);
    assert (s_exists (store, "bbbb.qcow2.tmp"));
    zhashx_destroy (&args.busy);
    assert (sf_reconcile_remove (&args, clean, &err) == 0);
    assert (!s_exists (work, "J3"));

    //  The actor: removes what it is given, answers GcRemoved
    sf_holding_t *batch [] = { temp, other };
    args.remove = batch, args.n_remove = 2;
    zactor_t *actor = sf_reconcile_new (&args);
    char *kind = NULL;
    zframe_t *frame = NULL;
    assert (zsock_recv (actor, "sf", &kind, &frame) == 0 && streq (kind, "RESULT"));
    sf_envelope_t *env = sf_wire_decode (frame, &err);
    assert (env && env->body_case == SF_BODY_GC_REMOVED);
    assert (env->gc_removed->n_removed == 1 && env->gc_removed->n_failed == 1);
    assert (streq (env->gc_removed->removed [0]->name, "bbbb"));
    assert (strstr (env->gc_removed->failed [0]->error, "not one snapfleet made"));
    sf_wire_free (&env);
    zstr_free (&kind);
    zframe_destroy (&frame);
    zactor_destroy (&actor);
    assert (!s_exists (store, "bbbb.qcow2.tmp") && !s_exists (store, "bbbb.pending"));
    assert (s_exists (store, "aaaa.qcow2") && s_exists (store, "cccc.qcow2")
            && s_exists (store, "dddd.qcow2.tmp") && s_exists (store, "notes.txt"));

    //  The actor lists: GcHoldings
    args.remove = NULL, args.n_remove = 0;
    actor = sf_reconcile_new (&args);
    assert (zsock_recv (actor, "sf", &kind, &frame) == 0 && streq (kind, "RESULT"));
    env = sf_wire_decode (frame, &err);
    assert (env && env->body_case == SF_BODY_GC_HOLDINGS);
    assert (env->gc_holdings->n_holdings == 2 && env->gc_holdings->store_complete);
    sf_wire_free (&env);
    zstr_free (&kind);
    zframe_destroy (&frame);
    zactor_destroy (&actor);

    //  RBD: snapshots and clones of ours on the fake cluster; look-alikes
    //  of another catalogue are not listed
    sf_stor_fake_t *fake = sf_stor_fake_new ();
    sf_stor_fake_add (fake, "rbd/vm1-disk0", 1 << 20);
    sf_stor_cfg_t stor_cfg = { NULL, "", "admin", "", 2000 };
    sf_stor_t *stor = sf_stor_new_with (&stor_cfg, &sf_stor_fake_driver, fake, &err);
    assert (stor);
    sf_stor_spec_t vm1;
    assert (sf_stor_spec_parse ("rbd/vm1-disk0", &vm1, &err) == 0);
    char snap_ours [128], snap_theirs [128], clone_ours [256];
    assert (sf_naming_snap (snap_ours, sizeof (snap_ours), ours, "J7", &err) == 0);
    assert (sf_naming_snap (snap_theirs, sizeof (snap_theirs), theirs, "J7", &err) == 0);
    assert (sf_naming_clone (clone_ours, sizeof (clone_ours), "vm1-disk0", ours, "J7",
                             &err) == 0);
    assert (sf_stor_snap_create (stor, &vm1, snap_ours, &err) == 0);
    assert (sf_stor_snap_create (stor, &vm1, snap_theirs, &err) == 0);
    assert (sf_stor_snap_protect (stor, &vm1, snap_ours, &err) == 0);
    sf_stor_spec_t clone_spec = vm1;
    snprintf (clone_spec.image, sizeof (clone_spec.image), "%s", clone_ours);
    assert (sf_stor_clone (stor, &vm1, snap_ours, &clone_spec, &err) == 0);
    args.stor = stor;
    args.rbd_disks = zlistx_new ();
    zlistx_set_duplicator (args.rbd_disks, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor (args.rbd_disks, (zlistx_destructor_fn *) zstr_free);
    zlistx_add_end (args.rbd_disks, "rbd/vm1-disk0");
    held = sf_reconcile_list (&args, &store_complete, &rbd_complete, note, sizeof (note));
    assert (rbd_complete);
    char snap_name [256], clone_name [512];
    snprintf (snap_name, sizeof (snap_name), "rbd/vm1-disk0@%s", snap_ours);
    snprintf (clone_name, sizeof (clone_name), "rbd/%s", clone_ours);
    h = s_find (held, SF_HOLDING_SNAP, snap_name);
    assert (h && streq (h->job_id, "J7"));
    h = s_find (held, SF_HOLDING_CLONE, clone_name);
    assert (h && streq (h->job_id, "J7"));
    assert (zlistx_size (held) == 4);   //  + image aaaa, gggg; not their snapshot
    assert (zhashx_size (first_seen) == 2);
    //  Removal in one request: the clone goes first, then the snapshot
    sf_holding_t *snap_h = sf_holding_new (SF_HOLDING_SNAP, snap_name, "J7", 0, 0);
    sf_holding_t *clone_h = sf_holding_new (SF_HOLDING_CLONE, clone_name, "J7", 0, 0);
    sf_holding_t *both [] = { snap_h, clone_h };
    args.remove = both, args.n_remove = 2;
    actor = sf_reconcile_new (&args);
    assert (zsock_recv (actor, "sf", &kind, &frame) == 0);
    env = sf_wire_decode (frame, &err);
    assert (env && env->gc_removed->n_removed == 2 && env->gc_removed->n_failed == 0);
    sf_wire_free (&env);
    zstr_free (&kind);
    zframe_destroy (&frame);
    zactor_destroy (&actor);
    args.remove = NULL, args.n_remove = 0;
    zlistx_destroy (&held);
    held = sf_reconcile_list (&args, &store_complete, &rbd_complete, note, sizeof (note));
    assert (zlistx_size (held) == 2 && zhashx_size (first_seen) == 0);
    zlistx_destroy (&held);
    //  Their snapshot is still there
    zlistx_t *objs = sf_stor_list (stor, &vm1, "snapfleet-", &err);
    assert (objs && zlistx_size (objs) == 1);
    zlistx_destroy (&objs);

    zlistx_destroy (&args.rbd_disks);
    sf_stor_destroy (&stor);
    sf_stor_fake_destroy (&fake);
    sf_holding_destroy (&snap_h);
    sf_holding_destroy (&clone_h);
    sf_holding_destroy (&temp);
    sf_holding_destroy (&wrong);
    sf_holding_destroy (&other);
    sf_holding_destroy (&nosidecar);
    sf_holding_destroy (&dirty);
    sf_holding_destroy (&clean);
    zhashx_destroy (&first_seen);
    sf_imgstore_destroy (&images);
    char *rm = zsys_sprintf ("rm -rf '%s'", root);
    assert (system (rm) == 0);
    zstr_free (&rm);
    zstr_free (&scratch);
    zstr_free (&mixed);
    zstr_free (&paused);
    zstr_free (&store);
    zstr_free (&work);
    //  @end
    printf ("OK\n");
}
