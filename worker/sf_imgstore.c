/*  =========================================================================
    sf_imgstore - image-store interface: dispatch, the streaming loop (read,
    hash, pace, cancel) every driver shares, and the record value
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_imgstore_driver.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

//  Structure of our class

struct _sf_imgstore_t {
    const sf_imgstore_driver_t *driver;     //  Selected driver, never NULL
    void *priv;                             //  Driver-private state
    char *name;                             //  for the scheduler
    EVP_MD *sha256;                         //  Owned, libcrypto's SHA-256
};

SF_LOG_MODULE ("worker.imgstore");

//  The drivers, by name
static const sf_imgstore_driver_t *s_drivers [] = {
    &sf_imgstore_dir_driver,
    &sf_imgstore_glance_driver,
    NULL
};

static const sf_imgstore_driver_t *
s_driver_lookup (const char *name)
{
    for (const sf_imgstore_driver_t **entry = s_drivers; *entry; entry++)
        if (name && streq ((*entry)->name, name))
            return *entry;
    return NULL;
}

//  --------------------------------------------------------------------------
//  Constructor

sf_imgstore_t *
sf_imgstore_new (const sf_imgstore_cfg_t *cfg, sf_err_t *err)
{
    assert (cfg);
    const sf_imgstore_driver_t *driver = s_driver_lookup (cfg->driver);
    if (!driver) {
        sf_err_set (err, SF_EINVAL, "unknown image store driver '%s'",
                    cfg->driver ? cfg->driver : "");
        return NULL;
    }
    EVP_MD *sha256 = EVP_MD_fetch (NULL, "SHA256", NULL);
    if (!sha256) {
        sf_err_set (err, SF_ESTORE, "cannot load SHA-256 from libcrypto");
        return NULL;
    }
    sf_imgstore_t *self = (sf_imgstore_t *) zmalloc (sizeof (sf_imgstore_t));
    self->driver = driver;
    self->sha256 = sha256;
    self->name = strdup (cfg->name ? cfg->name : driver->name);
    if (driver->new (cfg, &self->priv, err))
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
            self->driver->destroy (&self->priv);
        EVP_MD_free (self->sha256);
        free (self->name);
        free (self);
        *self_p = NULL;
    }
}

const char *
sf_imgstore_driver (sf_imgstore_t *self)
{
    assert (self);
    return self->driver->name;
}

const char *
sf_imgstore_name (sf_imgstore_t *self)
{
    assert (self);
    return self->name;
}

bool
sf_imgstore_driver_known (const char *driver)
{
    return s_driver_lookup (driver) != NULL;
}

const char *
sf_imgstore_driver_names (char *buf, size_t size)
{
    assert (buf && size);
    *buf = 0;
    for (const sf_imgstore_driver_t **entry = s_drivers; *entry; entry++) {
        size_t len = strlen (buf);
        snprintf (buf + len, size - len, "%s'%s'", entry == s_drivers ? ""
                  : entry [1] ? ", " : " or ", (*entry)->name);
    }
    return buf;
}

int
sf_imgstore_check (sf_imgstore_t *self, sf_err_t *err)
{
    assert (self);
    return self->driver->check ? self->driver->check (self->priv, err) : 0;
}

//  --------------------------------------------------------------------------
//  The streaming loop

//  A message on cancel? Without a bucket any message cancels (and stays
//  there for the owner); with one, each is read: RATE and GRANT set the
//  rate, anything else cancels.

static bool
s_stopped (zsock_t *cancel, sf_bucket_t *bucket)
{
    while (cancel && (zsock_events (cancel) & ZMQ_POLLIN)) {
        if (!bucket || sf_bucket_recv (bucket, cancel) == SF_BUCKET_STOP)
            return true;
    }
    return false;
}

//  Wait off what the bucket is owed for the bytes just moved, still
//  answering the cancel socket. Returns true if cancelled.

static bool
s_throttle (zsock_t *cancel, sf_bucket_t *bucket, uint64_t bytes)
{
    if (!bucket)
        return false;
    sf_bucket_take (bucket, bytes);
    while (sf_bucket_sleep (bucket, cancel))
        if (s_stopped (cancel, bucket))
            return true;
    return false;
}

//  The copy: the caller's thread reads the source into large aligned
//  buffers and writes each (a bucket chunk at a time, paced, cancellable),
//  while a hasher thread hashes the same buffers. Each core does about
//  half of the work (the hash alone is ~1.4 GB/s here, reading and writing
//  the page cache together about as much), and no byte is copied in user
//  space. A buffer is read again only once it is written and hashed.

#define S_BUF_SIZE  SF_IMGSTORE_READ            //  one read, one hash update
#define S_BUFS      4                           //  the hasher's lag at most

typedef struct {
    char *data [S_BUFS];        //  Owned, S_BUF_SIZE each, page aligned
    size_t size [S_BUFS];       //  bytes read into each
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t posted;              //  buffers read and handed to the hasher (ever)
    size_t hashed;              //  buffers the hasher is done with (ever)
    bool stop;                  //  no more buffers: hasher, finish or quit
    EVP_MD_CTX *md;             //  Owned, the hash so far (the hasher's)
    bool failed;                //  an update failed
} ring_t;

static void *
s_hasher (void *arg)
{
    ring_t *ring = (ring_t *) arg;
    pthread_mutex_lock (&ring->lock);
    while (true) {
        while (!ring->stop && ring->hashed == ring->posted)
            pthread_cond_wait (&ring->cond, &ring->lock);
        if (ring->hashed == ring->posted)
            break;                          //  stopped, all hashed
        size_t slot = ring->hashed % S_BUFS;
        pthread_mutex_unlock (&ring->lock);
        bool ok = ring->failed ? false
                : EVP_DigestUpdate (ring->md, ring->data [slot], ring->size [slot]) == 1;
        pthread_mutex_lock (&ring->lock);
        if (!ok)
            ring->failed = true;
        ring->hashed++;
        pthread_cond_broadcast (&ring->cond);
    }
    pthread_mutex_unlock (&ring->lock);
    return NULL;
}

//  Wait until the hasher has done all but lag buffers

static void
s_ring_wait (ring_t *ring, size_t lag)
{
    pthread_mutex_lock (&ring->lock);
    while (ring->posted - ring->hashed > lag)
        pthread_cond_wait (&ring->cond, &ring->lock);
    pthread_mutex_unlock (&ring->lock);
}

static void
s_ring_post (ring_t *ring, bool stop)
{
    pthread_mutex_lock (&ring->lock);
    if (stop)
        ring->stop = true;
    else
        ring->posted++;
    pthread_cond_broadcast (&ring->cond);
    pthread_mutex_unlock (&ring->lock);
}

//  Fill data from in: a short read is no end. Returns the bytes read (less
//  than size only at the end) or -1 with err.

static ssize_t
s_read_full (int in, char *data, size_t size, const char *src, sf_err_t *err)
{
    size_t have = 0;
    while (have < size) {
        ssize_t got = read (in, data + have, size - have);
        if (got == -1 && errno == EINTR)
            continue;
        if (got == -1)
            return sf_err_set (err, SF_ESTORE, "cannot read '%s': %s", src, strerror (errno));
        if (got == 0)
            break;
        have += (size_t) got;
    }
    return (ssize_t) have;
}

//  Write size bytes of data to upload, a bucket chunk at a time: the
//  bucket and the cancel socket are looked at as often as ever

static int
s_write_chunks (sf_imgstore_t *self, const char *data, size_t size, const char *src,
                void *upload, zsock_t *cancel, sf_bucket_t *bucket, sf_image_rec_t *rec,
                sf_err_t *err)
{
    for (size_t at = 0; at < size; at += SF_IMGSTORE_CHUNK) {
        size_t part = size - at < SF_IMGSTORE_CHUNK ? size - at : SF_IMGSTORE_CHUNK;
        if (s_stopped (cancel, bucket))
            return sf_err_set (err, SF_ECANCELED, "storing '%s' cancelled", src);
        if (self->driver->write (upload, data + at, part, err))
            return -1;
        rec->size += (uint64_t) part;
        if (s_throttle (cancel, bucket, (uint64_t) part))
            return sf_err_set (err, SF_ECANCELED, "storing '%s' cancelled", src);
    }
    return 0;
}

//  Stream the open file in into upload, hashing as it goes, at the
//  bucket's rate; an adopted file (the upload's already) is only hashed. Sets
//  rec->size and rec->sha256.

static int
s_stream (sf_imgstore_t *self, int in, const char *src, void *upload, bool adopted,
          zsock_t *cancel, sf_bucket_t *bucket, sf_image_rec_t *rec, sf_err_t *err)
{
    int rc = -1;
    ring_t ring = { .posted = 0 };
    pthread_mutex_init (&ring.lock, NULL);
    pthread_cond_init (&ring.cond, NULL);
    for (size_t i = 0; i < S_BUFS; i++) {
        void *data = NULL;
        if (posix_memalign (&data, 4096, S_BUF_SIZE))
            assert (false);                 //  out of memory is fatal (czmq's rule)
        ring.data [i] = (char *) data;
    }
    ring.md = EVP_MD_CTX_new ();
    bool started = false;
    pthread_t hasher;
    if (!ring.md || !EVP_DigestInit_ex (ring.md, self->sha256, NULL)) {
        sf_err_set (err, SF_ESTORE, "cannot start SHA-256 of '%s'", src);
        goto cleanup;
    }
    posix_fadvise (in, 0, 0, POSIX_FADV_SEQUENTIAL);
    if (s_stopped (cancel, bucket)) {
        sf_err_set (err, SF_ECANCELED, "storing '%s' cancelled", src);
        goto cleanup;
    }
    if (pthread_create (&hasher, NULL, s_hasher, &ring)) {
        sf_err_set (err, SF_ESTORE, "cannot start a hasher thread for '%s'", src);
        goto cleanup;
    }
    started = true;
    for (size_t n = 0; ; n++) {
        size_t slot = n % S_BUFS;
        s_ring_wait (&ring, S_BUFS - 1);    //  this buffer is hashed (and written)
        ssize_t got = s_read_full (in, ring.data [slot], S_BUF_SIZE, src, err);
        if (got == -1)
            goto cleanup;
        if (got == 0)
            break;
        ring.size [slot] = (size_t) got;
        s_ring_post (&ring, false);
        if (!adopted && s_write_chunks (self, ring.data [slot], (size_t) got, src, upload,
                                        cancel, bucket, rec, err))
            goto cleanup;
        if (adopted) {                      //  hashed only
            rec->size += (uint64_t) got;
            if (self->driver->advance)
                self->driver->advance (upload, (size_t) got);
            if (s_stopped (cancel, bucket)) {
                sf_err_set (err, SF_ECANCELED, "storing '%s' cancelled", src);
                goto cleanup;
            }
        }
        if ((size_t) got < S_BUF_SIZE)
            break;
    }
    s_ring_post (&ring, true);
    pthread_join (hasher, NULL);
    started = false;
    unsigned char digest [EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (ring.failed || !EVP_DigestFinal_ex (ring.md, digest, &digest_len)
    ||  digest_len != 32) {
        sf_err_set (err, SF_ESTORE, "cannot hash '%s'", src);
        goto cleanup;
    }
    for (unsigned int i = 0; i < digest_len; i++)
        snprintf (rec->sha256 + 2 * i, 3, "%02x", digest [i]);
    rc = 0;
 cleanup:
    if (started) {                          //  it finishes what it has, then quits
        s_ring_post (&ring, true);
        pthread_join (hasher, NULL);
    }
    EVP_MD_CTX_free (ring.md);
    for (size_t i = 0; i < S_BUFS; i++)
        free (ring.data [i]);
    pthread_cond_destroy (&ring.cond);
    pthread_mutex_destroy (&ring.lock);
    return rc;
}

//  Can the driver take src as it is (no copy)? Only when nothing paces
//  the copy: a rate asks for the bytes to be spread over time, and
//  copying at that rate is what spreads them. Returns 1 if adopted, 0 to
//  copy, -1 with err.

static int
s_adopt (sf_imgstore_t *self, const sf_image_meta_t *meta, int in, sf_bucket_t *bucket,
         sf_image_rec_t *rec, void **upload, sf_err_t *err)
{
    if (!self->driver->adopt || (bucket && sf_bucket_rate (bucket)))
        return 0;
    sf_err_t why = SF_ERR_INIT;
    if (self->driver->adopt (self->priv, meta, in, rec, upload, &why) == 0)
        return 1;
    if (why.code != SF_ENOTSUP) {
        if (err)
            *err = why;
        return -1;
    }
    SF_DEBUG (NULL, "image of disk '%s' copied: %s", meta->disk_target, why.text);
    zstr_free (&rec->path);
    *rec->id = 0;
    return 0;
}

int
sf_imgstore_put (sf_imgstore_t *self, const sf_image_meta_t *meta, const char *src,
                 zsock_t *cancel, sf_bucket_t *bucket, sf_image_rec_t *rec, sf_err_t *err)
{
    assert (self && meta && src && rec);
    memset (rec, 0, sizeof (*rec));
    snprintf (rec->store, sizeof (rec->store), "%s", self->driver->name);
    snprintf (rec->format, sizeof (rec->format), "qcow2");
    rec->disk_target = strdup (meta->disk_target);
    void *upload = NULL;
    int rc = -1;
    int adopted = 0;
    int in = open (src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in == -1) {
        sf_err_set (err, SF_ESTORE, "cannot open '%s': %s", src, strerror (errno));
        goto cleanup;
    }
    if ((adopted = s_adopt (self, meta, in, bucket, rec, &upload, err)) == -1)
        goto cleanup;
    if (!adopted && self->driver->open (self->priv, meta, rec, &upload, err))
        goto cleanup;
    if (s_stream (self, in, src, upload, adopted == 1, cancel, bucket, rec, err)
    ||  self->driver->commit (upload, meta, rec, err))
        goto cleanup;
    upload = NULL;              //  committed: the driver freed it
    rc = 0;
 cleanup:
    if (upload)
        self->driver->abort (upload);
    if (in != -1)
        close (in);
    if (rc)
        sf_image_rec_release (rec);
    return rc;
}

int
sf_imgstore_remove (sf_imgstore_t *self, const char *id, const char *catalog_id,
                    const char *job_id, sf_err_t *err)
{
    assert (self && id);
    if (!self->driver->delete)
        return sf_err_set (err, SF_ENOTSUP, "image store '%s' cannot remove images",
                           self->driver->name);
    if (!sf_naming_id_valid (catalog_id) || !sf_name_is_safe (job_id))
        return sf_err_set (err, SF_EINVAL, "image '%s' is not one snapfleet made for job "
                           "%s; not deleted (no valid catalogue id and job id)", id,
                           job_id ? job_id : "");
    return self->driver->delete (self->priv, id, catalog_id, job_id, err);
}

zlistx_t *
sf_imgstore_list (sf_imgstore_t *self, sf_err_t *err)
{
    assert (self);
    zlistx_t *ids = zlistx_new ();
    zlistx_set_destructor (ids, (zlistx_destructor_fn *) zstr_free);
    if (self->driver->list (self->priv, ids, err))
        zlistx_destroy (&ids);
    return ids;
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

#define S_TEST_CAT "0123456789abcdef"

//  Removal refused: another job, another catalogue, an id that is a path
//  or names a symlink; the image and the files outside stay

static void
s_test_refused (sf_imgstore_t *store, const char *dir, const sf_image_rec_t *rec)
{
    sf_err_t err = SF_ERR_INIT;
    assert (sf_imgstore_remove (store, rec->id, S_TEST_CAT, "J41", &err) == -1);
    assert (err.code == SF_EINVAL);
    char *expect = zsys_sprintf ("image '%s' is not one snapfleet made for job J41; not "
                                 "deleted", rec->id);
    assert (strstr (err.text, expect));
    zstr_free (&expect);
    assert (sf_imgstore_remove (store, rec->id, "fedcba9876543210", "J42", &err) == -1);
    assert (sf_imgstore_remove (store, rec->id, NULL, "J42", &err) == -1);
    assert (sf_imgstore_remove (store, rec->id, S_TEST_CAT, NULL, &err) == -1);
    assert (err.code == SF_EINVAL && zsys_file_exists (rec->path));
    //  Outside the store: "..", a path, a symlink to a file with metadata
    //  that says it is ours
    char *cmd = zsys_sprintf (
        "cd %s && mkdir -p outside && jq '.id=\"link\"' store/%s.json > outside/x.json && "
        "jq '.id=\"x\"' store/%s.json > x.json && touch outside/x.qcow2 x.qcow2 && "
        "ln -s ../outside/x.json store/link.json && ln -s ../outside/x.qcow2 store/link.qcow2 "
        "&& jq '.id=\"own\"' store/%s.json > store/own.json && "
        "ln -s ../outside/x.qcow2 store/own.qcow2", dir, rec->id, rec->id, rec->id);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    const char *ids [] = { "..", "../x", "../outside/x", "link", "own" };
    for (size_t i = 0; i < sizeof (ids) / sizeof (ids [0]); i++) {
        assert (sf_imgstore_remove (store, ids [i], S_TEST_CAT, "J42", &err) == -1);
        assert (err.code == SF_EINVAL && strstr (err.text, "not deleted"));
    }
    cmd = zsys_sprintf ("cd %s && test -f x.json && test -f x.qcow2 && test -f outside/x.json "
                        "&& test -f outside/x.qcow2 && test -L store/link.json && "
                        "test -f store/own.json && rm -rf outside x.json x.qcow2 store/link.* "
                        "store/own.*", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
}

static void
s_test_put (sf_imgstore_t *store, const char *dir, const char *src)
{
    sf_err_t err = SF_ERR_INIT;
    sf_image_meta_t meta = { "6695eb01-f6a4-8304-79aa-97f2502e193f", "web1", "J42", 3,
                             "file-cold", "paused", "vda", S_TEST_CAT };
    sf_image_rec_t rec;
    assert (sf_imgstore_put (store, &meta, src, NULL, NULL, &rec, &err) == 0);
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
                        "(.created|test(\"Z$\")),.catalog_id]|join(\" \")' %s", json);
    char *fields = s_shell_output (cmd);
    char *expect = zsys_sprintf ("%s %s web1 J42 3 file-cold paused vda qcow2 %d %s true "
                                 S_TEST_CAT "\n",
                                 rec.id, meta.instance_uuid, 3 * 1024 * 1024 + 7, rec.sha256);
    assert (streq (fields, expect));
    //  Image and JSON 0640, the directory the store made 0750, whatever
    //  the umask (the test runs under 077, as the worker does)
    struct stat st;
    assert (stat (rec.path, &st) == 0 && (st.st_mode & 07777) == 0640);
    assert (stat (json, &st) == 0 && (st.st_mode & 07777) == 0640);
    char *store_dir = zsys_sprintf ("%s/store", dir);
    assert (stat (store_dir, &st) == 0 && (st.st_mode & 07777) == 0750);
    zstr_free (&store_dir);
    //  Listed as complete
    zlistx_t *ids = sf_imgstore_list (store, &err);
    assert (ids && zlistx_size (ids) == 1 && streq ((char *) zlistx_first (ids), rec.id));
    zlistx_destroy (&ids);
    //  Only for the job and catalogue that made it
    s_test_refused (store, dir, &rec);
    //  Remove takes both files; removing again is fine
    assert (sf_imgstore_remove (store, rec.id, S_TEST_CAT, "J42", &err) == 0);
    assert (!zsys_file_exists (rec.path) && !zsys_file_exists (json));
    assert (sf_imgstore_remove (store, rec.id, S_TEST_CAT, "J42", &err) == 0);
    ids = sf_imgstore_list (store, &err);
    assert (ids && zlistx_size (ids) == 0);
    zlistx_destroy (&ids);
    free (fields);
    free (sum);
    zstr_free (&expect);
    zstr_free (&cmd);
    zstr_free (&json);
    zstr_free (&expect_path);
    sf_image_rec_release (&rec);
}

//  The hash is sha256sum's and the image the source's bytes, whatever the
//  size against the write chunk and the read buffer; a source that cannot
//  be read (a directory) fails and leaves the store empty

static void
s_test_sizes (sf_imgstore_t *store, const char *dir)
{
    sf_err_t err = SF_ERR_INIT;
    sf_image_meta_t meta = { "u", "n", "J44", 1, "offline", "offline", "vdc", S_TEST_CAT };
    const uint64_t sizes [] = { 0, 1, SF_IMGSTORE_CHUNK - 1, SF_IMGSTORE_CHUNK,
                                SF_IMGSTORE_CHUNK + 1, SF_IMGSTORE_READ - 1,
                                SF_IMGSTORE_READ, SF_IMGSTORE_READ + 1,
                                5 * SF_IMGSTORE_READ + 12345 };
    char *src = zsys_sprintf ("%s/sizes.raw", dir);
    for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes [0]); i++) {
        char *cmd = zsys_sprintf ("head -c %" PRIu64 " /dev/urandom > %s", sizes [i], src);
        assert (system (cmd) == 0);
        zstr_free (&cmd);
        sf_image_rec_t rec;
        assert (sf_imgstore_put (store, &meta, src, NULL, NULL, &rec, &err) == 0);
        assert (rec.size == sizes [i]);
        cmd = zsys_sprintf ("sha256sum < %s", src);
        char *sum = s_shell_output (cmd);
        assert (strncmp (sum, rec.sha256, 64) == 0 && strlen (rec.sha256) == 64);
        zstr_free (&cmd);
        cmd = zsys_sprintf ("cmp -s %s %s", src, rec.path);
        assert (system (cmd) == 0);
        zstr_free (&cmd);
        free (sum);
        assert (sf_imgstore_remove (store, rec.id, S_TEST_CAT, "J44", &err) == 0);
        sf_image_rec_release (&rec);
    }
    sf_image_rec_t rec;
    assert (sf_imgstore_put (store, &meta, dir, NULL, NULL, &rec, &err) == -1);
    assert (err.code == SF_ESTORE && strstr (err.text, "cannot read"));
    char *path = zsys_sprintf ("%s/store", dir);
    zdir_t *listing = zdir_new (path, NULL);
    assert (listing && zdir_count (listing) == 0);
    zdir_destroy (&listing);
    unlink (src);
    zstr_free (&path);
    zstr_free (&src);
}

//  No copy where the store can take the file as it is: a source on the
//  store's file system, unpaced, becomes the image (the same inode, mode
//  0640, the source left in place); with a rate, or from another file
//  system (tmpfs), it is copied. A cancel while adopting leaves the store
//  empty and the source as it was.

static void
s_test_adopt (sf_imgstore_t *store, const char *dir, const char *src, zsock_t *reader,
              zsock_t *writer)
{
    sf_err_t err = SF_ERR_INIT;
    sf_image_meta_t meta = { "u", "n", "J46", 1, "offline", "offline", "vde", S_TEST_CAT };
    sf_image_rec_t rec;
    struct stat src_st, st;
    assert (chmod (src, 0600) == 0);
    assert (stat (src, &src_st) == 0);
    assert (sf_imgstore_put (store, &meta, src, NULL, NULL, &rec, &err) == 0);
    assert (stat (rec.path, &st) == 0 && st.st_ino == src_st.st_ino && st.st_nlink == 2);
    assert ((st.st_mode & 07777) == 0640 && rec.size == (uint64_t) src_st.st_size);
    char *cmd = zsys_sprintf ("sha256sum < %s", src);
    char *sum = s_shell_output (cmd);
    assert (strncmp (sum, rec.sha256, 64) == 0);
    assert (sf_imgstore_remove (store, rec.id, S_TEST_CAT, "J46", &err) == 0);
    assert (stat (src, &st) == 0 && st.st_nlink == 1 && st.st_size == src_st.st_size);
    sf_image_rec_release (&rec);
    //  A rate: copied
    sf_bucket_t *bucket = sf_bucket_new (1000 * 1000 * 1000, SF_IMGSTORE_CHUNK);
    assert (sf_imgstore_put (store, &meta, src, NULL, bucket, &rec, &err) == 0);
    assert (stat (rec.path, &st) == 0 && st.st_ino != src_st.st_ino && st.st_nlink == 1);
    assert (strncmp (sum, rec.sha256, 64) == 0);
    assert (sf_imgstore_remove (store, rec.id, S_TEST_CAT, "J46", &err) == 0);
    sf_image_rec_release (&rec);
    sf_bucket_destroy (&bucket);
    //  Another file system: copied
    char shm [] = "/dev/shm/sf-imgstore-test-XXXXXX";
    int fd = mkstemp (shm);
    assert (fd != -1);
    close (fd);
    zstr_free (&cmd);
    cmd = zsys_sprintf ("cp %s %s", src, shm);
    assert (system (cmd) == 0);
    assert (sf_imgstore_put (store, &meta, shm, NULL, NULL, &rec, &err) == 0);
    assert (stat (rec.path, &st) == 0 && st.st_ino != src_st.st_ino && st.st_nlink == 1);
    assert (strncmp (sum, rec.sha256, 64) == 0 && (st.st_mode & 07777) == 0640);
    assert (sf_imgstore_remove (store, rec.id, S_TEST_CAT, "J46", &err) == 0);
    sf_image_rec_release (&rec);
    unlink (shm);
    //  Cancelled while adopting
    zstr_send (writer, "CANCEL");
    zclock_sleep (10);
    assert (sf_imgstore_put (store, &meta, src, reader, NULL, &rec, &err) == -1);
    assert (err.code == SF_ECANCELED);
    char *leftover = zstr_recv (reader);
    assert (leftover && streq (leftover, "CANCEL"));
    zstr_free (&leftover);
    char *path = zsys_sprintf ("%s/store", dir);
    zdir_t *listing = zdir_new (path, NULL);
    assert (listing && zdir_count (listing) == 0);
    zdir_destroy (&listing);
    assert (stat (src, &st) == 0 && st.st_nlink == 1 && st.st_size == src_st.st_size);
    zstr_free (&path);
    free (sum);
    zstr_free (&cmd);
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

//  Sends CANCEL on the socket args after 300 ms
static void
s_test_cancel_later (zsock_t *pipe, void *args)
{
    zsock_signal (pipe, 0);
    zclock_sleep (300);
    zstr_send ((zsock_t *) args, "CANCEL");
    char *command = zstr_recv (pipe);           //  $TERM
    zstr_free (&command);
}

//  A cancel while the reader is a full ring ahead of a slow writer (more
//  than the ring's buffers to copy, at 1 MB/s) stops both at once and
//  leaves the store empty

static void
s_test_cancel_ahead (sf_imgstore_t *store, const char *dir, zsock_t *reader,
                     zsock_t *writer)
{
    sf_err_t err = SF_ERR_INIT;
    sf_image_meta_t meta = { "u", "n", "J45", 1, "offline", "offline", "vdd", S_TEST_CAT };
    char *src = zsys_sprintf ("%s/big.raw", dir);
    char *cmd = zsys_sprintf ("head -c %d /dev/zero > %s", 6 * SF_IMGSTORE_READ, src);
    assert (system (cmd) == 0);
    sf_bucket_t *bucket = sf_bucket_new (1000 * 1000, SF_IMGSTORE_CHUNK);
    sf_image_rec_t rec;
    int64_t start = zclock_mono ();
    zactor_t *sender = zactor_new (s_test_cancel_later, writer);
    assert (sf_imgstore_put (store, &meta, src, reader, bucket, &rec, &err) == -1);
    int64_t took = zclock_mono () - start;
    assert (err.code == SF_ECANCELED && took >= 250 && took < 5000);
    zactor_destroy (&sender);
    char *path = zsys_sprintf ("%s/store", dir);
    zdir_t *listing = zdir_new (path, NULL);
    assert (listing && zdir_count (listing) == 0);
    zdir_destroy (&listing);
    unlink (src);
    sf_bucket_destroy (&bucket);
    zstr_free (&path);
    zstr_free (&cmd);
    zstr_free (&src);
}

void
sf_imgstore_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_imgstore: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    sf_imgstore_cfg_t bad = { .driver = "glance?", .path = "/tmp" };
    assert (sf_imgstore_new (&bad, &err) == NULL && err.code == SF_EINVAL);
    assert (sf_imgstore_driver_known ("dir") && !sf_imgstore_driver_known ("glance?"));
    char names [64];
    assert (streq (sf_imgstore_driver_names (names, sizeof (names)), "'dir' or 'glance'"));

    char dir [] = "/tmp/sf-imgstore-test-XXXXXX";
    assert (mkdtemp (dir));
    char *src = zsys_sprintf ("%s/src.qcow2", dir);
    char *cmd = zsys_sprintf ("head -c 3145735 /dev/urandom > %s", src);
    assert (system (cmd) == 0);
    char *path = zsys_sprintf ("%s/store", dir);
    sf_imgstore_cfg_t cfg = { .driver = "dir", .path = path };
    mode_t old_umask = umask (077);
    sf_imgstore_t *store = sf_imgstore_new (&cfg, &err);
    assert (store && streq (sf_imgstore_name (store), "dir"));
    assert (streq (sf_imgstore_driver (store), "dir"));
    assert (sf_imgstore_check (store, &err) == 0);
    s_test_put (store, dir, src);
    s_test_sizes (store, dir);

    //  A missing source, and a cancelled copy, leave the store empty
    sf_image_meta_t meta = { "u", "n", "J43", 1, "offline", "offline", "vdb", S_TEST_CAT };
    sf_image_rec_t rec;
    char *missing = zsys_sprintf ("%s/missing.qcow2", dir);
    assert (sf_imgstore_put (store, &meta, missing, NULL, NULL, &rec, &err) == -1);
    assert (err.code == SF_ESTORE && strstr (err.text, "missing.qcow2"));
    zsock_t *reader = zsock_new_pair ("@inproc://sf-imgstore-test");
    zsock_t *writer = zsock_new_pair (">inproc://sf-imgstore-test");
    zstr_send (writer, "CANCEL");
    zclock_sleep (10);
    assert (sf_imgstore_put (store, &meta, src, reader, NULL, &rec, &err) == -1);
    assert (err.code == SF_ECANCELED);
    zdir_t *listing = zdir_new (path, NULL);
    assert (listing && zdir_count (listing) == 0);
    zdir_destroy (&listing);
    char *leftover = zstr_recv (reader);        //  no bucket: the message stays
    assert (leftover && streq (leftover, "CANCEL"));
    zstr_free (&leftover);

    //  With a bucket: 3 MiB at 2 MiB/s (the first MiB is the burst)
    sf_bucket_t *bucket = sf_bucket_new (2 * 1024 * 1024, SF_IMGSTORE_CHUNK);
    int64_t start = zclock_mono ();
    assert (sf_imgstore_put (store, &meta, src, reader, bucket, &rec, &err) == 0);
    int64_t took = zclock_mono () - start;
    assert (took >= 900 && took < 5000);
    assert (sf_imgstore_remove (store, rec.id, S_TEST_CAT, "J43", &err) == 0);
    sf_image_rec_release (&rec);
    //  A RATE message is no cancel: it lifts the limit of 1 kB/s here
    sf_bucket_set_rate (bucket, 1000);
    zstr_sendx (writer, "RATE", "0", NULL);
    zclock_sleep (10);
    start = zclock_mono ();
    assert (sf_imgstore_put (store, &meta, src, reader, bucket, &rec, &err) == 0);
    assert (zclock_mono () - start < 3000 && sf_bucket_rate (bucket) == 0);
    assert (sf_imgstore_remove (store, rec.id, S_TEST_CAT, "J43", &err) == 0);
    sf_image_rec_release (&rec);
    //  ... also while the copy waits on the bucket: 1 kB/s, unlimited 300 ms
    //  later (another thread sends it; the writer is not used here meanwhile)
    sf_bucket_set_rate (bucket, 1000);
    start = zclock_mono ();
    zactor_t *sender = zactor_new (s_test_rate_later, writer);
    assert (sf_imgstore_put (store, &meta, src, reader, bucket, &rec, &err) == 0);
    took = zclock_mono () - start;
    assert (took >= 250 && took < 3000);
    zactor_destroy (&sender);
    assert (sf_imgstore_remove (store, rec.id, S_TEST_CAT, "J43", &err) == 0);
    sf_image_rec_release (&rec);
    //  CANCEL while the copy waits on the bucket
    sf_bucket_set_rate (bucket, 1000);
    zstr_sendx (writer, "RATE", "1000", NULL);
    zstr_send (writer, "CANCEL");
    zclock_sleep (10);
    assert (sf_imgstore_put (store, &meta, src, reader, bucket, &rec, &err) == -1);
    assert (err.code == SF_ECANCELED);
    assert (!(zsock_events (reader) & ZMQ_POLLIN));
    listing = zdir_new (path, NULL);
    assert (listing && zdir_count (listing) == 0);
    zdir_destroy (&listing);
    sf_bucket_destroy (&bucket);
    s_test_cancel_ahead (store, dir, reader, writer);
    s_test_adopt (store, dir, src, reader, writer);
    zsock_destroy (&writer);
    zsock_destroy (&reader);
    sf_imgstore_destroy (&store);
    assert (store == NULL);
    umask (old_umask);

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
