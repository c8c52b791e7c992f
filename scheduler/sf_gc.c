/*  =========================================================================
    sf_gc - the reconciler: what the nodes hold against what the catalogue
    says exists (see sf_gc.h)
    =========================================================================
*/
#include "sf_sched_classes.h"

SF_LOG_MODULE ("sched.gc");

//  One holding of a node, decided
typedef struct {
    sf_holding_t holding;       //  strings owned
    bool orphan;
    char reason [160];
    int outcome;                //  0 not asked, 1 removed, 2 failed
    char *error;                //  Owned, why its removal failed
} item_t;

//  One node of a run
typedef struct {
    char *name;                 //  Owned
    char request_id [64];
    const char *state;          //  "listing", "removing", "done", "no answer",
                                //  "error"
    char note [512];
    int64_t deadline_ms;        //  mono: the current step's
    zlistx_t *items;            //  Owned, item_t *
    json_t *missing;            //  Owned, [{"store","id","job_id"}]
    bool store_complete, rbd_complete;
} node_t;

typedef struct {
    char id [24];
    bool dry_run, auto_run;
    int64_t started_ms;         //  wall clock
    zlistx_t *nodes;            //  Owned, node_t *
} run_t;

struct _sf_gc_t {
    sf_store_t *store;          //  Borrowed
    sf_gc_send_fn *send;
    void *send_arg;
    int64_t interval_ms, grace_ms, timeout_ms;
    bool remove;
    int64_t next_ms;            //  wall: the next periodic run
    uint64_t seq;
    char token [9];             //  random per process: stale answers of
                                //  another run of the scheduler never match
    zlistx_t *runs;             //  Owned, run_t *, oldest first
    zhashx_t *hello_ms;         //  Owned: node -> mono ms of its last hello run
};

//  --------------------------------------------------------------------------
//  The decision table

static bool
s_unfinished (const char *state)
{
    return !streq (state, "done") && !streq (state, "failed") && !streq (state, "skipped")
        && !streq (state, "cancelled");
}

bool
sf_gc_decide (const sf_holding_t *holding, const sf_gc_facts_t *facts, int64_t grace_ms,
              char *reason, size_t size)
{
    assert (holding && facts && reason);
    const char *job = holding->job_id, *state = facts->job_state;
    const char *kind = sf_wire_holding_kind_name (holding->kind);
    if (state && s_unfinished (state)) {
        snprintf (reason, size, "job %s is %s", job, state);
        return false;
    }
    if (facts->catalogued && holding->kind != SF_HOLDING_SCRATCH) {
        snprintf (reason, size, "catalogued image");
        return false;
    }
    if (holding->kind == SF_HOLDING_SNAP && facts->clone_catalogued) {
        snprintf (reason, size, "parent of a catalogued clone of job %s", job);
        return false;
    }
    if (holding->age_ms < (uint64_t) grace_ms) {
        snprintf (reason, size, "younger than the grace of %" PRId64 " s", grace_ms / 1000);
        return false;
    }
    if (!state)
        snprintf (reason, size, "job %s unknown to this catalogue", job);
    else
    if (holding->kind == SF_HOLDING_TEMP || holding->kind == SF_HOLDING_SCRATCH)
        snprintf (reason, size, "%s of job %s, which %s",
                  holding->kind == SF_HOLDING_TEMP ? "temp file" : "scratch", job,
                  streq (state, "failed") ? "failed" : "ended");
    else
    if (streq (state, "failed"))
        snprintf (reason, size, "job %s failed", job);
    else
        snprintf (reason, size, "job %s is %s but this %s is not in the catalogue", job,
                  state, kind);
    return true;
}

//  --------------------------------------------------------------------------
//  Runs

static void
s_item_destroy (item_t **self_p)
{
    if (*self_p) {
        item_t *self = *self_p;
        free (self->holding.name);
        free (self->holding.job_id);
        free (self->error);
        free (self);
        *self_p = NULL;
    }
}

static void
s_node_destroy (node_t **self_p)
{
    if (*self_p) {
        node_t *self = *self_p;
        free (self->name);
        zlistx_destroy (&self->items);
        json_decref (self->missing);
        free (self);
        *self_p = NULL;
    }
}

static void
s_run_destroy (run_t **self_p)
{
    if (*self_p) {
        run_t *self = *self_p;
        zlistx_destroy (&self->nodes);
        free (self);
        *self_p = NULL;
    }
}

static bool
s_node_busy (const node_t *node)
{
    return streq (node->state, "listing") || streq (node->state, "removing");
}

static bool
s_run_busy (run_t *run)
{
    for (node_t *node = (node_t *) zlistx_first (run->nodes); node;
         node = (node_t *) zlistx_next (run->nodes))
        if (s_node_busy (node))
            return true;
    return false;
}

