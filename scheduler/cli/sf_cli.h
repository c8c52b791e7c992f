/*  =========================================================================
    sf_cli - the CLI's connection to the scheduler's admin endpoint

    A DEALER socket with bounded waits: a request that gets no answer in
    time means the scheduler is unreachable (ZeroMQ would otherwise queue
    it forever). Requests carry an id and stale replies are skipped, so
    the connection can be reused, e.g. to poll a job for --wait.
    =========================================================================
*/
#ifndef SF_CLI_H_INCLUDED
#define SF_CLI_H_INCLUDED

#include <jansson.h>

typedef struct _sf_cli_t sf_cli_t;

//  Exit statuses of the CLI (sysexits.h names where they fit)
#define SF_CLI_OK           0
#define SF_CLI_FAILED       1       //  The operation failed
#define SF_CLI_USAGE        2
#define SF_CLI_PARTIAL      3       //  Some of the items failed (cancel)
#define SF_CLI_UNAVAILABLE  69      //  EX_UNAVAILABLE: scheduler unreachable
#define SF_CLI_TEMPFAIL     75      //  EX_TEMPFAIL: --wait timed out

//  Connect to endpoint; each request waits at most timeout_ms for its
//  answer. With cert (our key pair) and server (the scheduler's public
//  key, pinned), both borrowed for the call, over CURVE; with both NULL,
//  plaintext. Returns NULL with err set (SF_EINVAL) if the endpoint is not
//  a valid ZeroMQ endpoint. Caller owns the result.
sf_cli_t *
    sf_cli_new (const char *endpoint, zcert_t *cert, zcert_t *server, int timeout_ms,
                sf_err_t *err);

//  Close the connection. Nullifies *self_p.
void
    sf_cli_destroy (sf_cli_t **self_p);

//  Send request (not consumed) and wait for its reply. Returns an exit
//  status: SF_CLI_OK with *reply_p set to the reply object (caller owns
//  it), SF_CLI_FAILED with err set to the scheduler's error (code and
//  text) or SF_EPROTO for a reply that is not valid, or
//  SF_CLI_UNAVAILABLE with err set (SF_ETIMEDOUT) if no answer came.
int
    sf_cli_call (sf_cli_t *self, json_t *request, json_t **reply_p,
                 sf_err_t *err);

//  --------------------------------------------------------------------------
//  Bulk snapshots, plans and schedules: the requests the CLI builds and the
//  progress it shows. Pure functions, so that the self test covers them.

//  Selectors and options as given on the command line; strings are
//  borrowed, NULL when not given.
typedef struct {
    const char **instances;     //  --instance, repeatable
    size_t instance_count;
    const char *node;           //  --node N
    bool all;                   //  --all
    const char *tag;            //  --tag KEY=VALUE
    const char *strategy;       //  --strategy S
    const char *priority;       //  --priority P (integer)
    const char *deadline;       //  --deadline TIME
    const char *window;         //  --window DURATION
    const char *keep [4];       //  --keep-last, -daily, -weekly, -monthly N
    bool full;                  //  --full: no incremental copy
} sf_cli_args_t;

//  Parse a point in time given to --deadline, relative to now_ms (epoch
//  ms): "+30m" (any duration sf_parse_duration_ms reads), local time
//  "YYYY-MM-DDTHH:MM[:SS]" (UTC with a trailing 'Z'; a space may replace
//  the 'T'), "HH:MM" (today, or tomorrow if that is not in the future), or
//  epoch seconds. Returns 0 and sets *epoch_ms, or -1 if malformed.
int
    sf_cli_parse_time (const char *text, int64_t now_ms, int64_t *epoch_ms);

//  Build {"cmd": cmd, "select": SELECT, "strategy", "priority",
//  "deadline" (epoch ms), "window" (ms), "keep_last", ...} from args; only
//  what was given is sent. Exactly one kind of selector must be given
//  (any number of --instance, or one of --node, --all, --tag). Returns the
//  request (caller owns it), or NULL with err set (SF_EINVAL, a message
//  for the user naming the option) on bad input.
json_t *
    sf_cli_select_request (const char *cmd, const sf_cli_args_t *args,
                           int64_t now_ms, sf_err_t *err);

