/*  =========================================================================
    sf_imgstore - image-store interface: dispatch and the record value
    =========================================================================
*/
#include "sf_worker_classes.h"

//  Structure of our class

struct _sf_imgstore_t {
    const sf_imgstore_driver_t *driver;     //  Selected driver, never NULL
    void *priv;                             //  Driver-private state
    sf_bucket_t *bucket;                    //  Borrowed, NULL = no limit
};

SF_LOG_MODULE ("worker.imgstore");

static const sf_imgstore_driver_t *s_drivers [] = {
    &sf_imgstore_dir_driver,
    NULL
};

//  --------------------------------------------------------------------------
//  Constructor

sf_imgstore_t *
sf_imgstore_new (const sf_imgstore_cfg_t *cfg, sf_err_t *err)
{
    assert (cfg);
    const sf_imgstore_driver_t *driver = NULL;
    for (const sf_imgstore_driver_t **entry = s_drivers; *entry; entry++)
        if (cfg->driver && streq ((*entry)->name, cfg->driver))
            driver = *entry;
    if (!driver) {
        sf_err_set (err, SF_EINVAL, "unknown image store driver '%s'",
                    cfg->driver ? cfg->driver : "");
        return NULL;
    }
    sf_imgstore_t *self = (sf_imgstore_t *) zmalloc (sizeof (sf_imgstore_t));
    self->driver = driver;
    if (driver->open (self, cfg, err))
        sf_imgstore_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  Destructor

void
sf_imgstore_destroy (sf_imgstore_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sf_imgstore_t *self = *self_p;
        if (self->priv)
            self->driver->close (self);
        free (self);
        *self_p = NULL;
    }
}

void *
sf_imgstore_priv (sf_imgstore_t *self)
{
    assert (self);
    return self->priv;
}

void
sf_imgstore_set_priv (sf_imgstore_t *self, void *priv)
{
    assert (self);
    self->priv = priv;
}

void
sf_imgstore_set_bucket (sf_imgstore_t *self, sf_bucket_t *bucket)
{
    assert (self);
    self->bucket = bucket;
}

sf_bucket_t *
sf_imgstore_bucket (sf_imgstore_t *self)
{
    assert (self);
    return self->bucket;
}

const char *
sf_imgstore_name (sf_imgstore_t *self)
{
    assert (self);
    return self->driver->name;
}

int
sf_imgstore_put (sf_imgstore_t *self, const sf_image_meta_t *meta, const char *src,
                 zsock_t *cancel, sf_image_rec_t *rec, sf_err_t *err)
{
    assert (self && meta && src && rec);
    memset (rec, 0, sizeof (*rec));
    if (self->driver->put (self, meta, src, cancel, rec, err)) {
        sf_image_rec_release (rec);
        return -1;
    }
    return 0;
}

int
sf_imgstore_remove (sf_imgstore_t *self, const char *id, sf_err_t *err)
{
    assert (self && id);
    if (!self->driver->remove)
        return sf_err_set (err, SF_ENOTSUP, "image store '%s' cannot remove images",
                           self->driver->name);
    return self->driver->remove (self, id, err);
}

void
sf_image_rec_release (sf_image_rec_t *rec)
{
    assert (rec);
    free (rec->path);
    free (rec->disk_target);
    memset (rec, 0, sizeof (*rec));
}

//  --------------------------------------------------------------------------
//  Self test: the dir driver end to end (it is the only one that needs no
//  outside service), checked against sha256sum.

static char *
s_shell_output (const char *command)
{
    FILE *pipe = popen (command, "r");      //  test only, not product code
    assert (pipe);
    char line [256] = "";
    char *got = fgets (line, sizeof (line), pipe);
    pclose (pipe);
    return strdup (got ? line : "");
}

static void
s_test_put (sf_imgstore_t *store, const char *dir, const char *src)
{
    sf_err_t err = SF_ERR_INIT;
    sf_image_meta_t meta = { "6695eb01-f6a4-8304-79aa-97f2502e193f", "web1", "J42", 3,
                             "file-cold", "paused", "vda" };
    sf_image_rec_t rec;
    assert (sf_imgstore_put (store, &meta, src, NULL, &rec, &err) == 0);
    assert (streq (rec.store, "dir") && strlen (rec.id) == 36 && streq (rec.format, "qcow2"));
    assert (streq (rec.disk_target, "vda") && rec.size == 3 * 1024 * 1024 + 7);
    char *expect_path = zsys_sprintf ("%s/store/%s.qcow2", dir, rec.id);
    assert (streq (rec.path, expect_path));
    char *cmd = zsys_sprintf ("sha256sum %s", rec.path);
    char *sum = s_shell_output (cmd);
    assert (strncmp (sum, rec.sha256, 64) == 0);
    //  JSON written last, with every field of the contract
    char *json = zsys_sprintf ("%s/store/%s.json", dir, rec.id);
    zstr_free (&cmd);
    cmd = zsys_sprintf ("jq -r '[.id,.instance_uuid,.instance_name,.job_id,.attempt,"
                        ".strategy,.consistency,.disk_target,.format,.size,.sha256,"
                        "(.created|test(\"Z$\"))]|join(\" \")' %s", json);
    char *fields = s_shell_output (cmd);
    char *expect = zsys_sprintf ("%s %s web1 J42 3 file-cold paused vda qcow2 %d %s true\n",
                                 rec.id, meta.instance_uuid, 3 * 1024 * 1024 + 7, rec.sha256);
    assert (streq (fields, expect));
    //  Remove takes both files; removing again is fine
    assert (sf_imgstore_remove (store, rec.id, &err) == 0);
    assert (!zsys_file_exists (rec.path) && !zsys_file_exists (json));
    assert (sf_imgstore_remove (store, rec.id, &err) == 0);
    free (fields);
    free (sum);
    zstr_free (&expect);
    zstr_free (&cmd);
    zstr_free (&json);
    zstr_free (&expect_path);
    sf_image_rec_release (&rec);
}

