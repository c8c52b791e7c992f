/*  =========================================================================
    sf_bulk - bulks of snapshots: which instances a selection names, why
    one cannot be snapshotted now, the job rows (committed before
    admission sees them), estimates, the bulk as the admin protocol shows
    it, and the planner's dry run

    Rules this file keeps:
    - a bulk and its jobs are one transaction, committed before any job is
      queued in sf_dispatch;
    - it is the one writer of the bulks table; jobs are written through
      sf_jobs;
    - a bulk is done when its last job has ended; its callback (retention)
      runs after that is committed.
    =========================================================================
*/
#include "sf_sched_classes.h"

struct _sf_bulk_t {
    sf_store_t *store;          //  Borrowed
    sf_jobs_t *jobs;            //  Borrowed
    sf_peers_t *peers;          //  Borrowed
    sf_dispatch_t *dispatch;    //  Borrowed
    sf_limits_t limits;
    zhashx_t *left;             //  bulk id -> unfinished jobs (size_t *), owned
    sf_bulk_done_fn *done;
    void *done_arg;
};

SF_LOG_MODULE ("sched.bulk");

//  Largest bulk reply listing its jobs (bulk_show lists them all)
#define CREATE_LIST_MAX 1000

sf_bulk_t *
sf_bulk_new (sf_store_t *store, sf_jobs_t *jobs, sf_peers_t *peers,
             sf_dispatch_t *dispatch, const sf_limits_t *limits)
{
    assert (store && jobs && peers && dispatch && limits);
    sf_bulk_t *self = (sf_bulk_t *) zmalloc (sizeof (sf_bulk_t));
    self->store = store;
    self->jobs = jobs;
    self->peers = peers;
    self->dispatch = dispatch;
    self->limits = *limits;
    self->left = zhashx_new ();
    zhashx_set_destructor (self->left, (zhashx_destructor_fn *) zstr_free);
    return self;
}

void
sf_bulk_destroy (sf_bulk_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_bulk_t *self = *self_p;
        zhashx_destroy (&self->left);
        free (self);
        *self_p = NULL;
    }
}

void
sf_bulk_on_done (sf_bulk_t *self, sf_bulk_done_fn *fn, void *arg)
{
    assert (self);
    self->done = fn;
    self->done_arg = arg;
}

static uint64_t
s_seq_of (const char *id)
{
    return id [0] == 'J'? strtoull (id + 1, NULL, 10): 0;
}

//  --------------------------------------------------------------------------
//  Bulk counters: how many of a bulk's jobs have not ended

static void
s_bulk_add (sf_bulk_t *self, const char *bulk_id, size_t count)
{
    if (!bulk_id || !*bulk_id || count == 0)
        return;
    size_t *left = (size_t *) zhashx_lookup (self->left, bulk_id);
    if (!left) {
        left = (size_t *) zmalloc (sizeof (size_t));
        zhashx_insert (self->left, bulk_id, left);
    }
    *left += count;
}

//  Mark the bulk done (committed), then tell the callback

static void
s_bulk_finish (sf_bulk_t *self, const char *bulk_id)
{
    sf_err_t err = SF_ERR_INIT;
    if (sf_store_exec (self->store, &err,
            "UPDATE bulks SET state = 'done', finished = ?2 WHERE id = ?1"
            " AND state = 'running'", "si", bulk_id, sf_time_now_ms ()) < 0) {
        SF_ERROR (NULL, "cannot mark bulk '%s' done: %s", bulk_id, err.text);
        return;
    }
    SF_NOTICE (NULL, "bulk %s done", bulk_id);
    if (self->done)
        self->done (self->done_arg, bulk_id);
}

void
sf_bulk_job_ended (sf_bulk_t *self, const char *bulk_id)
{
    assert (self);
    if (!bulk_id || !*bulk_id)
        return;
    size_t *left = (size_t *) zhashx_lookup (self->left, bulk_id);
    if (left && *left > 0 && --*left == 0) {
        char *id = strdup (bulk_id);
        zhashx_delete (self->left, bulk_id);
        s_bulk_finish (self, id);
        free (id);
    }
}


//  --------------------------------------------------------------------------
//  Estimates

//  Fill the estimate of job from the instance's disks and the strategy

//  (instance NULL: no disks known)

static void
s_estimate (const sf_limits_t *limits, const sf_plan_model_t *model,
            const sf_instance_rec_t *instance, const char *strategy, sf_admit_job_t *job)
{
    uint64_t file_bytes = 0, rbd_bytes = 0;
    for (size_t i = 0; instance && i < instance->n_disks; i++) {
        const sf_disk_rec_t *disk = &instance->disks [i];
        int64_t virtual_size = disk->virtual_size;
        int64_t allocated = disk->allocated_size;
        if (streq (disk->type, "rbd"))
            rbd_bytes += (uint64_t) (virtual_size > 0? virtual_size: 0);
        else
            file_bytes += (uint64_t) (allocated > 0? allocated
                                      : virtual_size > 0? virtual_size: 0);
    }
    sf_plan_estimate (model, strategy, file_bytes, rbd_bytes, false, job);
    //  With bandwidth budgets the grants decide how fast an upload goes;
    //  a throughput measured under earlier grants (or a default guess)
    //  must not cap the next ones, or the shares could only ratchet down
    if (limits->bandwidth || limits->bandwidth_per_node || limits->bandwidth_per_store)
        job->upload_bps = 0;
}

