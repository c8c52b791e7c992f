/*  =========================================================================
    snapfleet_gc - the CLI's gc command: the reconciler, on demand
    =========================================================================
*/
#include "snapfleet_cmds.h"

#define GC_POLL_MS  250

//  A string a node sent, escaped for the terminal (as sf_table does);
//  caller frees it

static char *
s_safe (json_t *object, const char *key)
{
    return sf_log_escape_dup (snapfleet_str (object, key));
}

//  One holding as a table row

static void
s_row (sf_table_t *table, const char *node, json_t *item, const char *status)
{
    char size [32];
    sf_table_add (table, node);
    sf_table_add (table, snapfleet_str (item, "kind"));
    sf_table_add (table, snapfleet_str (item, "name"));
    sf_table_add (table, snapfleet_str (item, "job_id"));
    sf_table_add (table, snapfleet_size (item, "bytes", size, sizeof (size)));
    sf_table_add (table, snapfleet_str (item, "reason"));
    sf_table_add (table, status);
}

//  What a run found, per node: the orphans (and what became of them), the
//  nodes that did not answer, the catalogue entries found missing

static void
s_print (json_t *run)
{
    bool dry = json_is_true (json_object_get (run, "dry_run"));
    char *run_id = s_safe (run, "id");
    printf ("gc run %s%s\n", run_id, dry ? " (dry run: nothing removed)" : "");
    free (run_id);
    sf_table_t *table = sf_table_new ("NODE|KIND|NAME|JOB|>BYTES|REASON|STATUS");
    size_t index, at;
    json_t *node, *item;
    json_array_foreach (json_object_get (run, "nodes"), index, node) {
        const char *name = snapfleet_str (node, "node");
        json_array_foreach (json_object_get (node, "orphans"), at, item) {
            const char *status = dry ? "would remove" : "not asked";
            json_t *done;
            size_t k;
            json_array_foreach (json_object_get (node, "removed"), k, done)
                if (streq (snapfleet_str (done, "name"), snapfleet_str (item, "name")))
                    status = "removed";
            json_array_foreach (json_object_get (node, "failed"), k, done)
                if (streq (snapfleet_str (done, "name"), snapfleet_str (item, "name")))
                    status = snapfleet_str (done, "error");
            s_row (table, name, item, status);
        }
    }
    if (sf_table_rows (table))
        sf_table_print (table, stdout);
    else
        printf ("no orphans\n");
    sf_table_destroy (&table);
    json_array_foreach (json_object_get (run, "nodes"), index, node) {
        char *name = s_safe (node, "node"), *state = s_safe (node, "state");
        char *note = s_safe (node, "note");
        if (!streq (state, "done"))
            printf ("node %s: %s%s%s\n", name, state, *note ? ": " : "", note);
        else
        if (*note)
            printf ("node %s: listing incomplete: %s\n", name, note);
        json_array_foreach (json_object_get (node, "missing"), at, item) {
            char *store = s_safe (item, "store"), *id = s_safe (item, "id");
            char *job = s_safe (item, "job_id");
            printf ("node %s: catalogued image %s/%s of job %s is missing (marked)\n", name,
                    store, id, job);
            free (store);
            free (id);
            free (job);
        }
        free (name);
        free (state);
        free (note);
    }
}

static int
s_cmd_gc (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, 0, &opts, &rc))
        return rc;
    sf_err_t err = SF_ERR_INIT;
    json_t *request;
    if (opts.show) {
        if (opts.dry_run || opts.select.node)
            return snapfleet_usage_error (cmd, "'--show' takes no other option");
        request = json_pack ("{s:s, s:s}", "cmd", "gc_show", "run", opts.show);
    }
    else
    if (!(request = sf_cli_gc_request (opts.dry_run, opts.select.node, &err)))
        return snapfleet_usage_error (cmd, "%s", err.text);
    json_t *reply = NULL;
    rc = snapfleet_call (app, request, &reply);
    json_decref (request);
    if (rc)
        return rc;
    json_t *run = json_incref (json_object_get (reply, "gc"));
    json_decref (reply);
    if (!json_is_object (run)) {
        fprintf (stderr, "snapfleet: invalid gc reply from scheduler\n");
        json_decref (run);
        return SF_CLI_FAILED;
    }
    rc = sf_cli_gc_wait (app->cli, &run, GC_POLL_MS, 0, &err);
    if (rc == SF_CLI_OK) {
        if (app->json)
            snapfleet_print_json (run);
        else
            s_print (run);
        rc = sf_cli_gc_status (run);
    }
    else
        fprintf (stderr, "snapfleet: %s\n", err.text);
    json_decref (run);
    return rc;
}

const snapfleet_cmd_t snapfleet_cmd_gc = {
    "gc", "gc [--dry-run] [--node N] | gc --show RUN",
    "remove what no live job or catalogued image owns",
    "Ask every connected node (or node N) what snapfleet made there for this\n"
    "catalogue: image-store entries and incomplete ones, scratch directories,\n"
    "RBD snapshots and clones. Whatever no queued or running job and no\n"
    "catalogued image owns, and is older than [gc] grace, is an orphan; gc\n"
    "removes the orphans through the nodes' scoped deletions and reports what\n"
    "went and what failed. Catalogued images whose file a node no longer has\n"
    "are marked missing (see 'images'), never deleted from the catalogue.\n"
    "It waits until every node answered or the scheduler's [gc] timeout\n"
    "passed (a node that did not answer is reported, and nothing of it goes).\n"
    "Exit status 0 if every node answered and nothing failed to go, else 1.\n\n"
    "  --dry-run             list what would go and why; remove nothing\n"
    "  --node N              only node N\n"
    "  --show RUN            show run RUN again (the last 16 are kept)\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fthnRS", s_cmd_gc
};