sf_gc_t *
sf_gc_new (sf_store_t *store, const sf_schedcfg_t *cfg, sf_gc_send_fn *send, void *arg)
{
    assert (store && cfg && send);
    sf_gc_t *self = (sf_gc_t *) zmalloc (sizeof (sf_gc_t));
    self->store = store;
    self->send = send;
    self->send_arg = arg;
    self->interval_ms = cfg->gc_interval_ms;
    self->grace_ms = cfg->gc_grace_ms;
    self->timeout_ms = cfg->gc_timeout_ms;
    self->remove = cfg->gc_remove;
    self->next_ms = sf_time_now_ms () + self->interval_ms;
    zuuid_t *uuid = zuuid_new ();
    snprintf (self->token, sizeof (self->token), "%.8s", zuuid_str (uuid));
    zuuid_destroy (&uuid);
    self->runs = zlistx_new ();
    zlistx_set_destructor (self->runs, (zlistx_destructor_fn *) s_run_destroy);
    self->hello_ms = zhashx_new ();
    zhashx_set_destructor (self->hello_ms, (zhashx_destructor_fn *) zstr_free);
    return self;
}

void
sf_gc_destroy (sf_gc_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_gc_t *self = *self_p;
        zlistx_destroy (&self->runs);
        zhashx_destroy (&self->hello_ms);
        free (self);
        *self_p = NULL;
    }
}

bool
sf_gc_enabled (sf_gc_t *self)
{
    assert (self);
    return self->interval_ms > 0;
}

bool
sf_gc_auto_removes (sf_gc_t *self)
{
    assert (self);
    return self->remove;
}

static run_t *
s_run (sf_gc_t *self, const char *id)
{
    for (run_t *run = (run_t *) zlistx_first (self->runs); run;
         run = (run_t *) zlistx_next (self->runs))
        if (streq (run->id, id))
            return run;
    return NULL;
}

//  The node of run whose request is request_id

static node_t *
s_node_of (sf_gc_t *self, const char *request_id, run_t **run_p)
{
    for (run_t *run = (run_t *) zlistx_first (self->runs); run;
         run = (run_t *) zlistx_next (self->runs))
        for (node_t *node = (node_t *) zlistx_first (run->nodes); node;
             node = (node_t *) zlistx_next (run->nodes))
            if (streq (node->request_id, request_id)) {
                *run_p = run;
                return node;
            }
    return NULL;
}

//  Forget the oldest finished runs beyond SF_GC_RUNS

static void
s_forget (sf_gc_t *self)
{
    run_t *run = (run_t *) zlistx_first (self->runs);
    while (run && zlistx_size (self->runs) > SF_GC_RUNS) {
        if (!s_run_busy (run)) {
            zlistx_delete (self->runs, zlistx_cursor (self->runs));
            run = (run_t *) zlistx_first (self->runs);
        }
        else
            run = (run_t *) zlistx_next (self->runs);
    }
}

const char *
sf_gc_start (sf_gc_t *self, zlistx_t *nodes, bool dry_run, bool auto_run, sf_err_t *err)
{
    assert (self && nodes);
    if (zlistx_size (nodes) == 0) {
        sf_err_set (err, SF_EINVAL, "no node to reconcile (none is up)");
        return NULL;
    }
    size_t busy = 0;
    for (run_t *run = (run_t *) zlistx_first (self->runs); run;
         run = (run_t *) zlistx_next (self->runs))
        busy += s_run_busy (run);
    if (busy >= SF_GC_BUSY) {
        sf_err_set (err, SF_EBUSY, "%zu gc runs are in progress; try again later", busy);
        return NULL;
    }
    run_t *run = (run_t *) zmalloc (sizeof (run_t));
    snprintf (run->id, sizeof (run->id), "G%" PRIu64, ++self->seq);
    run->dry_run = dry_run;
    run->auto_run = auto_run;
    run->started_ms = sf_time_now_ms ();
    run->nodes = zlistx_new ();
    zlistx_set_destructor (run->nodes, (zlistx_destructor_fn *) s_node_destroy);
    zlistx_add_end (self->runs, run);
    for (const char *name = (const char *) zlistx_first (nodes); name;
         name = (const char *) zlistx_next (nodes)) {
        node_t *node = (node_t *) zmalloc (sizeof (node_t));
        node->name = strdup (name);
        snprintf (node->request_id, sizeof (node->request_id), "%s.%s", run->id, self->token);
        node->items = zlistx_new ();
        zlistx_set_destructor (node->items, (zlistx_destructor_fn *) s_item_destroy);
        node->missing = json_array ();
        node->deadline_ms = sf_time_mono_ms () + self->timeout_ms;
        zlistx_add_end (run->nodes, node);
        sf_gc_list_t msg = SF_GC_LIST_INIT;
        msg.request_id = node->request_id;
        msg.catalog_id = (char *) sf_store_catalog_id (self->store);
        sf_envelope_t env = sf_wire_envelope (SF_BODY_GC_LIST, &msg);
        sf_err_t send_err = SF_ERR_INIT;
        if (self->send (self->send_arg, name, &env, &send_err)) {
            node->state = "error";
            snprintf (node->note, sizeof (node->note), "%s", send_err.text);
        }
        else
            node->state = "listing";
    }
    SF_INFO (NULL, "gc run %s%s%s on %zu node%s", run->id, dry_run ? " (dry run)" : "",
             auto_run ? " (periodic)" : "", zlistx_size (nodes),
             zlistx_size (nodes) == 1 ? "" : "s");
    s_forget (self);
    return run->id;
}

