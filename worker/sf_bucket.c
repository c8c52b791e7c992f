/*  =========================================================================
    sf_bucket - token bucket for upload bandwidth

    Tokens are bytes, kept as a double; taking may drive them negative (a
    chunk is taken whole), and the debt is what the caller waits off.
    Refills happen lazily on every call from the elapsed time.
    =========================================================================
*/
#include "sf_worker_classes.h"

//  Structure of our class

struct _sf_bucket_t {
    uint64_t rate;              //  bytes/s, 0 = unlimited
    size_t chunk;               //  bytes the caller moves at a time
    double burst;               //  bytes, the most the bucket holds
    double tokens;              //  bytes, negative = debt
    int64_t last_us;            //  clock of the last refill
    sf_bucket_clock_fn *clock;
    void *clock_arg;
    bool terminated;            //  "$TERM" was read
};

SF_LOG_MODULE ("worker.bucket");

static int64_t
s_mono_us (void *arg)
{
    (void) arg;
    return zclock_usecs ();
}

static void
s_set_burst (sf_bucket_t *self)
{
    double tenth = (double) self->rate / 10;
    self->burst = tenth > (double) self->chunk ? tenth : (double) self->chunk;
}

static void
s_refill (sf_bucket_t *self)
{
    int64_t now = self->clock (self->clock_arg);
    if (self->rate == 0)
        self->tokens = self->burst;
    else
    if (now > self->last_us) {
        self->tokens += (double) self->rate * (double) (now - self->last_us) / 1e6;
        if (self->tokens > self->burst)
            self->tokens = self->burst;
    }
    self->last_us = now;
}

//  --------------------------------------------------------------------------
//  Constructor

sf_bucket_t *
sf_bucket_new (uint64_t rate, size_t chunk)
{
    sf_bucket_t *self = (sf_bucket_t *) zmalloc (sizeof (sf_bucket_t));
    self->rate = rate;
    self->chunk = chunk ? chunk : 1;
    self->clock = s_mono_us;
    s_set_burst (self);
    self->tokens = self->burst;
    self->last_us = self->clock (self->clock_arg);
    return self;
}

//  --------------------------------------------------------------------------
//  Destructor

