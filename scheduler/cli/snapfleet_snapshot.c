/*  =========================================================================
    snapfleet_snapshot - the CLI's snapshot command: one instance makes one
    job; several make a bulk (with --wait: a progress bar or JSON event
    lines)

    The requests, the progress bar and the events come from sf_cli (pure
    functions, tested there); this file prints.
    =========================================================================
*/
#include "snapfleet_cmds.h"
#include "snapfleet_view.h"

#include <sys/ioctl.h>

//  Polling interval of snapshot --wait for a bulk
#define BULK_POLL_MS 300

#define s_str snapfleet_str
#define s_int snapfleet_int

//  --------------------------------------------------------------------------
//  One instance: one job

static int
s_snapshot_one (snapfleet_t *app, const snapfleet_opts_t *opts)
{
    const sf_cli_args_t *select = &opts->select;
    json_t *request = json_pack ("{s:s, s:s}", "cmd", "snapshot", "instance",
                                 select->instances [0]);
    if (select->strategy)
        json_object_set_new (request, "strategy", json_string (select->strategy));
    if (select->full)
        json_object_set_new (request, "full", json_integer (1));
    json_t *job = NULL;
    int rc = snapfleet_call_job (app, request, opts->wait, opts->wait_ms,
                                 !app->json && isatty (STDERR_FILENO), &job);
    json_decref (request);
    if (rc)
        return rc;
    if (app->json)
        snapfleet_print_json (job);
    else
    if (opts->wait)
        snapfleet_print_job (job);
    else
        printf ("job %s %s: snapshot of '%s' on node '%s' (%s)\n", s_str (job, "job_id"),
                s_str (job, "state"), s_str (job, "instance"), s_str (job, "node"),
                s_str (job, "strategy"));
    //  Waited for: anything but done (failed, cancelled, skipped) is a failure
    const char *state = s_str (job, "state");
    rc = streq (state, "failed") || (opts->wait && !streq (state, "done"))?
         SF_CLI_FAILED: SF_CLI_OK;
    if (rc)
        snapfleet_job_failure (job, s_str (json_object_get (job, "error"), "text"));
    json_decref (job);
    return rc;
}

//  --------------------------------------------------------------------------
//  Several instances: a bulk

typedef struct {
    bool tty;                   //  Draw the bar, else JSON lines
    int width;                  //  Terminal columns, 0 if unknown
} render_t;

static void
s_render (json_t *bulk, json_t *events, void *arg)
{
    render_t *render = (render_t *) arg;
    sf_cli_bulk_render (bulk, events, render->tty, render->width, stdout);
}

//  Exit status of a bulk: 1 if any job failed, was skipped or cancelled

static int
s_bulk_status (json_t *bulk)
{
    int64_t bad = s_int (bulk, "failed") + s_int (bulk, "skipped")
                + s_int (bulk, "cancelled");
    if (bad)
        fprintf (stderr, "snapfleet: bulk %s: %" PRId64 " of %" PRId64 " jobs failed, were "
                 "skipped or cancelled\n", s_str (bulk, "bulk_id"), bad, s_int (bulk, "total"));
    return bad? SF_CLI_FAILED: SF_CLI_OK;
}

static int
s_snapshot_bulk (snapfleet_t *app, const snapfleet_cmd_t *cmd, const snapfleet_opts_t *opts)
{
    json_t *request = snapfleet_select_request (cmd, "bulk_create", opts);
    if (!request)
        return SF_CLI_USAGE;
    json_t *reply = NULL;
    int rc = snapfleet_call (app, request, &reply);
    json_decref (request);
    if (rc)
        return rc;
    json_t *bulk = json_incref (json_object_get (reply, "bulk"));
    json_decref (reply);
    if (!json_is_object (bulk)) {
        fprintf (stderr, "snapfleet: invalid bulk_create reply from scheduler\n");
        json_decref (bulk);
        return SF_CLI_FAILED;
    }
    if (!opts->wait) {
        if (app->json)
            snapfleet_print_json (bulk);
        else
            snapfleet_print_bulk (bulk, false);
        rc = s_bulk_status (bulk);
        json_decref (bulk);
        return rc;
    }
    render_t render = { .tty = !app->json && isatty (STDOUT_FILENO) };
    struct winsize size;
    if (render.tty && ioctl (STDOUT_FILENO, TIOCGWINSZ, &size) == 0)
        render.width = size.ws_col;
    sf_err_t err = SF_ERR_INIT;
    rc = sf_cli_bulk_wait (app->cli, &bulk, BULK_POLL_MS, opts->wait_ms, s_render, &render,
                           &err);
    if (render.tty)
        printf ("\n");
    if (rc == SF_CLI_OK) {
        if (render.tty)
            snapfleet_print_bulk_summary (bulk);
        rc = s_bulk_status (bulk);
    }
    else
        fprintf (stderr, "snapfleet: %s\n", err.text);
    json_decref (bulk);
    return rc;
}