const char *
sf_gc_hello (sf_gc_t *self, const char *node)
{
    assert (self && node);
    if (self->interval_ms <= 0)
        return NULL;
    int64_t now = sf_time_mono_ms ();
    int64_t *last = (int64_t *) zhashx_lookup (self->hello_ms, node);
    if (last && now - *last < self->interval_ms)
        return NULL;            //  it had one lately
    if (!last) {
        if (zhashx_size (self->hello_ms) >= 65536)
            zhashx_purge (self->hello_ms);
        last = (int64_t *) zmalloc (sizeof (int64_t));
        zhashx_insert (self->hello_ms, node, last);
    }
    *last = now;
    zlistx_t *nodes = zlistx_new ();
    zlistx_add_end (nodes, (void *) node);
    sf_err_t err = SF_ERR_INIT;
    const char *id = sf_gc_start (self, nodes, !self->remove, true, &err);
    if (!id) {
        sf_logctx_t ctx = { .node = node };
        SF_WARN (&ctx, "cannot start gc: %s", err.text);
    }
    zlistx_destroy (&nodes);
    return id;
}

//  --------------------------------------------------------------------------
//  Answers

//  0 or 1 for query sql (one 's' parameter): does it give a row? -1 on
//  error

static int
s_exists (sf_gc_t *self, const char *sql, const char *value, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err, sql, "s", value);
    if (!stmt)
        return -1;
    int rc = sf_store_step (self->store, stmt, err);
    sqlite3_finalize (stmt);
    return rc;
}

static int
s_facts (sf_gc_t *self, const sf_holding_t *holding, sf_gc_facts_t *facts, char *state,
         size_t state_size, sf_err_t *err)
{
    *facts = (sf_gc_facts_t) { NULL, false, false };
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT state FROM jobs WHERE id = ?1", "s", holding->job_id);
    if (!stmt)
        return -1;
    int rc = sf_store_step (self->store, stmt, err);
    if (rc == 1) {
        snprintf (state, state_size, "%s", sf_store_text (stmt, 0));
        facts->job_state = state;
    }
    sqlite3_finalize (stmt);
    if (rc < 0)
        return -1;
    switch (holding->kind) {
        case SF_HOLDING_IMAGE:
        case SF_HOLDING_TEMP:
            rc = s_exists (self, "SELECT 1 FROM images WHERE store = 'dir' AND id = ?1",
                           holding->name, err);
            facts->catalogued = rc == 1;
            break;
        case SF_HOLDING_CLONE:
            rc = s_exists (self, "SELECT 1 FROM images WHERE store = 'rbd' AND id = ?1",
                           holding->name, err);
            facts->catalogued = rc == 1;
            break;
        case SF_HOLDING_SNAP:
            rc = s_exists (self, "SELECT 1 FROM images WHERE store = 'rbd' AND job_id = ?1",
                           holding->job_id, err);
            facts->clone_catalogued = rc == 1;
            break;
        default:
            rc = 0;
    }
    return rc < 0 ? -1 : 0;
}

//  Catalogued dir images of node's jobs (stored before the run began, so
//  the listing came after them) that the listing lacks as complete images
//  are missing; those it has are not (any more)

