/*  =========================================================================
    sf_readback - a stored image read back by a job's actor (a restore, a
    verification): its pipe under the granted rate (the grant wait, rates
    answered with APPLIED, a cancel between chunks), the image file open
    once and hashed with EVP under the bucket, qemu-img run and watched

    The actor embeds one (sf_readback_init) and keeps its own logic; what
    fails is set in the actor's sf_err_t, with texts naming what (e.g.
    "restore cancelled", "verification cancelled").
    =========================================================================
*/
#ifndef SF_READBACK_H_INCLUDED
#define SF_READBACK_H_INCLUDED

typedef struct {
    zsock_t *pipe;                  //  Borrowed, the actor pipe
    sf_logctx_t *ctx;               //  Borrowed
    sf_err_t *err;                  //  Borrowed: where failures are set
    const char *what;               //  "restore", "verification" (static)
    const char *job_id;             //  Borrowed, for events
    uint32_t attempt;
    sf_bucket_t *bucket;            //  Owned: the granted rate
    int fd;                         //  The image, open once (-1: not yet)
    bool converting;                //  qemu-img runs at qemu_rate (0: unlimited):
    uint64_t qemu_rate;             //  a rate below it is not answered yet
    sf_image_t image;               //  The image's record (sf_readback_set_image):
                                    //  its texts owned copies
    bool image_set;
} sf_readback_t;

//  Bytes hashed (and taken from the bucket) at a time
#define SF_READBACK_CHUNK   (1024 * 1024)

//  Set up self (its bucket unlimited until a grant); job_id and ctx must
//  outlive it.
void
    sf_readback_init (sf_readback_t *self, zsock_t *pipe, sf_logctx_t *ctx, sf_err_t *err,
                      const char *what, const char *job_id, uint32_t attempt);

//  Copy the record of the image read back into self->image: its store,
//  id, path, format, sha256, disk_target ("" for NULL) and size.
void
    sf_readback_set_image (sf_readback_t *self, const sf_image_t *image);

//  Free the image's record, close the image, wait for $TERM unless the
//  pipe brought it, destroy the bucket.
void
    sf_readback_fini (sf_readback_t *self);

//  Send a phase event (sf_jobmsg_event)
void
    sf_readback_emit (sf_readback_t *self, int phase, uint64_t ms, uint64_t bytes,
                      const char *text);

//  Read one message from the pipe: 0 to go on (a rate, answered with
//  APPLIED), -1 to stop (cancel, $TERM) with err "<what> cancelled".
int
    sf_readback_on_pipe (sf_readback_t *self);

//  Read what waits on the pipe without blocking: 0, or -1 as above.
int
    sf_readback_poll_pipe (sf_readback_t *self);

//  If wait, emit UPLOAD_WAIT (bytes) and wait for the grant: 0 once it
//  came, -1 with err "<what> cancelled while waiting for its grant".
int
    sf_readback_wait_grant (sf_readback_t *self, bool wait, uint64_t bytes);

//  Open path read-only (no link followed) into self->fd and fstat it:
//  0, or -1 with errno.
int
    sf_readback_open (sf_readback_t *self, const char *path, struct stat *st);

//  Where the dir store at store_dir keeps image_id (resolved), the
//  caller's to free; NULL with err "image store '...' is not readable".
char *
    sf_readback_store_path (sf_readback_t *self, const char *store_dir,
                            const char *image_id);

//  SHA-256 of the first size bytes of self->fd into hex (lowercase), a
//  chunk at a time under the bucket, the pipe read between chunks. 0, or
//  -1 with err (cancelled, read or libcrypto failed; image_id names it).
int
    sf_readback_hash (sf_readback_t *self, uint64_t size, const char *image_id,
                      char hex [65]);

//  The rate for a qemu-img -r: the tighter of rate_limit ([conversion]
//  rate_limit, 0 none) and the bucket's (0 unlimited); 0 for none.
uint64_t
    sf_readback_rate (sf_readback_t *self, uint64_t rate_limit);

//  Wait for a qemu-img run with -p writing out, its progress looked at
//  every tick_ms: 0 once it exited, -1 with err (cancelled, no progress for
//  stall_ms); it still runs then.
int
    sf_readback_watch (sf_readback_t *self, sf_proc_t *proc, const char *out,
                       int64_t stall_ms, int64_t tick_ms);

//  Run argv to its end (or deadline, err "'argv0 argv1' did not finish in
//  time"), a cancel stops it: 0 once it exited, its exit code in *code and
//  (if output) its stderr, else stdout, in *output (the caller's to free);
//  -1 with err.
int
    sf_readback_run (sf_readback_t *self, char **argv, int64_t deadline, int *code,
                     char **output);

//  Self test of this class
void
    sf_readback_test (bool verbose);

#endif