void
sf_bucket_destroy (sf_bucket_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

void
sf_bucket_set_rate (sf_bucket_t *self, uint64_t rate)
{
    assert (self);
    s_refill (self);            //  at the old rate, up to now
    self->rate = rate;
    s_set_burst (self);
    if (self->tokens > self->burst)
        self->tokens = self->burst;
}

uint64_t
sf_bucket_rate (sf_bucket_t *self)
{
    assert (self);
    return self->rate;
}

int64_t
sf_bucket_delay (sf_bucket_t *self)
{
    assert (self);
    s_refill (self);
    if (self->rate == 0 || self->tokens >= 0)
        return 0;
    double ms = -self->tokens * 1000 / (double) self->rate;
    return (int64_t) ms + 1;    //  rounded up: never early
}

int64_t
sf_bucket_take (sf_bucket_t *self, uint64_t bytes)
{
    assert (self);
    s_refill (self);
    if (self->rate == 0)
        return 0;
    self->tokens -= (double) bytes;
    return sf_bucket_delay (self);
}

int
sf_bucket_sleep (sf_bucket_t *self, zsock_t *sock)
{
    assert (self);
    while (true) {
        int64_t delay = sf_bucket_delay (self);
        if (delay == 0)
            return 0;
        if (!sock) {
            zclock_sleep ((int) delay);
            continue;
        }
        zmq_pollitem_t item = { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 };
        int rc = zmq_poll (&item, 1, (long) delay);
        if (rc > 0 && (item.revents & ZMQ_POLLIN))
            return 1;
        if (rc == -1 && errno != EINTR)
            return 1;           //  the caller's read reports it
    }
}

sf_bucket_msg_t
sf_bucket_recv (sf_bucket_t *self, zsock_t *sock)
{
    assert (self && sock);
    zmsg_t *msg = zmsg_recv (sock);
    if (!msg) {
        self->terminated = true;
        return SF_BUCKET_STOP;
    }
    char *command = zmsg_popstr (msg);
    char *value = zmsg_popstr (msg);
    sf_bucket_msg_t kind = SF_BUCKET_STOP;
    if (command && (streq (command, "GRANT") || streq (command, "RATE"))) {
        kind = streq (command, "GRANT") ? SF_BUCKET_GRANT : SF_BUCKET_RATE;
        char *end = NULL;
        errno = 0;
        unsigned long long rate = value ? strtoull (value, &end, 10) : 0;
        if (!value || !*value || *end || errno)
            SF_WARN (NULL, "ignoring bad rate '%s' in %s", value ? value : "", command);
        else
            sf_bucket_set_rate (self, (uint64_t) rate);
    }
    else
    if (!command || streq (command, "$TERM"))
        self->terminated = true;
    zstr_free (&value);
    zstr_free (&command);
    zmsg_destroy (&msg);
    return kind;
}

bool
sf_bucket_terminated (sf_bucket_t *self)
{
    assert (self);
    return self->terminated;
}

void
sf_bucket_set_clock (sf_bucket_t *self, sf_bucket_clock_fn *clock, void *arg)
{
    assert (self && clock);
    self->clock = clock;
    self->clock_arg = arg;
    self->tokens = self->burst;
    self->last_us = clock (arg);
}

//  --------------------------------------------------------------------------
//  Self test

static int64_t
s_test_clock (void *arg)
{
    return *(int64_t *) arg;
}

//  Move total bytes in chunks through the bucket on the simulated clock,
//  waiting as told; returns the simulated ms it took
static int64_t
s_test_move (sf_bucket_t *bucket, int64_t *now, uint64_t total, size_t chunk)
{
    int64_t start = *now;
    for (uint64_t moved = 0; moved < total; ) {
        uint64_t bytes = total - moved < chunk ? total - moved : chunk;
        int64_t wait = sf_bucket_take (bucket, bytes);
        assert (wait >= 0 && wait <= 1000);     //  never more than a chunk's worth
        moved += bytes;
        *now += wait * 1000;
        *now += 50;                             //  the copy itself takes a little
    }
    return (*now - start) / 1000;
}

void
sf_bucket_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_bucket: ");
    //  @selftest
    const size_t chunk = 1024 * 1024;
    int64_t now = 1000000;
    //  10 MB/s: 50 MB in about 5 s (less the first, free burst of one chunk)
    sf_bucket_t *bucket = sf_bucket_new (10000000, chunk);
    sf_bucket_set_clock (bucket, s_test_clock, &now);
    int64_t took = s_test_move (bucket, &now, 50000000, chunk);
    assert (took >= 4850 && took <= 5050);
    if (verbose)
        printf ("50 MB at 10 MB/s in %" PRId64 " ms (simulated) ", took);
    //  The rate changes mid-way: 20 MB at 10 MB/s, then 20 MB at 20 MB/s
    now += 10 * 1000000;                        //  idle: the burst caps the credit
    took = s_test_move (bucket, &now, 20000000, chunk);
    assert (took >= 1850 && took <= 2050);
    sf_bucket_set_rate (bucket, 20000000);
    assert (sf_bucket_rate (bucket) == 20000000);
    took = s_test_move (bucket, &now, 20000000, chunk);
    assert (took >= 900 && took <= 1050);
    //  A lower rate in the middle of a debt: paid at the new rate
    assert (sf_bucket_take (bucket, 4000000) > 0);
    sf_bucket_set_rate (bucket, 1000000);
    int64_t delay = sf_bucket_delay (bucket);
    assert (delay >= 3000 && delay <= 4100);
    //  Unlimited: never a wait, whatever was owed
    sf_bucket_set_rate (bucket, 0);
    assert (sf_bucket_delay (bucket) == 0);
    assert (sf_bucket_take (bucket, 1ULL << 40) == 0);
    //  ... and back to a limit: starts from a full burst
    sf_bucket_set_rate (bucket, 10000000);
    assert (sf_bucket_take (bucket, chunk) == 0);
    assert (sf_bucket_take (bucket, chunk) > 0);
    sf_bucket_destroy (&bucket);
    assert (bucket == NULL);

    //  Real time, short: 2.4 MB at 4 MB/s in 64 KiB chunks, burst 400 kB
    bucket = sf_bucket_new (4000000, 65536);
    int64_t start = zclock_mono ();
    for (uint64_t moved = 0; moved < 2400000; moved += 65536) {
        sf_bucket_take (bucket, 65536);
        assert (sf_bucket_sleep (bucket, NULL) == 0);
    }
    took = zclock_mono () - start;
    if (verbose)
        printf ("2.4 MB at 4 MB/s in %" PRId64 " ms (real) ", took);
    assert (took >= 450 && took < 2000);
    sf_bucket_destroy (&bucket);

    //  The pipe: a message ends a sleep; RATE and GRANT set the rate,
    //  anything else stops; $TERM marks the bucket terminated
    zsock_t *reader = zsock_new_pair ("@inproc://sf-bucket-test");
    zsock_t *writer = zsock_new_pair (">inproc://sf-bucket-test");
    bucket = sf_bucket_new (1000, 1000);
    sf_bucket_take (bucket, 100000);            //  100 s of debt
    zstr_sendx (writer, "RATE", "0", NULL);
    start = zclock_mono ();
    assert (sf_bucket_sleep (bucket, reader) == 1);
    assert (zclock_mono () - start < 5000);
    assert (sf_bucket_recv (bucket, reader) == SF_BUCKET_RATE);
    assert (sf_bucket_rate (bucket) == 0 && sf_bucket_sleep (bucket, reader) == 0);
    zstr_sendx (writer, "GRANT", "8388608", NULL);
    assert (sf_bucket_recv (bucket, reader) == SF_BUCKET_GRANT);
    assert (sf_bucket_rate (bucket) == 8388608);
    zstr_sendx (writer, "RATE", "fast", NULL);  //  ignored, still a rate message
    assert (sf_bucket_recv (bucket, reader) == SF_BUCKET_RATE);
    assert (sf_bucket_rate (bucket) == 8388608);
    zstr_send (writer, "CANCEL");
    assert (sf_bucket_recv (bucket, reader) == SF_BUCKET_STOP);
    assert (!sf_bucket_terminated (bucket));
    zstr_send (writer, "$TERM");
    assert (sf_bucket_recv (bucket, reader) == SF_BUCKET_STOP);
    assert (sf_bucket_terminated (bucket));
    sf_bucket_destroy (&bucket);
    zsock_destroy (&writer);
    zsock_destroy (&reader);
    //  @end
    printf ("OK\n");
}