//  --------------------------------------------------------------------------
//  Restart: put the unfinished jobs back

//  Instance uuid on node as the store has it, or NULL. Caller owns it.

static sf_instance_rec_t *
s_instance_of (sf_bulk_t *self, const char *uuid, const char *node)
{
    sf_err_t err = SF_ERR_INIT;
    zlistx_t *matches = sf_store_instances (self->store, node, uuid, &err);
    sf_instance_rec_t *instance = NULL;
    for (sf_instance_rec_t *match = matches? (sf_instance_rec_t *) zlistx_first (matches)
                                           : NULL;
         match && !instance; match = (sf_instance_rec_t *) zlistx_next (matches))
        if (streq (match->uuid, uuid))
            instance = (sf_instance_rec_t *) zlistx_detach_cur (matches);
    zlistx_destroy (&matches);
    return instance;
}

int
sf_bulk_restore (sf_bulk_t *self, sf_err_t *err)
{
    assert (self);
    sf_plan_model_t model;
    sf_jobs_model (self->jobs, &model);
    zlistx_t *unfinished = sf_jobs_unfinished (self->jobs, err);
    if (!unfinished)
        return -1;
    int restored = 0;
    for (sf_job_rec_t *rec = (sf_job_rec_t *) zlistx_first (unfinished); rec;
         rec = (sf_job_rec_t *) zlistx_next (unfinished)) {
        sf_dispatch_job_t job = {
            .admit = { .id = rec->id, .node = rec->node, .seq = s_seq_of (rec->id),
                       .priority = rec->priority, .deadline_ms = rec->deadline_ms,
                       .window_end_ms = rec->window_end_ms },
            .bulk_id = rec->bulk_id, .instance_uuid = rec->instance_uuid,
            .strategy = rec->strategy, .attempt = rec->attempt, .phase = rec->phase,
            .not_before_ms = rec->not_before_ms
        };
        if (streq (rec->strategy, SF_WIRE_RESTORE))
            sf_restores_admit_job (self->store, rec->id, &job.admit);
        else
        if (streq (rec->strategy, SF_WIRE_VERIFY))
            sf_verifies_admit_job (self->store, rec->id, &job.admit);
        else {
            sf_instance_rec_t *instance = s_instance_of (self, rec->instance_uuid, rec->node);
            s_estimate (&self->limits, &model, instance, rec->strategy, &job.admit);
            sf_instance_rec_destroy (&instance);
        }
        if (sf_dispatch_queue (self->dispatch, &job)) {
            SF_WARN (NULL, "cannot restore job '%s' into admission", rec->id);
            continue;
        }
        s_bulk_add (self, rec->bulk_id, 1);
        restored++;
    }
    zlistx_destroy (&unfinished);
    //  (Uploads that were running come first, so the first grants go back to
    //  them and the upload limits hold across the restart.)
    //  A bulk whose jobs all ended while we were down (or while it was
    //  being created) is done now
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT id FROM bulks WHERE state = 'running'", "");
    if (!stmt)
        return -1;
    zlistx_t *finished = zlistx_new ();
    zlistx_set_destructor (finished, (zlistx_destructor_fn *) zstr_free);
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1)
        if (!zhashx_lookup (self->left, sf_store_text (stmt, 0)))
            zlistx_add_end (finished, strdup (sf_store_text (stmt, 0)));
    sqlite3_finalize (stmt);
    for (const char *id = (const char *) zlistx_first (finished); id;
         id = (const char *) zlistx_next (finished))
        s_bulk_finish (self, id);
    zlistx_destroy (&finished);
    if (restored)
        SF_NOTICE (NULL, "%d unfinished job(s) restored into admission", restored);
    return rc < 0? -1: 0;
}

//  --------------------------------------------------------------------------
//  Selecting instances

//  The refusal of an instance whose uuid another node reports too

static int
s_refuse_ambiguous (const sf_instance_rec_t *instance, sf_err_t *err)
{
    return sf_err_set (err, SF_EINVAL, "instance '%s' (uuid '%s') on node '%s' is "
                       "ambiguous: %s", instance->name, instance->uuid, instance->node,
                       instance->ambiguous);
}

//  The one instance of matches key names (detached from matches; caller
//  owns it), or NULL with err set

static sf_instance_rec_t *
s_pick_instance (const char *key, zlistx_t *matches, sf_err_t *err)
{
    size_t count = zlistx_size (matches);
    if (count == 1) {
        zlistx_first (matches);
        return (sf_instance_rec_t *) zlistx_detach_cur (matches);
    }
    if (count == 0) {
        sf_err_set (err, SF_ENOENT, "no instance '%s' in any node's inventory", key);
        return NULL;
    }
    //  A uuid that several nodes report: refused with the reason
    bool one_uuid = true;
    for (sf_instance_rec_t *match = (sf_instance_rec_t *) zlistx_first (matches); match;
         match = (sf_instance_rec_t *) zlistx_next (matches))
        one_uuid = one_uuid && streq (match->uuid, key) && *match->ambiguous;
    if (one_uuid) {
        s_refuse_ambiguous ((sf_instance_rec_t *) zlistx_first (matches), err);
        return NULL;
    }
    char list [200] = "";
    for (sf_instance_rec_t *match = (sf_instance_rec_t *) zlistx_first (matches); match;
         match = (sf_instance_rec_t *) zlistx_next (matches)) {
        size_t used = strlen (list);
        snprintf (list + used, sizeof (list) - used, "%s'%s' on node '%s'",
                  used? ", ": "", match->uuid, match->node);
    }
    sf_err_set (err, SF_EINVAL, "instance '%s' is ambiguous: %s; give the uuid",
                key, list);
    return NULL;
}