//  --------------------------------------------------------------------------
//  snapshot

static int
s_cmd_snapshot (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc))
        return rc;
    //  One instance and nothing only a bulk has: one job, as always
    const sf_cli_args_t *select = &opts.select;
    if (select->instance_count != 1 || select->node || select->all || select->tag
    ||  select->priority || select->deadline || select->window)
        return s_snapshot_bulk (app, cmd, &opts);
    return s_snapshot_one (app, &opts);
}

const snapfleet_cmd_t snapfleet_cmd_snapshot = {
    "snapshot",
    "snapshot (--instance NAME|UUID ... | --node N | --all | --tag KEY=VALUE)\n"
    "      [--strategy S] [--priority P] [--deadline TIME]\n"
    "      [--window DURATION] [--full] [--wait] [--timeout SECS]",
    "snapshot one instance, or many as a bulk",
    "Snapshot one instance, or a set of instances as one bulk. The scheduler picks\n"
    "each instance's strategy from its storage class and state, records a job and\n"
    "sends it to the instance's node when the fleet's limits allow.\n\n"
    "  storage class   running or paused   shut off\n"
    "  file            file-cold           offline\n"
    "  rbd             rbd                 offline\n"
    "  mixed           mixed               offline\n\n"
    "file-cold pauses the guest, converts its disks and resumes it. rbd freezes\n"
    "the guest's filesystems (or pauses it if no guest agent answers) just long\n"
    "enough to take an RBD snapshot of every disk, then clones or exports them.\n"
    "mixed covers RBD and file disks in one freeze or pause. offline converts\n"
    "(or snapshots) the disks of a shut-off guest directly. rbd and mixed need a\n"
    "worker with Ceph configured ([storage.rbd] in worker.conf).\n\n"
    "One --instance (and no --priority, --deadline or --window) makes one job:\n"
    "prints the new job, or with --wait the finished job. Anything else makes a\n"
    "bulk: one job per selected instance, ordered by priority, then deadline.\n"
    "An instance that cannot be snapshotted (node down, busy, no strategy) gets\n"
    "a job that fails at once with the reason. Prints the bulk; exit 1 if a job\n"
    "failed at once. With --wait, on a terminal: a progress bar redrawn in place\n"
    "  [#####...............] 12/40 done, 1 failed, 0 skipped  3.2 GiB  41.0 MiB/s  ETA 1m20s\n"
    "then a summary line and the failures; off a terminal, or with --format json:\n"
    "one JSON object per line: {\"event\":\"progress\",...} when a count changes,\n"
    "{\"event\":\"job\",...} when a job ends, {\"event\":\"done\",\"bulk\":{...}} at\n"
    "the end. Exit 0 if every job is done, 1 if any failed, was skipped or\n"
    "cancelled.\n\n"
    "Selectors (one kind):\n"
    "  --instance NAME|UUID  the instance; repeat for several; a name found on\n"
    "                        several nodes is refused, give the uuid then\n"
    "  --node N              every instance of node N\n"
    "  --all                 every instance the scheduler knows\n"
    "  --tag KEY=VALUE       every instance with that tag (<sf:tag> in the domain\n"
    "                        metadata)\n"
    "Options:\n"
    "  --strategy S          insist on strategy S (file-cold, rbd, mixed,\n"
    "                        offline): refused, with no job, if S does not fit\n"
    "                        the instance's storage class and state per the\n"
    "                        table above or its node's worker cannot run it\n"
    "  --priority P          bulk priority, an integer; higher goes first\n"
    "                        (default 0)\n"
    "  --deadline TIME       when the bulk should be over; jobs predicted to\n"
    "                        end later are reported late. TIME: +30m, +2h (from\n"
    "                        now), 2026-11-25T22:00[:SS] (local time; UTC with a\n"
    "                        trailing Z), 22:00 (today, or tomorrow if past) or\n"
    "                        epoch seconds\n"
    "  --window DURATION     the jobs must end within DURATION from now (90m,\n"
    "                        2h); a job whose estimate overruns it does not\n"
    "                        start and is recorded as skipped with the reason\n"
    "  --full                a full copy: file-live runs are otherwise\n"
    "                        incremental on the instance's previous point\n"
    "                        where it allows (see 'images': PARENT)\n"
    "  --wait                wait until the job or every job of the bulk ended\n"
    "                        and print it; exit 1 if any failed or was skipped\n"
    "  --timeout SECS        with --wait: give up after SECS seconds (or a\n"
    "                        duration: 90s, 2h) with exit 75 (the jobs go on);\n"
    "                        default: no limit. Each request to the scheduler\n"
    "                        waits as long as the global --timeout (before the\n"
    "                        command; default 5)\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_HELP, "fthinwsagpdWU", s_cmd_snapshot
};
