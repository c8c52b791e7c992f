/*  =========================================================================
    sf_stats - counters of what the scheduler dropped, and the rate limit
    on warnings about invalid input

    A value the scheduler embeds and lends to the classes that count
    (sf_sched for worker messages, sf_admin for requests). The counters are
    exact; the warnings they go with are limited to 20 a second, so that a
    flood of garbage cannot flood the log.
    =========================================================================
*/
#ifndef SF_STATS_H_INCLUDED
#define SF_STATS_H_INCLUDED

typedef struct {
    uint64_t worker_invalid;    //  Undecodable or invalid worker messages
    uint64_t worker_unknown;    //  Non-hello messages from unknown peers
    uint64_t worker_unexpected; //  Valid messages a worker must not send
    uint64_t worker_fenced;     //  Job messages dropped by fencing
    uint64_t worker_misnamed;   //  Hellos (and messages) for another key's node
    uint64_t admin_requests;    //  Admin requests answered
    uint64_t admin_invalid;     //  Admin requests rejected as malformed
    //  The warning rate limit (private to sf_stats_may_warn)
    int64_t warn_window_ms;     //  Start of the current second
    int warn_count;             //  Warnings logged in it
    uint64_t warn_suppressed;   //  Warnings suppressed since the last one
} sf_stats_t;

#define SF_STATS_INIT { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

//  Whether a warning about invalid input may be logged now: at most 20 a
//  second. Once a flood is over, the next allowed warning is preceded by
//  how many were suppressed.
bool
    sf_stats_may_warn (sf_stats_t *self);

//  Self test of this class
void
    sf_stats_test (bool verbose);

#endif
