/*  =========================================================================
    sf_prune - delete one stored image (retention) as a zactor

    The deletion runs once, at the start of the actor; the answer goes to
    the pipe as "RESULT" + an encoded Envelope{ImageDeleted}. Nothing is
    touched unless the request names a valid catalogue and job, and the
    store or sf_stor finds the image to be that job's. A dir image is
    removed through the worker's image store (borrowed); an RBD clone
    through sf_stor_clone_prune, whose every call has the stor driver's
    deadline, so the actor never blocks for longer than a few deadlines
    even when the cluster is gone.
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_stor_fake.h"                //  the self-test's cluster

SF_LOG_MODULE ("worker.prune");

typedef struct {
    zsock_t *pipe;                  //  Borrowed, the actor pipe
    char *request_id, *store, *id, *path, *catalog_id, *job_id;
    sf_imgstore_t *images;          //  Borrowed, the worker's image store
    sf_stor_t *stor;                //  Borrowed, NULL = no Ceph
    sf_err_t err;
} prune_t;

static prune_t *
s_prune_new (const sf_prune_args_t *args)
{
    prune_t *self = (prune_t *) zmalloc (sizeof (prune_t));
    self->request_id = strdup (args->request_id);
    self->store = strdup (args->store);
    self->id = strdup (args->id);
    self->path = strdup (args->path ? args->path : "");
    self->catalog_id = strdup (args->catalog_id ? args->catalog_id : "");
    self->job_id = strdup (args->job_id ? args->job_id : "");
    self->images = args->images;
    self->stor = args->stor;
    return self;
}

static void
s_prune_destroy (prune_t **self_p)
{
    prune_t *self = *self_p;
    free (self->request_id);
    free (self->store);
    free (self->id);
    free (self->path);
    free (self->catalog_id);
    free (self->job_id);
    free (self);
    *self_p = NULL;
}

//  An image in the worker's image store

static int
s_remove_stored (prune_t *self)
{
    int rc = sf_imgstore_check (self->images, &self->err);
    if (rc == 0)
        rc = sf_imgstore_remove (self->images, self->id, self->catalog_id, self->job_id,
                                 &self->err);
    if (rc == 0)
        SF_INFO (NULL, "image '%s' deleted from store '%s' (request %s)", self->id,
                 self->store, self->request_id);
    return rc;
}

//  An RBD clone, and its snapshot once no clone needs it

static int
s_remove_clone (prune_t *self)
{
    if (!self->stor)
        return sf_err_set (&self->err, SF_ENOTSUP, "cannot delete rbd image '%s': this "
                           "worker has no Ceph storage ([storage.rbd])", self->id);
    sf_stor_spec_t spec;
    if (sf_stor_spec_parse (self->id, &spec, &self->err))
        return -1;
    sf_stor_obj_t parent;
    int rc = sf_stor_clone_prune (self->stor, &spec, self->catalog_id, self->job_id, &parent,
                                  &self->err);
    if (rc < 0)
        return -1;
    char snap [600];
    if (parent.kind)
        sf_stor_obj_str (&parent, snap, sizeof (snap));
    SF_INFO (NULL, "rbd image '%s' %s (request %s)", self->id,
             rc == SF_STOR_PRUNE_GONE ? "was already gone"
             : rc == SF_STOR_PRUNE_SNAP ? "deleted with its snapshot"
             : parent.kind ? "deleted; its snapshot stays for other clones"
             : "deleted", self->request_id);
    return 0;
}

static void
s_send_result (prune_t *self, int rc)
{
    sf_image_t image = SF_IMAGE_INIT;
    image.store = self->store;
    image.id = self->id;
    image.path = self->path;
    sf_image_deleted_t deleted = SF_IMAGE_DELETED_INIT;
    deleted.request_id = self->request_id;
    deleted.image = &image;
    sf_error_info_t error = SF_ERROR_INFO_INIT;
    if (rc) {
        sf_text_utf8_fix (self->err.text);
        error.code = self->err.code ? self->err.code : SF_EIO;
        error.text = self->err.text;
        deleted.error = &error;
    }
    sf_envelope_t env = sf_wire_envelope (SF_BODY_IMAGE_DELETED, &deleted);
    sf_err_t err = SF_ERR_INIT;
    zframe_t *frame = sf_wire_encode (&env, &err);
    if (!frame) {
        SF_ERROR (NULL, "cannot encode the answer to request %s: %s", self->request_id,
                  err.text);
        //  Still answer, so that the owner is not left waiting
        error.code = SF_EINVAL;
        error.text = (char *) "the answer could not be encoded";
        image.path = (char *) "";
        deleted.error = &error;
        frame = sf_wire_encode (&env, &err);
        assert (frame);
    }
    zstr_sendm (self->pipe, "RESULT");
    zframe_send (&frame, self->pipe, 0);
}

static void
s_run (prune_t *self)
{
    int rc;
    if (!sf_naming_id_valid (self->catalog_id) || !sf_name_is_safe (self->job_id))
        rc = sf_err_set (&self->err, SF_EINVAL, "image '%s' is not one snapfleet made for "
                         "job %s; not deleted (the request has no valid catalogue id and "
                         "job id)", self->id, self->job_id);
    else
    if (streq (self->store, "rbd"))
        rc = s_remove_clone (self);
    else
    if (*self->store && streq (self->store, sf_imgstore_driver (self->images)))
        rc = s_remove_stored (self);
    else
        rc = sf_err_set (&self->err, SF_EINVAL, "cannot delete image '%s': unknown image "
                         "store '%s' (this worker has '%s' and %s)", self->id,
                         self->store, sf_imgstore_driver (self->images),
                         self->stor ? "rbd" : "no Ceph");
    if (rc)
        SF_WARN (NULL, "cannot delete image '%s' of store '%s' (request %s): %s", self->id,
                 self->store, self->request_id, self->err.text);
    s_send_result (self, rc);
}

static void
s_prune_actor (zsock_t *pipe, void *args)
{
    prune_t *self = s_prune_new ((const sf_prune_args_t *) args);
    self->pipe = pipe;
    zsock_signal (pipe, 0);
    s_run (self);
    //  Wait for the owner to end us
    sf_actor_wait_term (pipe);
    s_prune_destroy (&self);
}

zactor_t *
sf_prune_new (const sf_prune_args_t *args)
{
    assert (args && args->request_id && args->store && args->id && args->images);
    return zactor_new (s_prune_actor, (void *) args);
}

//  --------------------------------------------------------------------------
//  Self test

//  Run one deletion; returns the decoded answer (caller frees)

static sf_envelope_t *
s_test_run (const sf_prune_args_t *args)
{
    zactor_t *actor = sf_prune_new (args);
    assert (actor);
    char *kind = zstr_recv (actor);
    assert (kind && streq (kind, "RESULT"));
    zstr_free (&kind);
    zframe_t *frame = zframe_recv (actor);
    assert (frame);
    sf_err_t err = SF_ERR_INIT;
    sf_envelope_t *env = sf_wire_decode (frame, &err);
    zframe_destroy (&frame);
    zactor_destroy (&actor);
    assert (env && env->body_case == SF_BODY_IMAGE_DELETED);
    assert (streq (env->image_deleted->request_id, args->request_id));
    assert (env->image_deleted->image);
    assert (streq (env->image_deleted->image->store, args->store));
    assert (streq (env->image_deleted->image->id, args->id));
    return env;
}

static bool
s_test_ok (const sf_envelope_t *env)
{
    const sf_error_info_t *error = env->image_deleted->error;
    return !error || error->code == 0;
}

#define S_CAT           "0123456789abcdef"
#define S_SNAP(job)     "snapfleet-" S_CAT "-" job

//  Run one deletion that must be refused as not job's; returns the answer

static sf_envelope_t *
s_test_refused (const sf_prune_args_t *args, const char *job)
{
    sf_envelope_t *env = s_test_run (args);
    assert (!s_test_ok (env) && env->image_deleted->error->code == SF_EINVAL);
    char *expect = zsys_sprintf ("image '%s' is not one snapfleet made for job %s; not "
                                 "deleted", args->id, job);
    assert (strstr (env->image_deleted->error->text, expect));
    zstr_free (&expect);
    return env;
}

void
sf_prune_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_prune: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    char dir [] = "/tmp/sf_prune_test.XXXXXX";
    assert (mkdtemp (dir));
    char *store_dir = zsys_sprintf ("%s/store", dir);
    char *src = zsys_sprintf ("%s/src.qcow2", dir);
    FILE *file = fopen (src, "w");
    assert (file);
    fputs ("not really qcow2\n", file);
    fclose (file);
    sf_imgstore_cfg_t store_cfg = { .driver = "dir", .path = store_dir };
    sf_imgstore_t *store = sf_imgstore_new (&store_cfg, &err);
    assert (store);
    sf_image_meta_t meta = { "6695eb01-f6a4-8304-79aa-97f2502e193f", "web1", "J1", 1,
                             "file-cold", "paused", "vda", S_CAT };
    sf_image_rec_t rec;
    assert (sf_imgstore_put (store, &meta, src, NULL, NULL, &rec, &err) == 0);
    assert (zsys_file_exists (rec.path));

    //  A dir image of another job or catalogue, or a request without
    //  them: refused, the image stays
    sf_prune_args_t args = { "R1", "dir", rec.id, rec.path, store, NULL, S_CAT, "J2" };
    sf_envelope_t *env = s_test_refused (&args, "J2");
    sf_wire_free (&env);
    args.job_id = "J1";
    args.catalog_id = "fedcba9876543210";
    env = s_test_refused (&args, "J1");
    sf_wire_free (&env);
    args.catalog_id = NULL;
    env = s_test_refused (&args, "J1");
    assert (strstr (env->image_deleted->error->text, "no valid catalogue id"));
    sf_wire_free (&env);
    assert (zsys_file_exists (rec.path));
    //  Its own: both files go; again: already gone is fine
    args.catalog_id = S_CAT;
    env = s_test_run (&args);
    assert (s_test_ok (env));
    assert (streq (env->image_deleted->image->path, rec.path));
    sf_wire_free (&env);
    assert (!zsys_file_exists (rec.path));
    char *json = zsys_sprintf ("%s/%s.json", store_dir, rec.id);
    assert (!zsys_file_exists (json));
    zstr_free (&json);
    env = s_test_run (&args);
    assert (s_test_ok (env));
    sf_wire_free (&env);
    //  A bad id never reaches the file system
    args.id = "../src";
    env = s_test_refused (&args, "J1");
    sf_wire_free (&env);
    assert (zsys_file_exists (src));
    //  An unknown store
    args.store = "glance";
    args.id = rec.id;
    env = s_test_run (&args);
    assert (!s_test_ok (env) && env->image_deleted->error->code == SF_EINVAL);
    assert (strstr (env->image_deleted->error->text, "unknown image store 'glance'"));
    sf_wire_free (&env);
    //  rbd without Ceph
    args.store = "rbd";
    args.id = "rbd/vm1-" S_SNAP ("J1");
    args.path = NULL;
    env = s_test_run (&args);
    assert (!s_test_ok (env) && env->image_deleted->error->code == SF_ENOTSUP);
    assert (streq (env->image_deleted->image->path, ""));
    sf_wire_free (&env);

    //  rbd: our clone and someone else's of our snapshot; only ours goes,
    //  the snapshot with the last of ours
    sf_stor_fake_t *fake = sf_stor_fake_new ();
    sf_stor_fake_add (fake, "rbd/vm1", 1 << 20);
    sf_stor_cfg_t stor_cfg = { NULL, "", "admin", "", 2000 };
    sf_stor_t *stor = sf_stor_new_with (&stor_cfg, &sf_stor_fake_driver, fake, &err);
    assert (stor);
    sf_stor_spec_t vm1, c1, c2;
    assert (sf_stor_spec_parse ("rbd/vm1", &vm1, &err) == 0);
    assert (sf_stor_spec_parse ("backup/vm1-" S_SNAP ("J1"), &c1, &err) == 0);
    assert (sf_stor_spec_parse ("backup/vm1-manual", &c2, &err) == 0);
    assert (sf_stor_snap_create (stor, &vm1, S_SNAP ("J1"), &err) == 0);
    assert (sf_stor_snap_protect (stor, &vm1, S_SNAP ("J1"), &err) == 0);
    assert (sf_stor_clone (stor, &vm1, S_SNAP ("J1"), &c1, &err) == 0);
    assert (sf_stor_clone (stor, &vm1, S_SNAP ("J1"), &c2, &err) == 0);
    args = (sf_prune_args_t) { "R2", "rbd", "backup/vm1-manual", "rbd:backup/vm1-manual",
                               store, stor, S_CAT, "J1" };
    env = s_test_refused (&args, "J1");
    sf_wire_free (&env);
    args.id = "rbd/vm1";
    env = s_test_refused (&args, "J1");
    sf_wire_free (&env);
    args.id = "backup/vm1-" S_SNAP ("J1");
    args.job_id = "J2";
    env = s_test_refused (&args, "J2");
    sf_wire_free (&env);
    assert (sf_stor_fake_objects (fake) == 3 && sf_stor_fake_has (fake, "rbd/vm1"));
    args.job_id = "J1";
    env = s_test_run (&args);
    assert (s_test_ok (env));
    sf_wire_free (&env);
    assert (!sf_stor_fake_has (fake, "backup/vm1-" S_SNAP ("J1")));
    assert (sf_stor_fake_has (fake, "rbd/vm1@" S_SNAP ("J1") "!"));
    assert (sf_stor_clone_remove (stor, &c2, &err) == 0);           //  its owner's
    assert (sf_stor_clone (stor, &vm1, S_SNAP ("J1"), &c1, &err) == 0);
    env = s_test_run (&args);
    assert (s_test_ok (env));
    sf_wire_free (&env);
    assert (sf_stor_fake_objects (fake) == 0);
    //  Already gone: deleted
    env = s_test_run (&args);
    assert (s_test_ok (env));
    sf_wire_free (&env);
    //  Not an rbd name
    args.id = "vm1";
    env = s_test_run (&args);
    assert (!s_test_ok (env) && env->image_deleted->error->code == SF_EINVAL);
    sf_wire_free (&env);
    //  Ceph does not answer: the deadline's error, and the actor ends
    assert (sf_stor_spec_parse ("backup/vm1-" S_SNAP ("J2"), &c1, &err) == 0);
    assert (sf_stor_snap_create (stor, &vm1, S_SNAP ("J2"), &err) == 0);
    assert (sf_stor_snap_protect (stor, &vm1, S_SNAP ("J2"), &err) == 0);
    assert (sf_stor_clone (stor, &vm1, S_SNAP ("J2"), &c1, &err) == 0);
    sf_stor_fake_hang (fake, true);
    args.id = "backup/vm1-" S_SNAP ("J2");
    args.job_id = "J2";
    env = s_test_run (&args);
    assert (!s_test_ok (env) && env->image_deleted->error->code == SF_ETIMEDOUT);
    assert (strstr (env->image_deleted->error->text, "timed out"));
    sf_wire_free (&env);
    sf_stor_fake_hang (fake, false);
    for (int i = 0; i < 500 && sf_stor_hung (stor); i++)
        zclock_sleep (10);
    env = s_test_run (&args);
    assert (s_test_ok (env));
    sf_wire_free (&env);
    assert (sf_stor_fake_objects (fake) == 0);
    sf_stor_destroy (&stor);
    for (int i = 0; i < 500 && sf_stor_fake_active (fake); i++)
        zclock_sleep (10);
    sf_stor_fake_destroy (&fake);

    sf_image_rec_release (&rec);
    sf_imgstore_destroy (&store);
    char *cmd = zsys_sprintf ("rm -rf %s", dir);
    int rc = system (cmd);
    assert (rc == 0);
    zstr_free (&cmd);
    zstr_free (&src);
    zstr_free (&store_dir);
    //  @end
    printf ("OK\n");
}