//  A new list of instance records, which it owns

static zlistx_t *
s_instances_new (void)
{
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, (zlistx_destructor_fn *) sf_instance_rec_destroy);
    return list;
}

//  Instances named by a list of names or uuids, each exactly once

static zlistx_t *
s_select_list (sf_bulk_t *self, json_t *keys, sf_err_t *err)
{
    if (!json_is_array (keys) || json_array_size (keys) == 0)
        return sf_err_set (err, SF_EINVAL, "select.instances must be a non-empty array "
                           "of names or uuids"), NULL;
    zlistx_t *chosen = s_instances_new ();
    zhashx_t *seen = zhashx_new ();
    size_t index;
    json_t *key;
    json_array_foreach (keys, index, key) {
        const char *text = json_string_value (key);
        if (!text || !*text) {
            sf_err_set (err, SF_EINVAL, "select.instances[%zu] must be a name or uuid",
                        index);
            goto failed;
        }
        zlistx_t *matches = sf_store_instances (self->store, NULL, text, err);
        if (!matches)
            goto failed;
        sf_instance_rec_t *instance = s_pick_instance (text, matches, err);
        zlistx_destroy (&matches);
        if (!instance)
            goto failed;
        //  Once per instance, which is (node, uuid)
        char *identity = zsys_sprintf ("%s/%s", instance->node, instance->uuid);
        if (!zhashx_lookup (seen, identity)) {
            zhashx_insert (seen, identity, (void *) 1);
            zlistx_add_end (chosen, instance);
        }
        else
            sf_instance_rec_destroy (&instance);
        zstr_free (&identity);
    }
    zhashx_destroy (&seen);
    return chosen;
 failed:
    zhashx_destroy (&seen);
    zlistx_destroy (&chosen);
    return NULL;
}

//  The instances of all whose tag key has value (moved out of all)

static zlistx_t *
s_filter_tag (zlistx_t *all, const char *tag, sf_err_t *err)
{
    const char *equals = strchr (tag, '=');
    if (!equals || equals == tag)
        return sf_err_set (err, SF_EINVAL, "select.tag must be KEY=VALUE, not '%s'", tag),
               NULL;
    char *key = strndup (tag, (size_t) (equals - tag));
    zlistx_t *chosen = s_instances_new ();
    for (sf_instance_rec_t *instance = (sf_instance_rec_t *) zlistx_first (all); instance;
         instance = (sf_instance_rec_t *) zlistx_next (all)) {
        const char *value = (const char *) zhashx_lookup (instance->tags, key);
        if (value && streq (value, equals + 1))
            zlistx_add_end (chosen, zlistx_detach_cur (all));  //  Cursor steps back
    }
    free (key);
    return chosen;
}

//  The instances select names (a list the caller owns), or NULL with err

static zlistx_t *
s_select (sf_bulk_t *self, json_t *select, sf_err_t *err)
{
    if (!json_is_object (select) || json_object_size (select) != 1)
        return sf_err_set (err, SF_EINVAL, "select must be one of {\"all\":true}, "
                           "{\"node\":N}, {\"tag\":\"K=V\"}, {\"instances\":[...]}"), NULL;
    json_t *value;
    zlistx_t *chosen = NULL;
    if ((value = json_object_get (select, "instances")))
        return s_select_list (self, value, err);
    if ((value = json_object_get (select, "all"))) {
        if (!json_is_true (value))
            return sf_err_set (err, SF_EINVAL, "select.all must be true"), NULL;
        chosen = sf_store_instances (self->store, NULL, NULL, err);
    }
    else
    if ((value = json_object_get (select, "node"))) {
        if (!json_is_string (value) || !sf_name_is_safe (json_string_value (value)))
            return sf_err_set (err, SF_EINVAL, "select.node must be a node name"), NULL;
        chosen = sf_store_instances (self->store, json_string_value (value), NULL, err);
    }
    else
    if ((value = json_object_get (select, "tag"))) {
        if (!json_is_string (value))
            return sf_err_set (err, SF_EINVAL, "select.tag must be a string KEY=VALUE"),
                   NULL;
        zlistx_t *all = sf_store_instances (self->store, NULL, NULL, err);
        if (!all)
            return NULL;
        chosen = s_filter_tag (all, json_string_value (value), err);
        zlistx_destroy (&all);
    }
    else
        return sf_err_set (err, SF_EINVAL, "unknown selector '%s'",
                           json_object_iter_key (json_object_iter (select))), NULL;
    return chosen;
}

//  --------------------------------------------------------------------------
//  Refusals: why an instance cannot be snapshotted now

