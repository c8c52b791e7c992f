/*  =========================================================================
    sf_unacked - the worker's outbox of unacknowledged messages

    A list in the order sent, and a hash from each message's Ack key to
    its place in the list, so that an Acks of thousands of entries costs
    one lookup each.
    =========================================================================
*/
#include "sf_worker_classes.h"

//  One message kept
typedef struct {
    zframe_t *frame;            //  Owned, encoded Envelope
    char *key;                  //  Owned, its Ack as a string
    int body;                   //  SF_BODY_JOB_EVENT, _JOB_RESULT, _IMAGE_DELETED
    char *job_id;               //  Owned, "" for a deletion answer
    uint32_t attempt;
} item_t;

//  Structure of our class

struct _sf_unacked_t {
    zlistx_t *items;            //  item_t, oldest first (owned)
    zhashx_t *keys;             //  key -> handle in items (not owned)
    size_t max;                 //  events kept at most
    size_t events;              //  events kept now
};

static void
s_item_destroy (item_t **item_p)
{
    if (*item_p) {
        item_t *item = *item_p;
        zframe_destroy (&item->frame);
        free (item->key);
        free (item->job_id);
        free (item);
        *item_p = NULL;
    }
}

//  The key of an Ack: equal keys, equal Acks (sf_wire_ack_matches)

static char *
s_key (const sf_ack_t *ack)
{
    if (ack->job_id && *ack->job_id)
        return zsys_sprintf ("J %s %u %d %" PRIu64, ack->job_id, ack->attempt,
                             (int) ack->phase, ack->at_ms);
    return zsys_sprintf ("R %s", ack->request_id ? ack->request_id : "");
}

//  --------------------------------------------------------------------------
//  Constructor and destructor

sf_unacked_t *
sf_unacked_new (size_t max)
{
    sf_unacked_t *self = (sf_unacked_t *) zmalloc (sizeof (sf_unacked_t));
    self->items = zlistx_new ();
    zlistx_set_destructor (self->items, (zlistx_destructor_fn *) s_item_destroy);
    self->keys = zhashx_new ();
    self->max = max;
    return self;
}

void
sf_unacked_destroy (sf_unacked_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_unacked_t *self = *self_p;
        zhashx_destroy (&self->keys);
        zlistx_destroy (&self->items);
        free (self);
        *self_p = NULL;
    }
}

//  Remove the item at handle

static void
s_remove (sf_unacked_t *self, void *handle)
{
    item_t *item = (item_t *) zlistx_handle_item (handle);
    zhashx_delete (self->keys, item->key);
    if (item->body == SF_BODY_JOB_EVENT)
        self->events--;
    zlistx_delete (self->items, handle);
}

//  Drop the oldest event; false if none is kept

static bool
s_drop_oldest_event (sf_unacked_t *self)
{
    for (item_t *item = (item_t *) zlistx_first (self->items); item;
         item = (item_t *) zlistx_next (self->items))
        if (item->body == SF_BODY_JOB_EVENT) {
            s_remove (self, zlistx_cursor (self->items));
            return true;
        }
    return false;
}

size_t
sf_unacked_add (sf_unacked_t *self, zframe_t *frame)
{
    assert (self && frame);
    sf_err_t err = SF_ERR_INIT;
    sf_envelope_t *env = sf_wire_decode (frame, &err);
    sf_ack_t ack;
    if (!env || !sf_wire_ack_of (env, &ack)) {
        sf_wire_free (&env);
        return 0;
    }
    item_t *item = (item_t *) zmalloc (sizeof (item_t));
    item->frame = zframe_dup (frame);
    item->key = s_key (&ack);
    item->body = (int) env->body_case;
    item->job_id = strdup (ack.job_id ? ack.job_id : "");
    item->attempt = ack.attempt;
    sf_wire_free (&env);
    void *old = zhashx_lookup (self->keys, item->key);
    if (old)
        s_remove (self, old);
    void *handle = zlistx_add_end (self->items, item);
    zhashx_insert (self->keys, item->key, handle);
    size_t dropped = 0;
    if (item->body == SF_BODY_JOB_EVENT)
        self->events++;
    while (self->events > self->max && s_drop_oldest_event (self))
        dropped++;
    return dropped;
}

size_t
sf_unacked_ack (sf_unacked_t *self, const sf_acks_t *acks, zlistx_t *results)
{
    assert (self && acks);
    size_t forgotten = 0;
    for (size_t i = 0; i < acks->n_acks; i++) {
        char *key = s_key (acks->acks [i]);
        void *handle = zhashx_lookup (self->keys, key);
        zstr_free (&key);
        if (!handle)
            continue;
        item_t *item = (item_t *) zlistx_handle_item (handle);
        if (results && item->body == SF_BODY_JOB_RESULT)
            zlistx_add_end (results, zsys_sprintf ("%s %u", item->job_id, item->attempt));
        s_remove (self, handle);
        forgotten++;
    }
    return forgotten;
}

zframe_t *
sf_unacked_first (sf_unacked_t *self)
{
    assert (self);
    item_t *item = (item_t *) zlistx_first (self->items);
    return item ? item->frame : NULL;
}

zframe_t *
sf_unacked_next (sf_unacked_t *self)
{
    assert (self);
    item_t *item = (item_t *) zlistx_next (self->items);
    return item ? item->frame : NULL;
}

size_t
sf_unacked_size (sf_unacked_t *self)
{
    assert (self);
    return zlistx_size (self->items);
}

bool
sf_unacked_has_result (sf_unacked_t *self, const char *job_id)
{
    assert (self && job_id);
    for (item_t *item = (item_t *) zlistx_first (self->items); item;
         item = (item_t *) zlistx_next (self->items))
        if (item->body == SF_BODY_JOB_RESULT && streq (item->job_id, job_id))
            return true;
    return false;
}

