/*  =========================================================================
    sf_stats - counters of what the scheduler dropped, and the rate limit
    on warnings about invalid input
    =========================================================================
*/
#include "sf_sched_classes.h"

SF_LOG_MODULE ("sched.core");

#define WARNINGS_PER_SECOND 20

bool
sf_stats_may_warn (sf_stats_t *self)
{
    assert (self);
    int64_t now = sf_time_mono_ms ();
    if (now - self->warn_window_ms >= 1000) {
        self->warn_window_ms = now;
        self->warn_count = 0;
    }
    if (self->warn_count >= WARNINGS_PER_SECOND) {
        self->warn_suppressed++;
        return false;
    }
    self->warn_count++;
    if (self->warn_suppressed) {
        SF_WARN (NULL, "%" PRIu64 " warnings about invalid input were suppressed",
                 self->warn_suppressed);
        self->warn_suppressed = 0;
    }
    return true;
}

//  --------------------------------------------------------------------------
//  Self test

void
sf_stats_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_stats: ");
    //  @selftest
    sf_stats_t stats = SF_STATS_INIT;
    int allowed = 0;
    for (int i = 0; i < 50; i++)
        allowed += sf_stats_may_warn (&stats)? 1: 0;
    //  The first 20 of a second, unless the second turned meanwhile
    assert (allowed >= WARNINGS_PER_SECOND && allowed < 50);
    //  @end
    printf ("OK\n");
}