//  True if the bulk (a BULK object of the admin protocol) has no job left
//  to run.
bool
    sf_cli_bulk_finished (json_t *bulk);

//  Render the bulk's progress on one line into buf, e.g.
//  "[#####...............] 12/40 done, 1 failed, 0 skipped  3.2 GiB
//  41.0 MiB/s  ETA 1m20s" (no newline). Returns buf.
char *
    sf_cli_bulk_bar (json_t *bulk, char *buf, size_t size);

//  The events between two views of the same bulk (before is NULL for the
//  first view): one {"event":"job",...} per job that ended since before,
//  then {"event":"progress",...} if a count changed, then
//  {"event":"done","bulk":after} if after is finished. Returns a JSON
//  array (caller owns it), possibly empty.
json_t *
    sf_cli_bulk_events (json_t *before, json_t *after);

//  Write a view of the bulk to out: on a terminal (tty) the progress bar,
//  redrawn in place ("\r", at most width columns, 0 = no limit); else
//  each of events as one compact JSON object per line. Flushes out.
void
    sf_cli_bulk_render (json_t *bulk, json_t *events, bool tty, int width, FILE *out);

//  Called with each view of a bulk and the events since the view before
typedef void (sf_cli_bulk_fn) (json_t *bulk, json_t *events, void *arg);

//  Poll the bulk *bulk_p (its first view, which the caller owns) with
//  bulk_show every poll_ms until it is finished, or wait_ms passed (0 = no
//  limit); calls fn (if not NULL) for every view, the first included.
//  *bulk_p is replaced by each new view. Returns SF_CLI_OK when finished,
//  SF_CLI_TEMPFAIL with err set when wait_ms passed, or the failed call's
//  status with err set.
int
    sf_cli_bulk_wait (sf_cli_t *self, json_t **bulk_p, int poll_ms, int wait_ms,
                      sf_cli_bulk_fn *fn, void *arg, sf_err_t *err);

//  Most job ids one cancel takes (the scheduler's limit too)
#define SF_CLI_CANCEL_MAX 1000

//  The request of 'cancel': {"cmd":"cancel","job_ids":[ids]} for count ids,
//  or {"cmd":"cancel","bulk_id":bulk_id}; NULL with err set (SF_EINVAL)
//  for neither, both, an empty id or more than SF_CLI_CANCEL_MAX. Caller
//  owns the result.
json_t *
    sf_cli_cancel_request (const char **ids, size_t count, const char *bulk_id,
                           sf_err_t *err);

//  The exit status of a cancel's answers (its "cancel" array): SF_CLI_OK if
//  none was refused, SF_CLI_FAILED if all were, else SF_CLI_PARTIAL.
int
    sf_cli_cancel_status (json_t *answers);
//  --------------------------------------------------------------------------
//  The reconciler (snapfleet gc): the request, and waiting for the run

//  Build {"cmd":"gc", ["dry_run":1,] ["node":NODE]}. Returns it (caller
//  owns it), or NULL with err (SF_EINVAL naming --node) if node is not a
//  safe node name.
json_t *
    sf_cli_gc_request (bool dry_run, const char *node, sf_err_t *err);

//  True if the run (a GC object of the admin protocol) is done: every
//  node answered, failed or timed out.
bool
    sf_cli_gc_finished (json_t *run);

//  Poll the run *run_p (its first view, which the caller owns) with
//  gc_show every poll_ms until it is done or wait_ms passed (0 = no
//  limit); *run_p is replaced by each new view. Returns SF_CLI_OK when
//  done, SF_CLI_TEMPFAIL with err set when wait_ms passed, or the failed
//  call's status with err set.
int
    sf_cli_gc_wait (sf_cli_t *self, json_t **run_p, int poll_ms, int wait_ms, sf_err_t *err);

//  The exit status a finished run deserves: SF_CLI_OK if every node
//  answered and nothing failed to go, else SF_CLI_FAILED.
int
    sf_cli_gc_status (json_t *run);

//  Self test of this class
void
    sf_cli_test (bool verbose);

#endif
