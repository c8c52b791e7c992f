/*  =========================================================================
    sf_readback - a stored image read back by a job's actor (see the header)
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

SF_LOG_MODULE ("worker.readback");

void
sf_readback_init (sf_readback_t *self, zsock_t *pipe, sf_logctx_t *ctx, sf_err_t *err,
                  const char *what, const char *job_id, uint32_t attempt)
{
    assert (self && pipe && err && what && job_id);
    *self = (sf_readback_t) {
        .pipe = pipe, .ctx = ctx, .err = err, .what = what, .job_id = job_id,
        .attempt = attempt, .fd = -1, .bucket = sf_bucket_new (0, SF_READBACK_CHUNK),
        .image = SF_IMAGE_INIT
    };
}

void
sf_readback_set_image (sf_readback_t *self, const sf_image_t *image)
{
    assert (self && image && !self->image_set);
    self->image.store = sf_strdup0 (image->store);
    self->image.id = sf_strdup0 (image->id);
    self->image.path = sf_strdup0 (image->path);
    self->image.format = sf_strdup0 (image->format);
    self->image.sha256 = sf_strdup0 (image->sha256);
    self->image.disk_target = sf_strdup0 (image->disk_target);
    self->image.size = image->size;
    self->image_set = true;
}

void
sf_readback_fini (sf_readback_t *self)
{
    assert (self);
    if (self->image_set) {
        char **texts [] = { &self->image.store, &self->image.id, &self->image.path,
                            &self->image.format, &self->image.sha256,
                            &self->image.disk_target };
        for (size_t i = 0; i < sizeof (texts) / sizeof (texts [0]); i++)
            zstr_free (texts [i]);
        self->image_set = false;
    }
    if (self->fd != -1)
        close (self->fd);
    self->fd = -1;
    if (self->bucket && !sf_bucket_terminated (self->bucket))
        sf_actor_wait_term (self->pipe);
    sf_bucket_destroy (&self->bucket);
}

void
sf_readback_emit (sf_readback_t *self, int phase, uint64_t ms, uint64_t bytes,
                  const char *text)
{
    sf_jobmsg_event (self->pipe, self->ctx, self->job_id, self->attempt, phase, ms, bytes,
                     text);
}

//  --------------------------------------------------------------------------
//  The pipe. The rate the bucket applies is answered with APPLIED, to the
//  owner, who answers the scheduler's grant with it. A running qemu-img
//  keeps its -r: a rate below it applies only when the conversion ends,
//  and is not answered before (the scheduler keeps counting the old one;
//  UPLOADED frees it all right after).

static void
s_applied (sf_readback_t *self)
{
    uint64_t rate = sf_bucket_rate (self->bucket);
    if (self->converting && rate && (!self->qemu_rate || rate < self->qemu_rate))
        return;
    char text [32];
    snprintf (text, sizeof (text), "%" PRIu64, rate);
    zframe_t *frame = zframe_new (text, strlen (text));
    zsock_send (self->pipe, "sf", "APPLIED", frame);
    zframe_destroy (&frame);
}

int
sf_readback_on_pipe (sf_readback_t *self)
{
    if (sf_bucket_recv (self->bucket, self->pipe) == SF_BUCKET_STOP)
        return sf_err_set (self->err, SF_ECANCELED, "%s cancelled", self->what);
    s_applied (self);
    return 0;
}

int
sf_readback_poll_pipe (sf_readback_t *self)
{
    while (zsock_events (self->pipe) & ZMQ_POLLIN)
        if (sf_readback_on_pipe (self))
            return -1;
    return 0;
}

int
sf_readback_wait_grant (sf_readback_t *self, bool wait, uint64_t bytes)
{
    if (!wait)
        return 0;
    sf_readback_emit (self, SF_PHASE_UPLOAD_WAIT, 0, bytes, NULL);
    while (true) {
        sf_bucket_msg_t msg = sf_bucket_recv (self->bucket, self->pipe);
        if (msg == SF_BUCKET_STOP)
            return sf_err_set (self->err, SF_ECANCELED,
                               "%s cancelled while waiting for its grant", self->what);
        s_applied (self);
        if (msg == SF_BUCKET_GRANT)
            return 0;
    }
}

//  --------------------------------------------------------------------------
//  The image

int
sf_readback_open (sf_readback_t *self, const char *path, struct stat *st)
{
    self->fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    return self->fd == -1 || fstat (self->fd, st) ? -1 : 0;
}

char *
sf_readback_store_path (sf_readback_t *self, const char *store_dir, const char *image_id)
{
    char *store = realpath (store_dir, NULL);
    if (!store) {
        sf_err_set (self->err, SF_ESTORE, "image store '%s' is not readable: %s",
                    store_dir, strerror (errno));
        return NULL;
    }
    char *path = zsys_sprintf ("%s/%s.qcow2", store, image_id);
    free (store);
    return path;
}

int
sf_readback_hash (sf_readback_t *self, uint64_t size, const char *image_id, char hex [65])
{
    *hex = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new ();
    char *buffer = (char *) malloc (SF_READBACK_CHUNK);
    assert (md && buffer);
    int rc = EVP_DigestInit_ex (md, EVP_sha256 (), NULL) == 1 ? 0
           : sf_err_set (self->err, SF_EIO, "cannot start SHA-256 (libcrypto)");
    uint64_t offset = 0;
    while (rc == 0 && offset < size) {
        //  A cancel, or the bucket's pace, between chunks
        rc = sf_readback_poll_pipe (self);
        while (rc == 0 && sf_bucket_sleep (self->bucket, self->pipe) == 1)
            rc = sf_readback_on_pipe (self);
        if (rc)
            break;
        ssize_t got = pread (self->fd, buffer, SF_READBACK_CHUNK, (off_t) offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            rc = sf_err_set (self->err, SF_ESTORE, "cannot read image '%s' at %" PRIu64
                             ": %s", image_id, offset,
                             got == 0 ? "it ended early" : strerror (errno));
            break;
        }
        if (EVP_DigestUpdate (md, buffer, (size_t) got) != 1)
            rc = sf_err_set (self->err, SF_EIO, "SHA-256 (libcrypto) failed");
        offset += (uint64_t) got;
        sf_bucket_take (self->bucket, (uint64_t) got);
    }
    unsigned char digest [EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (rc == 0 && EVP_DigestFinal_ex (md, digest, &length) != 1)
        rc = sf_err_set (self->err, SF_EIO, "SHA-256 (libcrypto) failed");
    EVP_MD_CTX_free (md);
    free (buffer);
    if (rc)
        return -1;
    for (unsigned int i = 0; i < length && i < 32; i++)
        snprintf (hex + 2 * i, 3, "%02x", digest [i]);
    return 0;
}

//  --------------------------------------------------------------------------
//  qemu-img

uint64_t
sf_readback_rate (sf_readback_t *self, uint64_t rate_limit)
{
    uint64_t rate = sf_bucket_rate (self->bucket);
    if (rate_limit && (!rate || rate_limit < rate))
        rate = rate_limit;
    return rate;
}

int
sf_readback_watch (sf_readback_t *self, sf_proc_t *proc, const char *out, int64_t stall_ms,
                   int64_t tick_ms)
{
    sf_conv_progress_t progress;
    sf_conv_progress_init (&progress);
    while (true) {
        int rc = sf_proc_wait (proc, self->pipe, sf_time_mono_ms () + tick_ms, self->err);
        if (rc == SF_PROC_EXITED)
            return 0;
        if (rc == -1)
            return -1;
        if (rc == SF_PROC_CANCELLED && sf_readback_on_pipe (self))
            return -1;
        if (sf_conv_progress_check (&progress, proc, out, stall_ms, self->err))
            return -1;
    }
}

int
sf_readback_run (sf_readback_t *self, char **argv, int64_t deadline, int *code,
                 char **output)
{
    sf_proc_t *proc = sf_proc_new (argv, SF_PROC_CAPTURE, self->err);
    if (!proc)
        return -1;
    int rc;
    while (true) {
        rc = sf_proc_wait (proc, self->pipe, deadline, self->err);
        if (rc == SF_PROC_CANCELLED && sf_readback_on_pipe (self) == 0)
            continue;
        break;
    }
    if (rc == SF_PROC_TIMEOUT)
        sf_err_set (self->err, SF_ETIMEDOUT, "'%s %s' did not finish in time", argv [0],
                    argv [1]);
    if (rc != SF_PROC_EXITED) {
        sf_proc_stop (proc, 2000);
        sf_proc_destroy (&proc);
        return -1;
    }
    *code = sf_proc_exit_code (proc);
    if (output)
        *output = strdup (*sf_proc_stderr (proc) ? sf_proc_stderr (proc)
                                                 : sf_proc_stdout (proc));
    sf_proc_destroy (&proc);
    return 0;
}

//  --------------------------------------------------------------------------
//  Self test: the owner's side of the pipe in the same thread (a pair)

static char *
s_recv_applied (zsock_t *owner)
{
    char *kind = NULL, *rate = NULL;
    assert (zsock_recv (owner, "ss", &kind, &rate) == 0 && streq (kind, "APPLIED"));
    zstr_free (&kind);
    return rate;
}

void
sf_readback_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_readback: ");
    //  @selftest
    zsock_t *owner = zsock_new_pair ("@inproc://sf-readback-test");
    zsock_t *pipe = zsock_new_pair (">inproc://sf-readback-test");
    assert (owner && pipe);
    sf_err_t err = SF_ERR_INIT;
    sf_readback_t rb;
    sf_readback_init (&rb, pipe, NULL, &err, "test", "J1", 2);
    sf_image_t record = SF_IMAGE_INIT;
    record.id = "I1", record.store = "dir", record.size = 3, record.sha256 = NULL;
    sf_readback_set_image (&rb, &record);
    assert (streq (rb.image.id, "I1") && streq (rb.image.sha256, "") && rb.image.size == 3);
    char path [] = "/tmp/sf-readback-test-XXXXXX";
    int fd = mkstemp (path);
    assert (fd != -1 && write (fd, "abc", 3) == 3);
    close (fd);
    //  The image: opened, hashed (the FIPS 180-2 example)
    struct stat st;
    assert (sf_readback_open (&rb, path, &st) == 0 && st.st_size == 3);
    char hex [65];
    assert (sf_readback_hash (&rb, 3, "I1", hex) == 0);
    assert (streq (hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    //  Shorter than recorded: a store error naming it
    assert (sf_readback_hash (&rb, 4, "I1", hex) == -1 && err.code == SF_ESTORE);
    assert (strstr (err.text, "'I1' at 3: it ended early"));
    //  The grant: an UPLOAD_WAIT event, the rate answered
    zstr_sendx (owner, "GRANT", "1000", NULL);
    assert (sf_readback_wait_grant (&rb, true, 3) == 0);
    char *kind = NULL;
    zframe_t *frame = NULL;
    assert (zsock_recv (owner, "sf", &kind, &frame) == 0 && streq (kind, "EVENT"));
    sf_envelope_t *env = sf_wire_decode (frame, &err);
    assert (env && env->job_event->phase == SF_PHASE_UPLOAD_WAIT);
    assert (streq (env->job_event->job_id, "J1") && env->job_event->bytes == 3);
    sf_wire_free (&env);
    zframe_destroy (&frame);
    zstr_free (&kind);
    char *rate = s_recv_applied (owner);
    assert (streq (rate, "1000"));
    zstr_free (&rate);
    assert (sf_readback_rate (&rb, 0) == 1000 && sf_readback_rate (&rb, 10) == 10);
    //  A rate below a running qemu-img's is not answered yet; above it is
    rb.converting = true, rb.qemu_rate = 1000;
    zstr_sendx (owner, "RATE", "500", NULL);
    zstr_sendx (owner, "RATE", "2000", NULL);
    zclock_sleep (10);
    assert (sf_readback_poll_pipe (&rb) == 0);
    rate = s_recv_applied (owner);
    assert (streq (rate, "2000"));
    zstr_free (&rate);
    rb.converting = false;
    //  A cancel stops the hash between chunks
    zstr_sendx (owner, "CANCEL", NULL);
    zclock_sleep (10);
    assert (sf_readback_hash (&rb, 3, "I1", hex) == -1 && err.code == SF_ECANCELED);
    assert (streq (err.text, "test cancelled"));
    //  A run: its exit code and stderr; one past its deadline
    char *argv [] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
    int code = -1;
    char *output = NULL;
    assert (sf_readback_run (&rb, argv, sf_time_mono_ms () + 10000, &code, &output) == 0);
    assert (code == 3 && streq (output, "err\n"));
    free (output);
    char *slow [] = { "sleep", "5", NULL };
    assert (sf_readback_run (&rb, slow, sf_time_mono_ms () + 100, &code, NULL) == -1);
    assert (err.code == SF_ETIMEDOUT && streq (err.text, "'sleep 5' did not finish in time"));
    //  The store's path of an image, or why not
    char *where = sf_readback_store_path (&rb, "/tmp", "I1");
    assert (where && streq (where, "/tmp/I1.qcow2"));
    zstr_free (&where);
    assert (!sf_readback_store_path (&rb, "/nonexistent/store", "I1"));
    assert (err.code == SF_ESTORE && strstr (err.text, "is not readable"));
    //  $TERM ends the pipe: fini does not wait for another
    zstr_sendx (owner, "$TERM", NULL);
    zclock_sleep (10);
    assert (sf_readback_poll_pipe (&rb) == -1);
    sf_readback_fini (&rb);
    assert (rb.fd == -1 && !rb.bucket && !rb.image_set);
    unlink (path);
    zsock_destroy (&pipe);
    zsock_destroy (&owner);
    //  @end
    printf ("OK\n");
}