static int
s_mark_missing (sf_gc_t *self, run_t *run, node_t *node, zhashx_t *listed, sf_err_t *err)
{
    sqlite3_stmt *stmt = sf_store_prepare (self->store, err,
        "SELECT i.id, i.job_id, i.missing FROM images i JOIN jobs j ON j.id = i.job_id"
        " WHERE j.node = ?1 AND i.store = 'dir' AND i.created <= ?2",
        "si", node->name, run->started_ms);
    if (!stmt)
        return -1;
    zlistx_t *gone = zlistx_new (), *back = zlistx_new ();
    zlistx_set_destructor (gone, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_destructor (back, (zlistx_destructor_fn *) zstr_free);
    int rc;
    while ((rc = sf_store_step (self->store, stmt, err)) == 1) {
        const char *id = sf_store_text (stmt, 0);
        bool was_missing = sqlite3_column_int64 (stmt, 2) != 0;
        if (!zhashx_lookup (listed, id)) {
            zlistx_add_end (gone, strdup (id));
            json_array_append_new (node->missing, json_pack ("{s:s, s:s, s:s}", "store", "dir",
                                   "id", id, "job_id", sf_store_text (stmt, 1)));
        }
        else
        if (was_missing)
            zlistx_add_end (back, strdup (id));
    }
    sqlite3_finalize (stmt);
    int64_t now = sf_time_now_ms ();
    for (const char *id = (const char *) zlistx_first (gone); rc == 0 && id;
         id = (const char *) zlistx_next (gone)) {
        int changed = sf_store_exec (self->store, err, "UPDATE images SET missing = ?1"
                                     " WHERE store = 'dir' AND id = ?2 AND missing = 0",
                                     "is", now, id);
        if (changed < 0)
            rc = -1;
        else
        if (changed > 0) {
            sf_logctx_t ctx = { .node = node->name };
            SF_WARN (&ctx, "catalogued image '%s' is missing from the node's store", id);
        }
    }
    for (const char *id = (const char *) zlistx_first (back); rc == 0 && id;
         id = (const char *) zlistx_next (back))
        if (sf_store_exec (self->store, err, "UPDATE images SET missing = 0"
                           " WHERE store = 'dir' AND id = ?1", "s", id) < 0)
            rc = -1;
    zlistx_destroy (&gone);
    zlistx_destroy (&back);
    return rc;
}

int
sf_gc_on_holdings (sf_gc_t *self, const char *node_name, const sf_gc_holdings_t *msg)
{
    assert (self && node_name && msg);
    run_t *run = NULL;
    node_t *node = s_node_of (self, msg->request_id, &run);
    sf_logctx_t ctx = { .node = node_name };
    if (!node || !streq (node->name, node_name) || !streq (node->state, "listing")) {
        SF_WARN (&ctx, "dropping gc holdings of request '%s': not one this node was asked "
                 "(or it came late)", msg->request_id);
        return -1;
    }
    node->store_complete = msg->store_complete;
    node->rbd_complete = msg->rbd_complete;
    snprintf (node->note, sizeof (node->note), "%s", msg->note ? msg->note : "");
    sf_err_t err = SF_ERR_INIT;
    zhashx_t *listed = zhashx_new ();
    size_t orphans = 0;
    for (size_t i = 0; i < msg->n_holdings; i++) {
        const sf_holding_t *h = msg->holdings [i];
        item_t *item = (item_t *) zmalloc (sizeof (item_t));
        item->holding = (sf_holding_t) SF_HOLDING_INIT;
        item->holding.kind = h->kind;
        item->holding.name = strdup (h->name);
        item->holding.job_id = strdup (h->job_id);
        item->holding.bytes = h->bytes;
        item->holding.age_ms = h->age_ms;
        zlistx_add_end (node->items, item);
        if (h->kind == SF_HOLDING_IMAGE)      //  complete: its file is there
            zhashx_update (listed, h->name, (void *) 1);
        sf_gc_facts_t facts;
        char state [32];
        if (s_facts (self, h, &facts, state, sizeof (state), &err)) {
            snprintf (item->reason, sizeof (item->reason), "kept: cannot read the "
                      "catalogue: %.100s", err.text);
            continue;
        }
        item->orphan = sf_gc_decide (h, &facts, self->grace_ms, item->reason,
                                     sizeof (item->reason));
        orphans += item->orphan;
    }
    if (msg->store_complete && s_mark_missing (self, run, node, listed, &err))
        SF_ERROR (&ctx, "cannot mark missing images: %s", err.text);
    zhashx_destroy (&listed);
    SF_INFO (&ctx, "gc run %s: %zu objects listed, %zu orphans%s", run->id, msg->n_holdings,
             orphans, msg->note && *msg->note ? " (listing incomplete)" : "");
    if (run->dry_run || orphans == 0) {
        node->state = "done";
        return 0;
    }
    sf_holding_t **doomed = (sf_holding_t **) zmalloc (orphans * sizeof (sf_holding_t *));
    size_t count = 0;
    for (item_t *item = (item_t *) zlistx_first (node->items); item;
         item = (item_t *) zlistx_next (node->items))
        if (item->orphan)
            doomed [count++] = &item->holding;
    sf_gc_remove_t remove = SF_GC_REMOVE_INIT;
    remove.request_id = node->request_id;
    remove.catalog_id = (char *) sf_store_catalog_id (self->store);
    remove.holdings = doomed;
    remove.n_holdings = count;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_GC_REMOVE, &remove);
    if (self->send (self->send_arg, node->name, &env, &err)) {
        node->state = "error";
        snprintf (node->note, sizeof (node->note), "cannot ask for the removal: %s",
                  err.text);
    }
    else {
        node->state = "removing";
        node->deadline_ms = sf_time_mono_ms () + self->timeout_ms;
    }
    free (doomed);
    return 0;
}

static item_t *
s_item (node_t *node, const sf_holding_t *h)
{
    for (item_t *item = (item_t *) zlistx_first (node->items); item;
         item = (item_t *) zlistx_next (node->items))
        if (item->orphan && item->holding.kind == h->kind && streq (item->holding.name, h->name))
            return item;
    return NULL;
}