static int
s_refuse_strategy (sf_peer_t *peer, const char *strategy, sf_err_t *err)
{
    if (sf_strategy_needs_ceph (strategy)
    &&  !sf_peers_offers (peer, SF_STRATEGY_RBD) && !sf_peers_offers (peer, SF_STRATEGY_MIXED))
        return sf_err_set (err, SF_ENOTSUP, "node '%s' cannot run strategy '%s' (its "
                           "worker has no Ceph configured)", peer->name, strategy);
    char offered [160] = "";
    for (const char *name = (const char *) zlistx_first (peer->strategies); name;
         name = (const char *) zlistx_next (peer->strategies)) {
        size_t used = strlen (offered);
        snprintf (offered + used, sizeof (offered) - used, "%s%s", used? ", ": "", name);
    }
    return sf_err_set (err, SF_ENOTSUP, "node '%s' cannot run strategy '%s' (its worker "
                       "offers only %s)", peer->name, strategy, offered);
}

//  A node known to this run takes jobs even while it is down or has not
//  reconnected since a restart: they wait in admission until it says hello
//  (or their window closes), as a cut link only delays it. A node this run
//  never knew (down before it started) is refused.

static int
s_check_node (sf_bulk_t *self, const char *node, const char *strategy, sf_err_t *err)
{
    sf_peer_t *peer = sf_peers_by_name (self->peers, node);
    if (!peer)
        return sf_err_set (err, SF_ENODE, "node '%s' is down", node);
    if (!sf_peers_offers (peer, strategy))
        return s_refuse_strategy (peer, strategy, err);
    return 0;
}

//  The strategy for the instance: the forced one if it fits, else the
//  default. Returns a string valid while instance lives, or NULL with err.

static const char *
s_pick_strategy (const sf_instance_rec_t *instance, const char *forced, sf_err_t *err)
{
    if (forced)
        return sf_strategy_check (forced, instance->name, instance->state,
                                  instance->storage_class, err)? NULL: forced;
    const char *strategy = sf_strategy_choose (instance->state, instance->storage_class,
                                               err);
    if (!strategy)
        sf_err_prefix (err, "cannot snapshot '%s'", instance->name);
    return strategy;
}

//  Everything that stops instance from being snapshotted now; 0 if none.
//  *strategy_p is set when a strategy was found.

static int
s_refusal (sf_bulk_t *self, const sf_instance_rec_t *instance, const char *forced,
           zhashx_t *busy, const char **strategy_p, sf_err_t *err)
{
    //  Until one node reports its uuid, which one has the instance is not
    //  known: no snapshot on either
    if (*instance->ambiguous)
        return s_refuse_ambiguous (instance, err);
    const char *strategy = s_pick_strategy (instance, forced, err);
    //  The default for a running file guest is file-live; a worker of an
    //  older release (a rolling upgrade) that does not offer it still takes
    //  the guest with file-cold, as before. A forced strategy is never
    //  changed.
    sf_peer_t *peer = sf_peers_by_name (self->peers, instance->node);
    if (strategy && !forced && streq (strategy, SF_STRATEGY_FILE_LIVE) && peer
    &&  !sf_peers_offers (peer, SF_STRATEGY_FILE_LIVE)
    &&  sf_peers_offers (peer, SF_STRATEGY_FILE_COLD))
        strategy = SF_STRATEGY_FILE_COLD;
    *strategy_p = strategy;
    if (!strategy || s_check_node (self, instance->node, strategy, err))
        return -1;
    const char *id = sf_jobs_busy_job (busy, instance->node, instance->uuid);
    if (id)
        return sf_err_set (err, SF_EBUSY, "instance '%s' already has unfinished job '%s'",
                           instance->name, id);
    return 0;
}

//  --------------------------------------------------------------------------
//  Creating bulks

static int
s_bulk_row (sf_bulk_t *self, json_t *select, const sf_bulk_opts_t *opts,
            char *id, size_t size, sf_err_t *err)
{
    char *text = json_dumps (select, JSON_COMPACT | JSON_SORT_KEYS);
    int rc = sf_store_exec (self->store, err,
        "INSERT INTO bulks (id, created, select_json, strategy, priority, deadline,"
        " window_end, schedule, schedule_seq, state)"
        " VALUES ('', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'running')",
        "issiiisi", sf_time_now_ms (), text? text: "{}",
        opts->strategy? opts->strategy: "", (int64_t) opts->priority, opts->deadline_ms,
        opts->window_end_ms, opts->schedule? opts->schedule: "",
        opts->schedule? opts->schedule_seq: (int64_t) 0);
    free (text);
    if (rc < 0)
        return -1;
    int64_t seq = sqlite3_last_insert_rowid (sf_store_db (self->store));
    if (sf_store_exec (self->store, err, "UPDATE bulks SET id = 'B' || seq WHERE seq = ?1",
                       "i", seq) < 0)
        return -1;
    snprintf (id, size, "B%" PRId64, seq);
    return 0;
}

//  Create the job of one selected instance inside the bulk's transaction:
//  waiting for admission, or failed at once with the refusal. Fills job
//  (its id in id) when it waits. Returns 1 if it waits, 0 if it failed,
//  -1 with err on a database error.