//  Sends RATE 0 on the socket args after 300 ms
static void
s_test_rate_later (zsock_t *pipe, void *args)
{
    zsock_signal (pipe, 0);
    zclock_sleep (300);
    zstr_sendx ((zsock_t *) args, "RATE", "0", NULL);
    char *command = zstr_recv (pipe);           //  $TERM
    zstr_free (&command);
}

void
sf_imgstore_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_imgstore: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    sf_imgstore_cfg_t bad = { "glance?", "/tmp" };
    assert (sf_imgstore_new (&bad, &err) == NULL && err.code == SF_EINVAL);

    char dir [] = "/tmp/sf-imgstore-test-XXXXXX";
    assert (mkdtemp (dir));
    char *src = zsys_sprintf ("%s/src.qcow2", dir);
    char *cmd = zsys_sprintf ("head -c 3145735 /dev/urandom > %s", src);
    assert (system (cmd) == 0);
    char *path = zsys_sprintf ("%s/store", dir);
    sf_imgstore_cfg_t cfg = { "dir", path };
    sf_imgstore_t *store = sf_imgstore_new (&cfg, &err);
    assert (store && streq (sf_imgstore_name (store), "dir"));
    s_test_put (store, dir, src);

    //  A missing source, and a cancelled copy, leave the store empty
    sf_image_meta_t meta = { "u", "n", "J43", 1, "offline", "offline", "vdb" };
    sf_image_rec_t rec;
    char *missing = zsys_sprintf ("%s/missing.qcow2", dir);
    assert (sf_imgstore_put (store, &meta, missing, NULL, &rec, &err) == -1);
    assert (err.code == SF_ESTORE && strstr (err.text, "missing.qcow2"));
    zsock_t *reader = zsock_new_pair ("@inproc://sf-imgstore-test");
    zsock_t *writer = zsock_new_pair (">inproc://sf-imgstore-test");
    zstr_send (writer, "CANCEL");
    zclock_sleep (10);
    assert (sf_imgstore_put (store, &meta, src, reader, &rec, &err) == -1);
    assert (err.code == SF_ECANCELED);
    zdir_t *listing = zdir_new (path, NULL);
    assert (listing && zdir_count (listing) == 0);
    zdir_destroy (&listing);
    char *leftover = zstr_recv (reader);        //  no bucket: the message stays
    assert (leftover && streq (leftover, "CANCEL"));
    zstr_free (&leftover);

    //  With a bucket: 3 MiB at 2 MiB/s (the first MiB is the burst)
    sf_bucket_t *bucket = sf_bucket_new (2 * 1024 * 1024, SF_IMGSTORE_CHUNK);
    sf_imgstore_set_bucket (store, bucket);
    assert (sf_imgstore_bucket (store) == bucket);
    int64_t start = zclock_mono ();
    assert (sf_imgstore_put (store, &meta, src, reader, &rec, &err) == 0);
    int64_t took = zclock_mono () - start;
    assert (took >= 900 && took < 5000);
    assert (sf_imgstore_remove (store, rec.id, &err) == 0);
    sf_image_rec_release (&rec);
    //  A RATE message is no cancel: it lifts the limit of 1 kB/s here
    sf_bucket_set_rate (bucket, 1000);
    zstr_sendx (writer, "RATE", "0", NULL);
    zclock_sleep (10);
    start = zclock_mono ();
    assert (sf_imgstore_put (store, &meta, src, reader, &rec, &err) == 0);
    assert (zclock_mono () - start < 3000 && sf_bucket_rate (bucket) == 0);
    assert (sf_imgstore_remove (store, rec.id, &err) == 0);
    sf_image_rec_release (&rec);
    //  ... also while the copy waits on the bucket: 1 kB/s, unlimited 300 ms
    //  later (another thread sends it; the writer is not used here meanwhile)
    sf_bucket_set_rate (bucket, 1000);
    start = zclock_mono ();
    zactor_t *sender = zactor_new (s_test_rate_later, writer);
    assert (sf_imgstore_put (store, &meta, src, reader, &rec, &err) == 0);
    took = zclock_mono () - start;
    assert (took >= 250 && took < 3000);
    zactor_destroy (&sender);
    assert (sf_imgstore_remove (store, rec.id, &err) == 0);
    sf_image_rec_release (&rec);
    //  CANCEL while the copy waits on the bucket
    sf_bucket_set_rate (bucket, 1000);
    zstr_sendx (writer, "RATE", "1000", NULL);
    zstr_send (writer, "CANCEL");
    zclock_sleep (10);
    assert (sf_imgstore_put (store, &meta, src, reader, &rec, &err) == -1);
    assert (err.code == SF_ECANCELED);
    assert (!(zsock_events (reader) & ZMQ_POLLIN));
    listing = zdir_new (path, NULL);
    assert (listing && zdir_count (listing) == 0);
    zdir_destroy (&listing);
    sf_imgstore_set_bucket (store, NULL);
    sf_bucket_destroy (&bucket);
    zsock_destroy (&writer);
    zsock_destroy (&reader);
    sf_imgstore_destroy (&store);
    assert (store == NULL);

    zstr_free (&cmd);
    cmd = zsys_sprintf ("rm -rf %s", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    zstr_free (&missing);
    zstr_free (&path);
    zstr_free (&src);
    //  @end
    printf ("OK\n");
}