int
sf_gc_on_removed (sf_gc_t *self, const char *node_name, const sf_gc_removed_t *msg)
{
    assert (self && node_name && msg);
    run_t *run = NULL;
    node_t *node = s_node_of (self, msg->request_id, &run);
    sf_logctx_t ctx = { .node = node_name };
    if (!node || !streq (node->name, node_name) || !streq (node->state, "removing")) {
        SF_WARN (&ctx, "dropping gc removal answer of request '%s': not one this node was "
                 "asked (or it came late)", msg->request_id);
        return -1;
    }
    for (size_t i = 0; i < msg->n_removed; i++) {
        item_t *item = s_item (node, msg->removed [i]);
        if (!item)
            continue;           //  not asked: ignored
        item->outcome = 1;
        SF_NOTICE (&ctx, "gc run %s removed %s '%s' (%s)", run->id,
                   sf_wire_holding_kind_name (item->holding.kind), item->holding.name,
                   item->reason);
    }
    for (size_t i = 0; i < msg->n_failed; i++) {
        item_t *item = s_item (node, msg->failed [i]);
        if (!item)
            continue;
        item->outcome = 2;
        free (item->error);
        item->error = strdup (msg->failed [i]->error ? msg->failed [i]->error : "");
        SF_WARN (&ctx, "gc run %s could not remove %s '%s': %s", run->id,
                 sf_wire_holding_kind_name (item->holding.kind), item->holding.name,
                 item->error);
    }
    node->state = "done";
    return 0;
}

bool
sf_gc_tick (sf_gc_t *self, int64_t now_ms)
{
    assert (self);
    int64_t mono = sf_time_mono_ms ();
    for (run_t *run = (run_t *) zlistx_first (self->runs); run;
         run = (run_t *) zlistx_next (self->runs))
        for (node_t *node = (node_t *) zlistx_first (run->nodes); node;
             node = (node_t *) zlistx_next (run->nodes))
            if (s_node_busy (node) && mono >= node->deadline_ms) {
                sf_logctx_t ctx = { .node = node->name };
                SF_WARN (&ctx, "gc run %s: no answer to the %s within %" PRId64 " s", run->id,
                         streq (node->state, "listing") ? "listing" : "removal",
                         self->timeout_ms / 1000);
                snprintf (node->note, sizeof (node->note), "no answer to the %s within %"
                          PRId64 " s", streq (node->state, "listing") ? "listing" : "removal",
                          self->timeout_ms / 1000);
                node->state = "no answer";
            }
    if (self->interval_ms > 0 && now_ms >= self->next_ms) {
        self->next_ms = now_ms + self->interval_ms;
        return true;
    }
    return false;
}

zlistx_t *
sf_gc_connected (sf_peers_t *peers)
{
    assert (peers);
    zlistx_t *names = zlistx_new ();
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    for (sf_peer_t *peer = sf_peers_first (peers); peer; peer = sf_peers_next (peers))
        if (peer->up && peer->routing_id)
            zlistx_add_end (names, strdup (peer->name));
    return names;
}

//  --------------------------------------------------------------------------
//  JSON

static json_t *
s_item_json (const item_t *item)
{
    json_t *row = json_pack ("{s:s, s:s, s:s, s:I, s:I, s:s}",
        "kind", sf_wire_holding_kind_name (item->holding.kind),
        "name", item->holding.name, "job_id", item->holding.job_id,
        "bytes", (json_int_t) item->holding.bytes,
        "age_ms", (json_int_t) item->holding.age_ms, "reason", item->reason);
    if (item->outcome == 2)
        json_object_set_new (row, "error", json_string (item->error));
    return row;
}

json_t *
sf_gc_run_json (sf_gc_t *self, const char *id, sf_err_t *err)
{
    assert (self && id);
    run_t *run = s_run (self, id);
    if (!run) {
        sf_err_set (err, SF_ENOENT, "no gc run '%.64s' (the last %d are kept)", id,
                    SF_GC_RUNS);
        return NULL;
    }
    char started [40];
    json_t *nodes = json_array ();
    for (node_t *node = (node_t *) zlistx_first (run->nodes); node;
         node = (node_t *) zlistx_next (run->nodes)) {
        json_t *orphans = json_array (), *kept = json_array ();
        json_t *removed = json_array (), *failed = json_array ();
        for (item_t *item = (item_t *) zlistx_first (node->items); item;
             item = (item_t *) zlistx_next (node->items)) {
            json_array_append_new (item->orphan ? orphans : kept, s_item_json (item));
            if (item->outcome == 1)
                json_array_append_new (removed, s_item_json (item));
            if (item->outcome == 2)
                json_array_append_new (failed, s_item_json (item));
        }
        json_array_append_new (nodes, json_pack ("{s:s, s:s, s:s, s:b, s:b, s:o, s:o, s:o,"
            " s:o, s:O}", "node", node->name, "state", node->state, "note", node->note,
            "store_complete", node->store_complete, "rbd_complete", node->rbd_complete,
            "orphans", orphans, "kept", kept, "removed", removed, "failed", failed,
            "missing", node->missing));
    }
    return json_pack ("{s:s, s:b, s:b, s:s, s:s, s:o}", "id", run->id, "dry_run",
                      run->dry_run, "auto", run->auto_run, "state",
                      s_run_busy (run) ? "running" : "done", "started",
                      sf_time_rfc3339 (run->started_ms, started, sizeof (started)),
                      "nodes", nodes);
}

