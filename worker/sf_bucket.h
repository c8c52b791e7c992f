/*  =========================================================================
    sf_bucket - token bucket for upload bandwidth, and the task pipe's
    grant messages that drive it

    The scheduler hands each upload a share of the bandwidth (JobGrant
    rate_bps) and changes it while the upload runs. The copy loop takes
    every chunk it moves from the bucket and sleeps while the bucket is in
    debt. Rate 0 means no limit. The burst is 100 ms of the rate or one
    chunk, whichever is larger, so a chunk never waits longer than its own
    size at the rate; the bucket starts full.

    Messages a task reads on its pipe (sf_bucket_recv):
      "GRANT" + rate    the upload may start at rate bytes/s (decimal)
      "RATE"  + rate    change the rate of the running upload
      anything else     ("CANCEL", "$TERM") stop: the job is cancelled
    =========================================================================
*/
#ifndef SF_BUCKET_H_INCLUDED
#define SF_BUCKET_H_INCLUDED

typedef struct _sf_bucket_t sf_bucket_t;

//  What sf_bucket_recv read
typedef enum {
    SF_BUCKET_RATE = 0,         //  "RATE": the rate changed
    SF_BUCKET_GRANT,            //  "GRANT": the rate is set, the upload may start
    SF_BUCKET_STOP,             //  anything else: cancel
    SF_BUCKET_LAST,
} sf_bucket_msg_t;

//  Clock in microseconds, monotonic (tests pass a simulated one)
typedef int64_t (sf_bucket_clock_fn) (void *arg);

//  Create a bucket at rate bytes/s (0 = unlimited) for copies of chunk
//  bytes at a time. Caller owns it.
sf_bucket_t *
    sf_bucket_new (uint64_t rate, size_t chunk);

//  Free. Nullifies *self_p.
void
    sf_bucket_destroy (sf_bucket_t **self_p);

//  Change the rate (0 = unlimited) at any time; what was taken at the old
//  rate is paid for at the new one from now on.
void
    sf_bucket_set_rate (sf_bucket_t *self, uint64_t rate);

//  Current rate, bytes/s (0 = unlimited).
uint64_t
    sf_bucket_rate (sf_bucket_t *self);

//  Take bytes (they were, or are about to be, moved). Returns how many ms
//  to wait before moving more (0 = go on).
int64_t
    sf_bucket_take (sf_bucket_t *self, uint64_t bytes);

//  How many ms to wait now before moving more (0 = go on).
int64_t
    sf_bucket_delay (sf_bucket_t *self);

//  Sleep until the bucket is out of debt, or until sock (may be NULL) has
//  a message (not read). Returns 0 when done waiting, 1 if sock is readable
//  (read and dispatch the message, then call again).
int
    sf_bucket_sleep (sf_bucket_t *self, zsock_t *sock);

//  Read one message from sock (blocking) and apply it: GRANT and RATE set
//  the rate. Returns what it was. A "$TERM" (or an interrupted read) also
//  marks the bucket terminated, so the task's owner is not waited for again.
sf_bucket_msg_t
    sf_bucket_recv (sf_bucket_t *self, zsock_t *sock);

//  True once sf_bucket_recv read "$TERM" or was interrupted.
bool
    sf_bucket_terminated (sf_bucket_t *self);

//  Tests: use clock instead of the monotonic clock (resets the bucket to
//  full at the clock's current time).
void
    sf_bucket_set_clock (sf_bucket_t *self, sf_bucket_clock_fn *clock, void *arg);

//  Self test of this class
void
    sf_bucket_test (bool verbose);

#endif
