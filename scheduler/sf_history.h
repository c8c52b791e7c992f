/*  =========================================================================
    sf_history - how long the database remembers: finished jobs, their
    events and finished bulks older than [retention] history_days are
    forgotten, at start and then hourly

    A job whose images are still listed stays, whatever its age (so do
    the schedules' images: their own keep-* rules prune them), and so does
    its bulk. Each call forgets at most one batch, so that the event loop
    never waits long; while a pass has more to do, the next call goes on.
    =========================================================================
*/
#ifndef SF_HISTORY_H_INCLUDED
#define SF_HISTORY_H_INCLUDED

typedef struct _sf_history_t sf_history_t;

//  Rows forgotten per call at most, and how often a pass runs
#define SF_HISTORY_BATCH        500
#define SF_HISTORY_INTERVAL_MS  (3600 * 1000)

//  Forget what is older than days (1..36500) in jobs and bulk (borrowed,
//  they must outlive it). The first pass is due at once. Caller owns it.
sf_history_t *
    sf_history_new (sf_jobs_t *jobs, sf_bulk_t *bulk, int64_t days);

//  Destroy. Nullifies *self_p.
void
    sf_history_destroy (sf_history_t **self_p);

//  If a pass is due at now_ms (epoch ms), forget one batch of jobs and one
//  of bulks. Call it every second or so. Returns the rows forgotten, or -1
//  with err set (the pass is retried at the next call).
int64_t
    sf_history_tick (sf_history_t *self, int64_t now_ms, sf_err_t *err);

//  Self test of this class
void
    sf_history_test (bool verbose);

#endif