//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    zlistx_t *sent;             //  sf_envelope_t * (decoded copies)
    bool fail;
} test_outbox_t;

static int
s_test_send (void *arg, const char *node, sf_envelope_t *env, sf_err_t *err)
{
    test_outbox_t *outbox = (test_outbox_t *) arg;
    (void) node;
    if (outbox->fail)
        return sf_err_set (err, SF_ENODE, "node '%s' is not connected", node);
    zframe_t *frame = sf_wire_encode (env, err);
    assert (frame);
    sf_envelope_t *copy = sf_wire_decode (frame, err);
    assert (copy);
    zframe_destroy (&frame);
    zlistx_add_end (outbox->sent, copy);
    return 0;
}

static void
s_test_free_env (void **item)
{
    sf_wire_free ((sf_envelope_t **) item);
}

static bool
s_test_decide (int kind, const char *job, uint64_t age_ms, const char *state,
               bool catalogued, bool clone_catalogued, const char *expect)
{
    sf_holding_t h = SF_HOLDING_INIT;
    h.kind = (Sf__V1__HoldingKind) kind;
    h.name = "x";
    h.job_id = (char *) job;
    h.age_ms = age_ms;
    sf_gc_facts_t facts = { state, catalogued, clone_catalogued };
    char reason [160];
    bool orphan = sf_gc_decide (&h, &facts, 600000, reason, sizeof (reason));
    if (!streq (reason, expect))
        printf ("\n  decide: '%s', expected '%s'\n", reason, expect);
    assert (streq (reason, expect));
    return orphan;
}

