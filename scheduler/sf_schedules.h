/*  =========================================================================
    sf_schedules - schedules: a calendar (systemd OnCalendar), a selection
    of instances, a window and keep-* rules; firing, catch-up

    A schedule fires at each elapse of its calendar: it creates a bulk
    through the fire callback (window_end = elapse + window, 0 = none) and
    records the run. A schedule whose elapses were missed while the
    scheduler was down fires once at start (sf_schedules_start), with its
    window starting then, not once per missed run. An elapse that comes
    while the schedule's previous bulk still has queued or running jobs is
    skipped (logged, last_error says so): its instances are busy. Before firing, the
    elapse is recorded as consumed and committed, so a crash during the
    fire loses that one run rather than repeating it at every restart.

    Table schedules (from sf_store's migration 4, written only here):
      seq (the schedule's identity, never reused: a schedule removed and
      added again under its name is another schedule, version 7), name
      (unique), calendar (as given), select_json, strategy ('' =
      each instance's own), priority, window_ms (0 = none), keep_last,
      keep_daily, keep_weekly, keep_monthly, created (epoch ms), elapse
      (epoch s of the last consumed elapse, 0 = none yet), last_run (epoch
      ms the last fire happened, 0 = never), last_bulk ('' = none),
      last_error ('' = none)
    sf_retention reads the keep-* rules through sf_schedules_keep, by seq.
    =========================================================================
*/
#ifndef SF_SCHEDULES_H_INCLUDED
#define SF_SCHEDULES_H_INCLUDED

#include <jansson.h>

typedef struct _sf_schedules_t sf_schedules_t;

//  Largest name and calendar expression accepted
#define SF_SCHEDULES_MAX_NAME       64
#define SF_SCHEDULES_MAX_CALENDAR   256

//  The keep-* rules of a schedule (each >= 0; all zero keeps everything)
typedef struct {
    int64_t last;
    int64_t daily;
    int64_t weekly;
    int64_t monthly;
} sf_keep_t;

//  Create a bulk for schedule (its name and its seq, which the bulk
//  records): select (borrowed), strategy (NULL = each instance's own),
//  priority, window_end_ms (epoch ms, 0 = none). Returns the BULK object
//  of the admin contract (the caller owns it; its "bulk_id" is recorded as
//  the schedule's last bulk), or NULL with err set.
typedef json_t *(sf_schedules_fire_fn) (void *arg, const char *schedule,
                                        int64_t schedule_seq, json_t *select,
                                        const char *strategy, int priority,
                                        int64_t window_end_ms, sf_err_t *err);

//  Verify image_id (a sample of a schedule's run, issue 13). Returns 0 or
//  -1 with err set.
typedef int (sf_schedules_verify_fn) (void *arg, const char *image_id, sf_err_t *err);

//  Create the class on store, whose migrations made the table, and jobs
//  (through which it counts the unfinished jobs of a schedule's last bulk);
//  both borrowed, they must outlive the result. fire (with arg) creates
//  the bulks. Returns NULL with err set on failure (none today; err is
//  kept for the caller's sake). Caller owns the result.
sf_schedules_t *
    sf_schedules_new (sf_store_t *store, sf_jobs_t *jobs,
                      sf_schedules_fire_fn *fire, void *arg, sf_err_t *err);

//  Destroy the class. Nullifies *self_p.
void
    sf_schedules_destroy (sf_schedules_t **self_p);

//  Let schedules with "verify": N verify N images (at random, of dir
//  stores) of each run once its last job ended, through verify (with
//  arg). The sample is taken at the first check after the run ended (at
//  most a minute later) and once per run (the bulk is recorded first).
void
    sf_schedules_set_verify (sf_schedules_t *self, sf_schedules_verify_fn *verify,
                             void *arg);

//  Admin commands. request is the whole request object ("cmd" and "id" are
//  ignored, any other unknown key is SF_EINVAL). Each returns the reply
//  payload object (caller owns it), or NULL with err set:
//    schedule_add  {"name","calendar","select","strategy"?,"priority"?,
//                   "window"?:MS,"keep_last"?,"keep_daily"?,"keep_weekly"?,
//                   "keep_monthly"?,"verify"?:N (0..100)}  -> {"schedule":SCHED}
//                  SF_EINVAL for a bad argument, SF_EEXIST for a taken name
//    schedule_list {}                 -> {"schedules":[SCHED, ...]} by name
//    schedule_rm   {"name"}           -> {"removed":NAME}, SF_ENOENT if none
//  SCHED = {"name","calendar","normalized","select","strategy" (null =
//  each instance's own),"priority","window_ms","keep":{"last","daily",
//  "weekly","monthly"},"verify","next_run","last_run","last_bulk","last_error"};
//  next_run, last_run: epoch ms or null; last_bulk, last_error: null or text.
//  Numbers may be given as JSON integers or as decimal strings.
json_t *
    sf_schedules_add (sf_schedules_t *self, json_t *request, sf_err_t *err);
json_t *
    sf_schedules_list (sf_schedules_t *self, json_t *request, sf_err_t *err);
json_t *
    sf_schedules_rm (sf_schedules_t *self, json_t *request, sf_err_t *err);

//  The keep-* rules of the schedule whose seq is seq into keep. Returns 1,
//  0 if there is no such schedule (removed, even if another has its name
//  now; keep zeroed), or -1 with err set.
int
    sf_schedules_keep (sf_schedules_t *self, int64_t seq, sf_keep_t *keep,
                       sf_err_t *err);

//  Fire every schedule whose next elapse is at or before now_ms (epoch ms),
//  with window_end = elapse + window. If several elapses passed since the
//  last tick, it fires once (for the latest). Call it every second. Does
//  nothing until sf_schedules_start was called (the catch-up comes first).
void
    sf_schedules_tick (sf_schedules_t *self, int64_t now_ms);

//  Call once when the scheduler starts: every schedule with an elapse
//  missed while it was down (last consumed elapse < latest elapse <= now)
//  fires once now, its window starting now; logged. Returns the number of
//  schedules caught up. Ticks fire nothing before this call, so the caller
//  may delay it until the workers had a chance to reconnect (a catch-up
//  fired before their hello would find every node down).
int
    sf_schedules_start (sf_schedules_t *self, int64_t now_ms);

//  Self test of this class
void
    sf_schedules_test (bool verbose);

#endif
