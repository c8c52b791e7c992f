/*  =========================================================================
    sf_pruneq - the bounded queue of image deletions waiting to run
    =========================================================================
*/
#include "sf_worker_classes.h"

//  Structure of our class

struct _sf_pruneq_t {
    zlistx_t *requests;             //  Owned sf_envelope_t *, oldest first
    size_t max;
};

//  --------------------------------------------------------------------------
//  Constructor, destructor

sf_pruneq_t *
sf_pruneq_new (size_t max)
{
    sf_pruneq_t *self = (sf_pruneq_t *) zmalloc (sizeof (sf_pruneq_t));
    self->requests = zlistx_new ();
    zlistx_set_destructor (self->requests, (zlistx_destructor_fn *) sf_wire_free);
    self->max = max;
    return self;
}

void
sf_pruneq_destroy (sf_pruneq_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zlistx_destroy (&(*self_p)->requests);
        free (*self_p);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Queue

int
sf_pruneq_push (sf_pruneq_t *self, sf_envelope_t **env_p, const char *node, sf_err_t *err)
{
    assert (self && env_p && *env_p && node);
    assert ((*env_p)->body_case == SF_BODY_IMAGE_DELETE);
    size_t waiting = zlistx_size (self->requests);
    if (waiting >= self->max)
        return sf_err_set (err, SF_EBUSY, "node '%s' is busy: %zu image deletions are "
                           "waiting", node, waiting);
    zlistx_add_end (self->requests, *env_p);
    *env_p = NULL;
    return 0;
}

sf_envelope_t *
sf_pruneq_pop (sf_pruneq_t *self)
{
    assert (self);
    zlistx_first (self->requests);
    return (sf_envelope_t *) (zlistx_size (self->requests)
                              ? zlistx_detach_cur (self->requests) : NULL);
}

size_t
sf_pruneq_size (sf_pruneq_t *self)
{
    assert (self);
    return zlistx_size (self->requests);
}

zframe_t *
sf_pruneq_answer (const sf_image_delete_t *request, const sf_err_t *err)
{
    assert (request && err);
    sf_image_t image = SF_IMAGE_INIT;
    if (request->image) {
        image.store = request->image->store;
        image.id = request->image->id;
        image.path = request->image->path;
    }
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    error.code = err->code ? err->code : SF_EIO;
    error.text = (char *) err->text;
    sf_image_deleted_t deleted = SF_IMAGE_DELETED_INIT;
    deleted.request_id = request->request_id;
    deleted.image = &image;
    deleted.error = &error;
    sf_envelope_t env = sf_wire_envelope (SF_BODY_IMAGE_DELETED, &deleted);
    sf_err_t encode_err = SF_ERR_INIT;
    zframe_t *frame = sf_wire_encode (&env, &encode_err);
    assert (frame);             //  every string came in a valid envelope
    return frame;
}

//  --------------------------------------------------------------------------
//  Self test

static sf_envelope_t *
s_test_request (const char *request_id)
{
    sf_image_t image = SF_IMAGE_INIT;
    image.store = "dir";
    image.id = (char *) request_id;
    sf_image_delete_t request = SF_IMAGE_DELETE_INIT;
    request.request_id = (char *) request_id;
    request.image = &image;
    request.catalog_id = "0123456789abcdef";
    request.job_id = "J1";
    sf_envelope_t env = sf_wire_envelope (SF_BODY_IMAGE_DELETE, &request);
    sf_err_t err = SF_ERR_INIT;
    zframe_t *frame = sf_wire_encode (&env, &err);
    assert (frame);
    sf_envelope_t *copy = sf_wire_decode (frame, &err);
    assert (copy);
    zframe_destroy (&frame);
    return copy;
}

void
sf_pruneq_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_pruneq: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    sf_pruneq_t *queue = sf_pruneq_new (3);
    assert (sf_pruneq_pop (queue) == NULL);
    char id [16];
    for (int i = 0; i < 3; i++) {
        snprintf (id, sizeof (id), "R%d", i);
        sf_envelope_t *env = s_test_request (id);
        assert (sf_pruneq_push (queue, &env, "n1", &err) == 0 && env == NULL);
    }
    //  Full: refused with SF_EBUSY, the request stays the caller's
    sf_envelope_t *env = s_test_request ("R3");
    assert (sf_pruneq_push (queue, &env, "n1", &err) == -1 && env);
    assert (err.code == SF_EBUSY);
    assert (streq (err.text, "node 'n1' is busy: 3 image deletions are waiting"));
    assert (sf_pruneq_size (queue) == 3);
    //  The answer names the request and its image, with the error
    zframe_t *frame = sf_pruneq_answer (env->image_delete, &err);
    sf_envelope_t *answer = sf_wire_decode (frame, &err);
    assert (answer && answer->body_case == SF_BODY_IMAGE_DELETED);
    assert (streq (answer->image_deleted->request_id, "R3"));
    assert (streq (answer->image_deleted->image->id, "R3"));
    assert (answer->image_deleted->error->code == SF_EBUSY);
    assert (strstr (answer->image_deleted->error->text, "is busy"));
    sf_wire_free (&answer);
    zframe_destroy (&frame);
    sf_wire_free (&env);
    //  Oldest first; room again after a pop
    env = sf_pruneq_pop (queue);
    assert (env && streq (env->image_delete->request_id, "R0"));
    sf_wire_free (&env);
    env = s_test_request ("R4");
    assert (sf_pruneq_push (queue, &env, "n1", &err) == 0);
    env = sf_pruneq_pop (queue);
    assert (env && streq (env->image_delete->request_id, "R1"));
    sf_wire_free (&env);
    assert (sf_pruneq_size (queue) == 2);
    sf_pruneq_destroy (&queue);         //  frees what is still queued
    assert (queue == NULL);
    //  @end
    printf ("OK\n");
}