static int
s_bulk_job (sf_bulk_t *self, const sf_instance_rec_t *instance, const char *bulk_id,
            const sf_bulk_opts_t *opts, const sf_plan_model_t *model, zhashx_t *busy,
            sf_admit_job_t *job, char *id, size_t size, const char **strategy_p,
            sf_err_t *err)
{
    sf_err_t refusal = SF_ERR_INIT;
    const char *strategy = NULL;
    bool refused = s_refusal (self, instance, opts->strategy, busy, &strategy,
                              &refusal) != 0;
    if (refused && refusal.code == SF_EDB)
        return sf_err_set (err, SF_EDB, "%s", refusal.text);
    sf_job_spec_t spec = {
        .instance_uuid = instance->uuid, .instance_name = instance->name,
        .node = instance->node,
        .strategy = strategy? strategy: opts->strategy? opts->strategy: "none",
        .bulk_id = bulk_id, .priority = opts->priority, .deadline_ms = opts->deadline_ms,
        .window_end_ms = opts->window_end_ms, .waiting = true, .full = opts->full
    };
    memset (job, 0, sizeof (*job));
    if (!refused) {
        s_estimate (&self->limits, model, instance, strategy, job);
        spec.est_bytes = job->upload_bytes;
    }
    if (sf_jobs_create (self->jobs, &spec, id, size, err))
        return -1;
    if (refused)
        return sf_jobs_fail (self->jobs, id, refusal.code, refusal.text, err)? -1: 0;
    job->id = id;
    job->node = spec.node;
    job->seq = s_seq_of (id);
    job->priority = opts->priority;
    job->deadline_ms = opts->deadline_ms;
    job->window_end_ms = opts->window_end_ms;
    *strategy_p = strategy;
    return 1;
}

//  Create bulk rows and jobs for the chosen instances in one transaction,
//  then hand the waiting jobs to admission. With strict, any refusal is
//  the error and nothing is created. Returns 0 with the bulk id, or -1.

static int
s_create (sf_bulk_t *self, json_t *select, zlistx_t *chosen,
          const sf_bulk_opts_t *opts, bool strict, char *bulk_id, size_t size,
          char *job_id, size_t job_id_size, sf_err_t *err)
{
    if (opts->strategy && !sf_strategy_known (opts->strategy))
        return sf_strategy_check (opts->strategy, "", "", "", err);
    zhashx_t *busy = sf_jobs_busy (self->jobs, err);
    if (!busy)
        return -1;
    const char *strategy;
    if (strict && s_refusal (self, (sf_instance_rec_t *) zlistx_first (chosen),
                             opts->strategy, busy, &strategy, err)) {
        zhashx_destroy (&busy);
        return -1;
    }
    sf_plan_model_t model;
    sf_jobs_model (self->jobs, &model);
    size_t count = zlistx_size (chosen);
    sf_instance_rec_t **instances = (sf_instance_rec_t **) calloc (count? count: 1,
                                                                   sizeof (*instances));
    assert (instances);
    instances [0] = (sf_instance_rec_t *) zlistx_first (chosen);
    for (size_t i = 1; i < count; i++)
        instances [i] = (sf_instance_rec_t *) zlistx_next (chosen);
    sf_admit_job_t *jobs = (sf_admit_job_t *) calloc (count? count: 1, sizeof (*jobs));
    char (*ids) [32] = calloc (count? count: 1, sizeof (*ids));
    const char **strategies = (const char **) calloc (count? count: 1, sizeof (char *));
    int *waits = (int *) calloc (count? count: 1, sizeof (int));
    assert (jobs && ids && strategies && waits);
    int rc = sf_store_begin (self->store, err);
    if (rc == 0)
        rc = s_bulk_row (self, select, opts, bulk_id, size, err);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        waits [i] = s_bulk_job (self, instances [i], bulk_id, opts, &model,
                                busy, &jobs [i], ids [i], sizeof (ids [i]), &strategies [i],
                                err);
        rc = waits [i] < 0? -1: 0;
    }
    if (rc == 0)
        rc = sf_store_exec (self->store, err, "UPDATE bulks SET total = ?2 WHERE id = ?1",
                            "si", bulk_id, (int64_t) count) < 0? -1: 0;
    if (rc == 0)
        rc = sf_store_commit (self->store, err);
    else
        sf_store_rollback (self->store);
    if (rc == 0) {
        //  Committed: the waiting jobs queue and count for the bulk (the
        //  others have ended already; a bulk of only those is done now)
        size_t queued = 0;
        for (size_t i = 0; i < count; i++) {
            if (waits [i] != 1)
                continue;
            sf_dispatch_job_t job = {
                .admit = jobs [i], .bulk_id = bulk_id, .strategy = strategies [i],
                .instance_uuid = instances [i]->uuid, .attempt = 1
            };
            if (sf_dispatch_queue (self->dispatch, &job) == 0)
                queued++;
            else
                sf_jobs_fail (self->jobs, ids [i], SF_ESTATE, "admission refused the job",
                              err);
        }
        s_bulk_add (self, bulk_id, queued);
        if (queued == 0)
            s_bulk_finish (self, bulk_id);
        if (job_id && count > 0)
            snprintf (job_id, job_id_size, "%s", ids [0]);
        SF_NOTICE (NULL, "bulk %s: %zu job(s)%s%s", bulk_id, count,
                   opts->schedule? " for schedule ": "", opts->schedule? opts->schedule: "");
    }
    free (instances);
    free (jobs);
    free (ids);
    free (strategies);
    free (waits);
    zhashx_destroy (&busy);
    if (rc == 0)
        sf_dispatch_pump (self->dispatch);
    return rc;
}