void
sf_gc_test (bool verbose)
{
    printf (" * sf_gc: ");
    (void) verbose;
    //  @selftest
    const uint64_t old = 3600000;
    //  The decision table: live job, catalogued image, failed job, unknown
    //  job (another catalogue's ids are never listed at all), young object
    assert (!s_test_decide (SF_HOLDING_TEMP, "J1", old, "running", false, false,
                            "job J1 is running"));
    assert (!s_test_decide (SF_HOLDING_SNAP, "J1", old, "queued", false, false,
                            "job J1 is queued"));
    assert (!s_test_decide (SF_HOLDING_IMAGE, "J2", old, "done", true, false,
                            "catalogued image"));
    assert (!s_test_decide (SF_HOLDING_CLONE, "J2", old, "done", true, false,
                            "catalogued image"));
    assert (!s_test_decide (SF_HOLDING_SNAP, "J2", old, "done", false, true,
                            "parent of a catalogued clone of job J2"));
    assert (s_test_decide (SF_HOLDING_IMAGE, "J4", old, "failed", false, false,
                           "job J4 failed"));
    assert (s_test_decide (SF_HOLDING_SNAP, "J4", old, "failed", false, false,
                           "job J4 failed"));
    assert (s_test_decide (SF_HOLDING_IMAGE, "J9", old, NULL, false, false,
                           "job J9 unknown to this catalogue"));
    assert (s_test_decide (SF_HOLDING_TEMP, "J7", old, "done", false, false,
                           "temp file of job J7, which ended"));
    assert (s_test_decide (SF_HOLDING_SCRATCH, "J7", old, "failed", false, false,
                           "scratch of job J7, which failed"));
    assert (s_test_decide (SF_HOLDING_IMAGE, "J8", old, "done", false, false,
                           "job J8 is done but this image is not in the catalogue"));
    assert (!s_test_decide (SF_HOLDING_IMAGE, "J4", 1000, "failed", false, false,
                            "younger than the grace of 600 s"));
    assert (!s_test_decide (SF_HOLDING_TEMP, "J9", 599999, NULL, false, false,
                            "younger than the grace of 600 s"));
    //  A state the reconciler does not know (a newer scheduler's) keeps
    assert (!s_test_decide (SF_HOLDING_TEMP, "J1", old, "retrying", false, false,
                            "job J1 is retrying"));

    //  A run against a catalogue: J1 done with image i1 (and i2, whose
    //  file is gone), J2 failed, J3 running
    char path [] = "/tmp/sf_gc_test_XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    unlink (path);
    sf_err_t err = SF_ERR_INIT;
    sf_store_t *store = sf_store_new (path, &err);
    assert (store);
    assert (sf_store_script (store,
        "INSERT INTO nodes (name, state, last_seen) VALUES ('n1', 'up', 1), ('n2', 'up', 1);"
        "INSERT INTO jobs (id, instance_uuid, instance_name, node, state, phase, attempt,"
        " strategy, created, updated) VALUES"
        " ('J1', 'u1', 'vm1', 'n1', 'done', 'done', 1, 'file-cold', 1, 1),"
        " ('J2', 'u1', 'vm1', 'n1', 'failed', 'failed', 1, 'file-cold', 1, 1),"
        " ('J3', 'u1', 'vm1', 'n1', 'running', 'paused', 1, 'file-cold', 1, 1);"
        "INSERT INTO images (store, id, path, size, sha256, job_id, instance_uuid,"
        " instance_name, disk_target, format, created) VALUES"
        " ('dir', 'i1', '/s/i1.qcow2', 1, '', 'J1', 'u1', 'vm1', 'vda', 'qcow2', 1),"
        " ('dir', 'i2', '/s/i2.qcow2', 1, '', 'J1', 'u1', 'vm1', 'vdb', 'qcow2', 1);",
        &err) == 0);
    sf_schedcfg_t cfg;
    sf_schedcfg_init (&cfg);
    cfg.gc_grace_ms = 60000;
    test_outbox_t outbox = { zlistx_new (), false };
    zlistx_set_destructor (outbox.sent, s_test_free_env);
    sf_gc_t *gc = sf_gc_new (store, &cfg, s_test_send, &outbox);
    zlistx_t *nodes = zlistx_new ();
    zlistx_add_end (nodes, "n1");
    const char *id = sf_gc_start (gc, nodes, false, false, &err);
    assert (id && streq (id, "G1"));
    assert (zlistx_size (outbox.sent) == 1);
    sf_envelope_t *sent = (sf_envelope_t *) zlistx_first (outbox.sent);
    assert (sent->body_case == SF_BODY_GC_LIST);
    assert (streq (sent->gc_list->catalog_id, sf_store_catalog_id (store)));
    char request [64];
    snprintf (request, sizeof (request), "%s", sent->gc_list->request_id);
    //  The node lists: i1 (catalogued), a temp of J2, a snapshot of J3,
    //  scratch of J9 (unknown), a young image of J2
    sf_holding_t held [5] = { SF_HOLDING_INIT, SF_HOLDING_INIT, SF_HOLDING_INIT,
                              SF_HOLDING_INIT, SF_HOLDING_INIT };
    const struct { int kind; const char *name, *job; uint64_t age; } rows [] = {
        { SF_HOLDING_IMAGE, "i1", "J1", old }, { SF_HOLDING_TEMP, "t2", "J2", old },
        { SF_HOLDING_SNAP, "rbd/vm1@snapfleet-x-J3", "J3", old },
        { SF_HOLDING_SCRATCH, "J9", "J9", old }, { SF_HOLDING_IMAGE, "y2", "J2", 1000 },
    };
    sf_holding_t *ptrs [5];
    for (int i = 0; i < 5; i++) {
        held [i].kind = (Sf__V1__HoldingKind) rows [i].kind;
        held [i].name = (char *) rows [i].name;
        held [i].job_id = (char *) rows [i].job;
        held [i].age_ms = rows [i].age;
        ptrs [i] = &held [i];
    }
    sf_gc_holdings_t listing = SF_GC_HOLDINGS_INIT;
    listing.request_id = request;
    listing.holdings = ptrs, listing.n_holdings = 5;
    listing.store_complete = true, listing.rbd_complete = true;
    //  Another node cannot answer for n1, nor an unknown request
    assert (sf_gc_on_holdings (gc, "n2", &listing) == -1);
    listing.request_id = "G1.00000000";
    assert (sf_gc_on_holdings (gc, "n1", &listing) == -1);
    listing.request_id = request;
    assert (sf_gc_on_holdings (gc, "n1", &listing) == 0);
    //  The removal asks for exactly the two orphans
    assert (zlistx_size (outbox.sent) == 2);
    sent = (sf_envelope_t *) zlistx_last (outbox.sent);
    assert (sent->body_case == SF_BODY_GC_REMOVE && sent->gc_remove->n_holdings == 2);
    assert (streq (sent->gc_remove->holdings [0]->name, "t2"));
    assert (streq (sent->gc_remove->holdings [1]->name, "J9"));
    //  i2 is missing (marked, not deleted); i1 is not
    char *value = NULL;
    sqlite3_stmt *stmt = sf_store_prepare (store, &err, "SELECT group_concat (id || ':' ||"
                                           " (missing > 0), ',') FROM images", "");
    assert (stmt && sf_store_step (store, stmt, &err) == 1);
    value = strdup (sf_store_text (stmt, 0));
    sqlite3_finalize (stmt);
    assert (streq (value, "i1:0,i2:1"));
    free (value);
    json_t *run = sf_gc_run_json (gc, id, &err);
    assert (run && streq (json_string_value (json_object_get (run, "state")), "running"));
    json_decref (run);
    //  The node removed one, failed the other
    sf_holding_t failed_one = held [3];
    failed_one.error = "scratch directory holds files that are not ours";
    sf_holding_t *removed_ptrs [] = { &held [1] }, *failed_ptrs [] = { &failed_one };
    sf_gc_removed_t removed = SF_GC_REMOVED_INIT;
    removed.request_id = request;
    removed.removed = removed_ptrs, removed.n_removed = 1;
    removed.failed = failed_ptrs, removed.n_failed = 1;
    assert (sf_gc_on_removed (gc, "n1", &removed) == 0);
    assert (sf_gc_on_removed (gc, "n1", &removed) == -1);      //  once only
    run = sf_gc_run_json (gc, id, &err);
    assert (run && streq (json_string_value (json_object_get (run, "state")), "done"));
    json_t *node = json_array_get (json_object_get (run, "nodes"), 0);
    assert (json_array_size (json_object_get (node, "orphans")) == 2);
    assert (json_array_size (json_object_get (node, "kept")) == 3);
    assert (json_array_size (json_object_get (node, "removed")) == 1);
    assert (json_array_size (json_object_get (node, "failed")) == 1);
    assert (json_array_size (json_object_get (node, "missing")) == 1);
    json_t *orphan = json_array_get (json_object_get (node, "orphans"), 0);
    assert (streq (json_string_value (json_object_get (orphan, "reason")),
                   "temp file of job J2, which failed"));
    json_decref (run);

    //  A dry run removes nothing; a node that does not answer is listed so
    const char *dry = sf_gc_start (gc, nodes, true, false, &err);
    assert (dry);
    sent = (sf_envelope_t *) zlistx_last (outbox.sent);
    snprintf (request, sizeof (request), "%s", sent->gc_list->request_id);
    listing.request_id = request;
    size_t before = zlistx_size (outbox.sent);
    assert (sf_gc_on_holdings (gc, "n1", &listing) == 0);
    assert (zlistx_size (outbox.sent) == before);
    zlistx_add_end (nodes, "n2");
    cfg.gc_timeout_ms = 1000;
    sf_gc_t *quick = sf_gc_new (store, &cfg, s_test_send, &outbox);
    const char *silent = sf_gc_start (quick, nodes, true, false, &err);
    assert (silent);
    zclock_sleep (1100);
    assert (!sf_gc_tick (quick, sf_time_now_ms ()));    //  interval: 10 minutes
    assert (sf_gc_tick (quick, sf_time_now_ms () + cfg.gc_interval_ms + 1));
    assert (!sf_gc_tick (quick, sf_time_now_ms () + cfg.gc_interval_ms + 2));
    run = sf_gc_run_json (quick, silent, &err);
    assert (streq (json_string_value (json_object_get (run, "state")), "done"));
    node = json_array_get (json_object_get (run, "nodes"), 1);
    assert (streq (json_string_value (json_object_get (node, "state")), "no answer"));
    json_decref (run);
    sf_gc_destroy (&quick);
    //  A node not connected is an error at once
    outbox.fail = true;
    silent = sf_gc_start (gc, nodes, true, false, &err);
    run = sf_gc_run_json (gc, silent, &err);
    node = json_array_get (json_object_get (run, "nodes"), 0);
    assert (streq (json_string_value (json_object_get (node, "state")), "error"));
    json_decref (run);
    assert (sf_gc_run_json (gc, "G99", &err) == NULL && err.code == SF_ENOENT);
    //  A flood of hellos from a node starts one run per interval
    outbox.fail = false;
    assert (sf_gc_hello (gc, "n1"));
    for (int i = 0; i < 100; i++)
        assert (sf_gc_hello (gc, "n1") == NULL);
    //  At most SF_GC_BUSY runs at once
    zlistx_t *one = zlistx_new ();
    zlistx_add_end (one, "n2");
    size_t started = 0;
    while (sf_gc_start (gc, one, true, false, &err))
        started++;
    assert (err.code == SF_EBUSY && started < SF_GC_BUSY);
    zlistx_destroy (&one);
    zlistx_purge (nodes);
    assert (sf_gc_start (gc, nodes, true, false, &err) == NULL && err.code == SF_EINVAL);

    zlistx_destroy (&nodes);
    zlistx_destroy (&outbox.sent);
    sf_gc_destroy (&gc);
    sf_schedcfg_release (&cfg);
    sf_store_destroy (&store);
    char wal [64];
    unlink (path);
    snprintf (wal, sizeof (wal), "%s-wal", path);
    unlink (wal);
    snprintf (wal, sizeof (wal), "%s-shm", path);
    unlink (wal);
    //  @end
    printf ("OK\n");
}