zlistx_t *
sf_unacked_result_ids (sf_unacked_t *self)
{
    assert (self);
    zlistx_t *ids = zlistx_new ();
    zlistx_set_destructor (ids, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (ids, (zlistx_comparator_fn *) strcmp);
    for (item_t *item = (item_t *) zlistx_first (self->items); item;
         item = (item_t *) zlistx_next (self->items))
        if (item->body == SF_BODY_JOB_RESULT && !zlistx_find (ids, item->job_id))
            zlistx_add_end (ids, strdup (item->job_id));
    zlistx_sort (ids);
    return ids;
}

//  --------------------------------------------------------------------------
//  Self test

static zframe_t *
s_test_event (const char *job_id, int phase, uint64_t at_ms)
{
    sf_job_event_t event = sf_wire_job_event (job_id, 1, phase, 0, 0);
    event.at_ms = at_ms;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_EVENT, &event);
    sf_err_t err = SF_ERR_INIT;
    return sf_wire_encode (&env, &err);
}

static zframe_t *
s_test_result (const char *job_id, uint32_t attempt)
{
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = (char *) job_id;
    result.attempt = attempt;
    result.ok = true;
    result.strategy = "file-cold";
    sf_envelope_t env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    sf_err_t err = SF_ERR_INIT;
    return sf_wire_encode (&env, &err);
}

void
sf_unacked_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_unacked: ");
    //  @selftest
    sf_unacked_t *box = sf_unacked_new (4);
    zframe_t *frames [6] = {
        s_test_event ("J1", SF_PHASE_PAUSED, 1000),
        s_test_event ("J1", SF_PHASE_RESUMED, 1001),
        s_test_result ("J1", 1),
        s_test_event ("J2", SF_PHASE_PAUSED, 1002),
        s_test_event ("J2", SF_PHASE_RESUMED, 1003),
        NULL
    };
    sf_image_deleted_t deleted = SF_IMAGE_DELETED_INIT;
    deleted.request_id = "R7";
    sf_envelope_t env = sf_wire_envelope (SF_BODY_IMAGE_DELETED, &deleted);
    sf_err_t err = SF_ERR_INIT;
    frames [5] = sf_wire_encode (&env, &err);
    assert (frames [5]);
    for (size_t i = 0; i < 5; i++)
        assert (sf_unacked_add (box, frames [i]) == 0);
    assert (sf_unacked_size (box) == 5);
    //  A fifth event drops the oldest event, never the result
    assert (sf_unacked_add (box, frames [5]) == 0);
    zframe_t *more = s_test_event ("J2", SF_PHASE_CONVERTED, 1004);
    assert (sf_unacked_add (box, more) == 1);
    assert (sf_unacked_size (box) == 6);
    assert (zframe_eq (sf_unacked_first (box), frames [1]));
    //  The same message again replaces the kept one, at the end
    assert (sf_unacked_add (box, frames [1]) == 0);
    assert (sf_unacked_size (box) == 6);
    assert (zframe_eq (sf_unacked_first (box), frames [2]));
    //  A message that needs no Ack is not kept
    sf_heartbeat_t beat = SF_HEARTBEAT_INIT;
    env = sf_wire_envelope (SF_BODY_HEARTBEAT, &beat);
    zframe_t *heartbeat = sf_wire_encode (&env, &err);
    assert (sf_unacked_add (box, heartbeat) == 0 && sf_unacked_size (box) == 6);
    assert (sf_unacked_has_result (box, "J1") && !sf_unacked_has_result (box, "J2"));
    zlistx_t *ids = sf_unacked_result_ids (box);
    assert (zlistx_size (ids) == 1 && streq ((char *) zlistx_first (ids), "J1"));
    zlistx_destroy (&ids);
    //  Acks: of the result (reported), of the deletion answer, of an event;
    //  one that matches nothing, and one of another attempt
    sf_ack_t acks [5] = {
        sf_wire_ack ("J1", 1, SF_PHASE_DONE, 0, NULL),
        sf_wire_ack (NULL, 0, 0, 0, "R7"),
        sf_wire_ack ("J2", 1, SF_PHASE_PAUSED, 1002, NULL),
        sf_wire_ack ("J9", 1, SF_PHASE_PAUSED, 1002, NULL),
        sf_wire_ack ("J2", 2, SF_PHASE_RESUMED, 1003, NULL),
    };
    sf_ack_t *ack_ptrs [5] = { &acks [0], &acks [1], &acks [2], &acks [3], &acks [4] };
    sf_acks_t list = SF_ACKS_INIT;
    list.acks = ack_ptrs;
    list.n_acks = 5;
    zlistx_t *results = zlistx_new ();
    zlistx_set_destructor (results, (zlistx_destructor_fn *) zstr_free);
    assert (sf_unacked_ack (box, &list, results) == 3);
    assert (zlistx_size (results) == 1 && streq ((char *) zlistx_first (results), "J1 1"));
    assert (sf_unacked_size (box) == 3);
    //  What is left, in the order sent
    assert (zframe_eq (sf_unacked_first (box), frames [4]));
    assert (zframe_eq (sf_unacked_next (box), more));
    assert (zframe_eq (sf_unacked_next (box), frames [1]));
    assert (sf_unacked_next (box) == NULL);
    assert (sf_unacked_ack (box, &list, NULL) == 0);
    zlistx_destroy (&results);
    for (size_t i = 0; i < 6; i++)
        zframe_destroy (&frames [i]);
    zframe_destroy (&more);
    zframe_destroy (&heartbeat);
    sf_unacked_destroy (&box);
    assert (box == NULL);
    //  @end
    printf ("OK\n");
}