json_t *
sf_bulk_create (sf_bulk_t *self, json_t *select, const sf_bulk_opts_t *opts,
                sf_err_t *err)
{
    assert (self && opts);
    zlistx_t *chosen = s_select (self, select, err);
    if (!chosen)
        return NULL;
    json_t *bulk = NULL;
    char id [32];
    if (zlistx_size (chosen) == 0)
        sf_err_set (err, SF_ENOENT, "no instance matches the selection");
    else
    if (s_create (self, select, chosen, opts, false, id, sizeof (id), NULL, 0, err) == 0)
        bulk = sf_bulk_json (self, id, zlistx_size (chosen) <= CREATE_LIST_MAX, err);
    zlistx_destroy (&chosen);
    return bulk;
}

json_t *
sf_bulk_one (sf_bulk_t *self, const char *key, const char *strategy, bool full,
             sf_err_t *err)
{
    assert (self && key);
    //  An unknown strategy name is refused whatever the instance
    if (strategy && !sf_strategy_known (strategy)) {
        sf_strategy_check (strategy, key, "", "", err);
        return NULL;
    }
    json_t *keys = json_pack ("[s]", key);
    json_t *select = json_pack ("{s:O}", "instances", keys);
    zlistx_t *chosen = s_select_list (self, keys, err);
    json_t *job = NULL;
    char bulk_id [32], job_id [32];
    sf_bulk_opts_t opts = { .strategy = strategy, .full = full };
    if (chosen && s_create (self, select, chosen, &opts, true, bulk_id, sizeof (bulk_id),
                            job_id, sizeof (job_id), err) == 0)
        job = sf_jobs_json (self->jobs, job_id, err);
    zlistx_destroy (&chosen);
    json_decref (select);
    json_decref (keys);
    return job;
}

//  --------------------------------------------------------------------------
//  Cancel

json_t *
sf_bulk_cancel (sf_bulk_t *self, const char *bulk_id, sf_err_t *err)
{
    assert (self && bulk_id);
    //  Every job of a bulk is made with it (one transaction): cancelling
    //  its unfinished ones stops it, and it ends with the last of them
    char schedule [256];
    int64_t schedule_seq = 0;
    int rc = sf_bulk_schedule (self, bulk_id, schedule, sizeof (schedule), &schedule_seq,
                               err);
    if (rc == 0)
        sf_err_set (err, SF_ENOENT, "no bulk '%s'", bulk_id);
    if (rc != 1)
        return NULL;
    zlistx_t *ids = sf_jobs_bulk_unfinished (self->jobs, bulk_id, err);
    if (!ids)
        return NULL;
    SF_NOTICE (NULL, "bulk %s: cancelling its %zu unfinished job(s)", bulk_id,
               zlistx_size (ids));
    json_t *answers = sf_dispatch_cancel (self->dispatch, ids);
    zlistx_destroy (&ids);
    return answers;
}

//  --------------------------------------------------------------------------
//  Bulk JSON

static json_t *
s_time_or_null (int64_t ms)
{
    return ms > 0? json_integer (ms): json_null ();
}

//  Counts per state and bytes, into bulk

static int
s_bulk_counts (sf_bulk_t *self, json_t *bulk, const char *id, int64_t created,
               int64_t finished, sf_err_t *err)
{
    sf_jobs_counts_t counts;
    if (sf_jobs_bulk_counts (self->jobs, id, &counts, err))
        return -1;
    for (int i = 0; i < SF_JOBS_STATES; i++)
        json_object_set_new (bulk, sf_jobs_state_names [i], json_integer (counts.jobs [i]));
    int64_t bytes = counts.bytes, est = counts.est_bytes;
    int64_t end = finished > 0? finished: sf_time_now_ms ();
    double seconds = (double) (end - created) / 1000.0;
    double throughput = seconds > 0? (double) bytes / seconds: 0;
    json_object_set_new (bulk, "bytes", json_integer (bytes));
    json_object_set_new (bulk, "bytes_total", json_integer (est > bytes? est: bytes));
    json_object_set_new (bulk, "started", s_time_or_null (created));
    json_object_set_new (bulk, "throughput_bps", json_integer ((json_int_t) throughput));
    //  ETA: the estimated bytes still to move at the rate seen so far
    int64_t left = est - counts.ended_est_bytes;
    json_object_set_new (bulk, "eta_ms", finished > 0? json_integer (0)
                         : throughput > 0 && left >= 0
                         ? json_integer ((json_int_t) ((double) left / throughput * 1000))
                         : json_null ());
    return 0;
}

