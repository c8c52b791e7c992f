/*  =========================================================================
    sf_retention - retention: keep-* rules and pruning of scheduled images

    The rules are Proxmox's (its "prune simulator"): backups sorted newest
    first; keep-last N keeps the N newest; then keep-daily N keeps the
    newest backup of each of the last N days that have a backup, skipping
    days that hold a backup already kept by an earlier rule; keep-weekly
    (ISO weeks) and keep-monthly the same. Periods are in local time. All
    rules zero keeps everything. A backup is one job: all its images (one
    per disk) are kept or dropped together.

    sf_retention_t applies them after a scheduled bulk: when the bulk has
    at least one job done, for each instance whose job in the bulk is done
    it looks at every image made by done jobs of bulks of the same
    schedule (the same schedule: bulks are matched by the schedule's
    identity, never its name), and asks the node that made each image to
    drop to delete it
    (through the delete callback: ImageDelete on the wire). Deletions are
    tracked durably in the table retention_deletes (from sf_store's
    migration 5, written only here):
      request_id "D<seq>", store, image_id, node, schedule, bulk_id,
      state pending|failed, attempts, error_code, error_text, created,
      updated
    The ImageDeleted answer has sf_jobs forget the image, its row going in
    one transaction with the deletion's (success, also when the image was
    already gone), or records the error; failed deletions, and
    pending ones left unanswered for SF_RETENTION_RESEND_MS, are sent again
    at the next bulk_done or tick (failed ones after SF_RETENTION_RETRY_MS).
    =========================================================================
*/
#ifndef SF_RETENTION_H_INCLUDED
#define SF_RETENTION_H_INCLUDED

#include <jansson.h>

typedef struct _sf_retention_t sf_retention_t;

//  Retry a failed deletion after this long, resend an unanswered one after
//  that long
#define SF_RETENTION_RETRY_MS   (60 * 1000)
#define SF_RETENTION_RESEND_MS  (10 * 60 * 1000)

//  Apply keep (see sf_keep_t in sf_schedules.h) to n backups made at times [i] (epoch ms, any order). Sets
//  keep_out [i] to true for each backup to keep. Pure: reads only the
//  local time zone.
void
    sf_retention_apply (const sf_keep_t *keep, const int64_t *times, size_t n,
                        bool *keep_out);

//  Ask node to delete image, made by job_id; request_id comes back in
//  ImageDeleted. Returns 0 if sent, or -1 with err set (e.g. SF_ENODE:
//  node down).
typedef int (sf_retention_delete_fn) (void *arg, const char *node,
                                      const sf_image_t *image, const char *job_id,
                                      const char *request_id, sf_err_t *err);

//  Create the class on store, whose migrations made the table; it reads
//  jobs and their images through jobs, a bulk's schedule and a schedule's
//  bulks through bulk, and the keep-* rules through schedules, and
//  forgets deleted images through jobs (all borrowed; they must outlive
//  the result). delete_fn (with arg) sends the deletions. Returns NULL
//  with err set (SF_EDB). Caller owns the result.
sf_retention_t *
    sf_retention_new (sf_store_t *store, sf_jobs_t *jobs, sf_bulk_t *bulk,
                      sf_schedules_t *schedules, sf_retention_delete_fn *delete_fn,
                      void *arg, sf_err_t *err);

//  Destroy the class. Nullifies *self_p.
void
    sf_retention_destroy (sf_retention_t **self_p);

//  The bulk bulk_id has ended (its last job finished). If it belongs to a
//  schedule with keep rules and has at least one job done, prune the
//  instances whose job is done. Also retries failed deletions. Returns the
//  number of deletions sent, or -1 with err set (database error). Logs
//  what it does.
int
    sf_retention_bulk_done (sf_retention_t *self, const char *bulk_id,
                            sf_err_t *err);

//  The answer to one of our ImageDelete requests, from node from. Returns
//  0 when applied, -1 with err set on a database error, or 1 with err set
//  (and nothing changed) when it is ignored: an unknown request id
//  (SF_ENOENT), a request asked of another node, or an answer naming
//  another image than the one asked for (SF_ESTATE).
int
    sf_retention_deleted (sf_retention_t *self, const char *from,
                          const sf_image_deleted_t *msg, sf_err_t *err);

//  Resend failed and unanswered deletions that are due at now_ms. Call it
//  now and then (every second is fine: it does nothing until one is due).
//  Returns the number sent, or -1 with err set.
int
    sf_retention_tick (sf_retention_t *self, int64_t now_ms, sf_err_t *err);

//  The deletions not yet confirmed, oldest first: [{"request_id","store",
//  "image_id","node","schedule","bulk_id","state","attempts","error"}]
//  (error null or {"code","text"}). Caller owns the result.
json_t *
    sf_retention_pending_json (sf_retention_t *self, sf_err_t *err);

//  Self test of this class
void
    sf_retention_test (bool verbose);

#endif