json_t *
sf_bulk_json (sf_bulk_t *self, const char *id, bool with_jobs, sf_err_t *err)
{
    assert (self && id);
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT id, created, select_json, strategy, priority, deadline, window_end,"
        " schedule, state, total, finished FROM bulks WHERE id = ?1", "s", id);
    if (!stmt)
        return NULL;
    int rc = sf_store_step (self->store, stmt, err);
    if (rc != 1) {
        if (rc == 0)
            sf_err_set (err, SF_ENOENT, "no bulk '%s'", id);
        sqlite3_finalize (stmt);
        return NULL;
    }
    int64_t created = sqlite3_column_int64 (stmt, 1);
    int64_t finished = sqlite3_column_int64 (stmt, 10);
    json_t *select = json_loads (sf_store_text (stmt, 2), 0, NULL);
    const char *strategy = sf_store_text (stmt, 3);
    const char *schedule = sf_store_text (stmt, 7);
    json_t *bulk = json_pack ("{s:s, s:I, s:o, s:o, s:I, s:o, s:o, s:o, s:s, s:I, s:o}",
        "bulk_id", sf_store_text (stmt, 0),
        "created", (json_int_t) created,
        "select", select? select: json_null (),
        "strategy", *strategy? json_string (strategy): json_null (),
        "priority", (json_int_t) sqlite3_column_int64 (stmt, 4),
        "deadline", s_time_or_null (sqlite3_column_int64 (stmt, 5)),
        "window_end", s_time_or_null (sqlite3_column_int64 (stmt, 6)),
        "schedule", *schedule? json_string (schedule): json_null (),
        "state", sf_store_text (stmt, 8),
        "total", (json_int_t) sqlite3_column_int64 (stmt, 9),
        "finished", s_time_or_null (finished));
    sqlite3_finalize (stmt);
    if (s_bulk_counts (self, bulk, id, created, finished, err))
        goto failed;
    json_t *failures = sf_jobs_bulk_json (self->jobs, id, true, err);
    if (!failures)
        goto failed;
    json_object_set_new (bulk, "failures", failures);
    if (with_jobs) {
        json_t *jobs = sf_jobs_bulk_json (self->jobs, id, false, err);
        if (!jobs)
            goto failed;
        json_object_set_new (bulk, "jobs", jobs);
    }
    return bulk;
 failed:
    json_decref (bulk);
    return NULL;
}

int64_t
sf_bulk_prune (sf_bulk_t *self, int64_t before_ms, int64_t batch, sf_err_t *err)
{
    assert (self && batch > 0);
    return sf_store_exec (self->store, err,
        "DELETE FROM bulks WHERE seq IN (SELECT seq FROM bulks"
        " WHERE state = 'done' AND created < ?1"
        "   AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.bulk_id = bulks.id)"
        "   AND NOT EXISTS (SELECT 1 FROM retention_deletes r WHERE r.bulk_id = bulks.id)"
        "   AND NOT EXISTS (SELECT 1 FROM schedules s WHERE s.last_bulk = bulks.id)"
        " ORDER BY seq LIMIT ?2)", "ii", before_ms, batch);
}

json_t *
sf_bulk_list_json (sf_bulk_t *self, sf_err_t *err)
{
    assert (self);
    zlistx_t *ids = sf_store_strings (self->store, err,
        "SELECT id FROM (SELECT id, seq FROM bulks ORDER BY seq DESC LIMIT 1000)"
        " ORDER BY seq", "");
    if (!ids)
        return NULL;
    json_t *bulks = json_array ();
    for (const char *id = (const char *) zlistx_first (ids); id && bulks;
         id = (const char *) zlistx_next (ids)) {
        json_t *bulk = sf_bulk_json (self, id, false, err);
        if (!bulk) {
            json_decref (bulks);
            bulks = NULL;
        }
        else {
            json_object_del (bulk, "failures");
            json_array_append_new (bulks, bulk);
        }
    }
    zlistx_destroy (&ids);
    return bulks;
}

int
sf_bulk_schedule (sf_bulk_t *self, const char *bulk_id, char *schedule, size_t size,
                  int64_t *schedule_seq, sf_err_t *err)
{
    assert (self && bulk_id && schedule && size > 0 && schedule_seq);
    *schedule = 0;
    *schedule_seq = 0;
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT schedule, schedule_seq FROM bulks WHERE id = ?1", "s", bulk_id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (self->store, stmt, err);
    if (rc == 1) {
        snprintf (schedule, size, "%s", sf_store_text (stmt, 0));
        *schedule_seq = sqlite3_column_int64 (stmt, 1);
    }
    sqlite3_finalize (stmt);
    return rc;
}

zlistx_t *
sf_bulk_of_schedule (sf_bulk_t *self, int64_t schedule_seq, sf_err_t *err)
{
    assert (self);
    return sf_store_strings (self->store, err,
        "SELECT id FROM bulks WHERE schedule_seq = ?1 AND schedule_seq > 0 ORDER BY seq",
        "i", schedule_seq);
}

//  --------------------------------------------------------------------------
//  Plan: the same selection and estimates, through the planner

json_t *
sf_bulk_plan (sf_bulk_t *self, json_t *select, const sf_bulk_opts_t *opts,
              sf_err_t *err)
{
    assert (self && opts);
    if (opts->strategy && !sf_strategy_known (opts->strategy)) {
        sf_strategy_check (opts->strategy, "", "", "", err);
        return NULL;
    }
    zlistx_t *chosen = s_select (self, select, err);
    if (!chosen)
        return NULL;
    sf_plan_model_t model;
    sf_jobs_model (self->jobs, &model);
    zhashx_t *busy = sf_jobs_busy (self->jobs, err);
    if (!busy) {
        zlistx_destroy (&chosen);
        return NULL;
    }
    sf_plan_t *plan = sf_plan_new (&self->limits);
    for (sf_peer_t *peer = sf_peers_first (self->peers); peer;
         peer = sf_peers_next (self->peers))
        if (peer->up && peer->routing_id)
            sf_plan_node (plan, peer->name, peer->store, peer->ceph_cluster,
                          peer->max_jobs, sf_peers_scratch (peer));
    int64_t now = sf_time_now_ms ();
    json_t *refused = json_array ();
    json_t *by_id = json_object ();
    size_t index = 0;
    for (sf_instance_rec_t *instance = (sf_instance_rec_t *) zlistx_first (chosen); instance;
         instance = (sf_instance_rec_t *) zlistx_next (chosen), index++) {
        const char *strategy = NULL;
        sf_err_t refusal = SF_ERR_INIT;
        const char *name = instance->name;
        const char *node = instance->node;
        if (s_refusal (self, instance, opts->strategy, busy, &strategy, &refusal)) {
            json_array_append_new (refused, json_pack ("{s:s, s:s, s:{s:i, s:s}}",
                "instance", name, "node", node, "error", "code", refusal.code,
                "text", refusal.text));
            continue;
        }
        char id [32];
        snprintf (id, sizeof (id), "P%zu", index + 1);
        sf_admit_job_t job;
        memset (&job, 0, sizeof (job));
        sf_peer_t *peer = sf_peers_by_name (self->peers, node);
        int64_t rbd_snap_ms = peer? peer->rbd_snap_ms: 0;
        sf_plan_model_t node_model = model;
        sf_plan_model_node (&node_model, rbd_snap_ms);
        s_estimate (&self->limits, &node_model, instance, strategy, &job);
        job.id = id;
        job.node = node;
        job.seq = index + 1;
        job.priority = opts->priority;
        job.deadline_ms = opts->deadline_ms;
        job.window_end_ms = opts->window_end_ms;
        char note [200];
        const char *rbd_note = sf_plan_rbd_note (strategy, rbd_snap_ms, note, sizeof (note));
        if (sf_plan_add (plan, &job) == 0)
            json_object_set_new (by_id, id, json_pack ("{s:s, s:s, s:s, s:I, s:I, s:o}",
                "instance", name, "node", node, "strategy", strategy,
                "capture_ms", (json_int_t) job.capture_ms,
                "upload_bytes", (json_int_t) job.upload_bytes,
                "note", rbd_note? json_string (rbd_note): json_null ()));
    }
    json_t *result = NULL;
    if (sf_plan_run (plan, now) == 0) {
        json_t *rows = json_array ();
        int late = 0, skipped = 0;
        for (size_t i = 0; i < sf_plan_size (plan); i++) {
            const sf_plan_row_t *row = sf_plan_row (plan, i);
            json_t *entry = json_deep_copy (json_object_get (by_id, row->id));
            if (!entry)
                continue;
            json_object_set_new (entry, "start_ms", json_integer (row->start_ms));
            json_object_set_new (entry, "end_ms", json_integer (row->end_ms));
            json_object_set_new (entry, "late", json_boolean (row->late));
            json_object_set_new (entry, "skipped", json_boolean (row->skipped));
            json_object_set_new (entry, "reason", *row->reason? json_string (row->reason)
                                                              : json_null ());
            late += row->late? 1: 0;
            skipped += row->skipped? 1: 0;
            json_array_append_new (rows, entry);
        }
        result = json_pack ("{s:I, s:I, s:I, s:I, s:i, s:i, s:o, s:o}",
            "now", (json_int_t) now,
            "makespan_ms", (json_int_t) sf_plan_makespan_ms (plan),
            "lower_bound_ms", (json_int_t) sf_plan_lower_bound_ms (plan),
            "total", (json_int_t) zlistx_size (chosen),
            "late", late, "skipped", skipped, "jobs", rows, "refused", refused);
        refused = NULL;
    }
    else
        sf_err_set (err, SF_EINVAL, "the planner could not simulate this selection");
    json_decref (refused);
    json_decref (by_id);
    zlistx_destroy (&chosen);
    zhashx_destroy (&busy);
    sf_plan_destroy (&plan);
    return result;
}

//  --------------------------------------------------------------------------
//  Self test (the end-to-end flows are in sf_sched's self test)

void
sf_bulk_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_bulk: ");
    //  @selftest
    zlistx_t *all = s_instances_new ();
    const char *tiers [] = { "gold", "bronze", NULL };
    for (int i = 0; i < 3; i++) {
        sf_instance_rec_t *instance = (sf_instance_rec_t *) zmalloc (sizeof (*instance));
        instance->uuid = strdup (i == 0? "a": i == 1? "b": "c");
        instance->tags = zhashx_new ();
        zhashx_set_destructor (instance->tags, (zhashx_destructor_fn *) zstr_free);
        zhashx_set_duplicator (instance->tags, (zhashx_duplicator_fn *) strdup);
        if (tiers [i])
            zhashx_insert (instance->tags, "tier", (void *) tiers [i]);
        zlistx_add_end (all, instance);
    }
    sf_err_t err = SF_ERR_INIT;
    zlistx_t *gold = s_filter_tag (all, "tier=gold", &err);
    assert (zlistx_size (gold) == 1);
    assert (streq (((sf_instance_rec_t *) zlistx_first (gold))->uuid, "a"));
    assert (zlistx_size (all) == 2);
    zlistx_destroy (&gold);
    assert (!s_filter_tag (all, "=gold", &err) && err.code == SF_EINVAL);
    zlistx_destroy (&all);
    assert (s_seq_of ("J42") == 42);
    //  @end
    printf ("OK\n");
}

