/*  =========================================================================
    snapfleet_view - one job or one bulk as a table for people
    =========================================================================
*/
#include "snapfleet_view.h"

#define s_str snapfleet_str
#define s_int snapfleet_int
#define s_size snapfleet_size
#define s_ms snapfleet_duration

//  --------------------------------------------------------------------------
//  A job

//  Print "label  text" with text escaped (sf_log_escape): names and error
//  texts come from peers and must not drive the terminal

static void
s_print_escaped (const char *label, const char *text)
{
    char *escaped = sf_log_escape_dup (text);
    printf ("%-13s%s\n", label, escaped);
    free (escaped);
}

static void
s_print_job_fields (json_t *job)
{
    char buf [4][32];
    json_t *error = json_object_get (job, "error");
    printf ("job          %s\n", s_str (job, "job_id"));
    char *instance = zsys_sprintf ("%s (%s)", s_str (job, "instance"),
                                   s_str (job, "instance_uuid"));
    s_print_escaped ("instance", instance);
    zstr_free (&instance);
    s_print_escaped ("node", s_str (job, "node"));
    printf ("state        %s\n", s_str (job, "state"));
    printf ("phase        %s\n", s_str (job, "phase"));
    printf ("attempt      %" PRId64 "\n", s_int (job, "attempt"));
    printf ("strategy     %s\n", s_str (job, "strategy"));
    printf ("consistency  %s\n", *s_str (job, "consistency")? s_str (job, "consistency"): "-");
    printf ("method       %s\n", *s_str (job, "method")? s_str (job, "method"): "-");
    printf ("pause        %s\n", s_ms (job, "pause_ms", buf [0], sizeof (buf [0])));
    printf ("convert      %s\n", s_ms (job, "convert_ms", buf [1], sizeof (buf [1])));
    printf ("upload       %s\n", s_ms (job, "upload_ms", buf [2], sizeof (buf [2])));
    printf ("size         %s\n", s_size (job, "bytes", buf [3], sizeof (buf [3])));
    printf ("created      %s\n", s_str (job, "created"));
    printf ("updated      %s\n", s_str (job, "updated"));
    if (json_is_object (error)) {
        char *text = zsys_sprintf ("%s: %s", sf_err_name ((int) s_int (error, "code")),
                                   s_str (error, "text"));
        s_print_escaped ("error", text);
        zstr_free (&text);
    }
    if (json_is_string (json_object_get (job, "note")))
        s_print_escaped ("note", s_str (job, "note"));
    if (json_is_string (json_object_get (job, "full_reason")))
        s_print_escaped ("full copy", s_str (job, "full_reason"));
    json_t *restore = json_object_get (job, "restore");
    if (json_is_object (restore) && json_object_get (restore, "image_id")) {
        char *text = zsys_sprintf ("image %s (%s) to %s as %s%s%s%s", s_str (restore, "image_id"),
                                   s_str (restore, "image_store"),
                                   *s_str (restore, "target")? s_str (restore, "target")
                                                             : "(beside the original's disk)",
                                   s_str (restore, "format"),
                                   json_is_true (json_object_get (restore, "flatten"))
                                   ? ", flattened": "",
                                   *s_str (restore, "as_domain")? ", domain ": "",
                                   s_str (restore, "as_domain"));
        s_print_escaped ("restore", text);
        zstr_free (&text);
    }
    json_t *verify = json_object_get (job, "verify");
    if (json_is_object (verify) && json_object_get (verify, "image_id")) {
        json_t *ok = json_object_get (verify, "ok");
        char *text = zsys_sprintf ("image %s (%s)%s: %s%s%s", s_str (verify, "image_id"),
                                   s_str (verify, "image_store"),
                                   json_is_true (json_object_get (verify, "boot"))
                                   ? " with a boot": "",
                                   json_is_null (ok)? "not ended"
                                   : json_is_true (ok)? "passed": "FAILED",
                                   *s_str (verify, "text")? "; ": "", s_str (verify, "text"));
        s_print_escaped ("verify", text);
        zstr_free (&text);
    }
}

void
snapfleet_print_job (json_t *job)
{
    s_print_job_fields (job);
    size_t index;
    json_t *item;
    sf_table_t *table = sf_table_new ("PHASE|>MS|>SIZE|AT|DETAIL");
    json_array_foreach (json_object_get (job, "events"), index, item) {
        char size [32];
        sf_table_add (table, s_str (item, "phase"));
        sf_table_addf (table, "%" PRId64, s_int (item, "ms"));
        sf_table_add (table, s_size (item, "bytes", size, sizeof (size)));
        sf_table_add (table, s_str (item, "at"));
        sf_table_add (table, s_str (item, "text"));
    }
    if (sf_table_rows (table)) {
        printf ("\n");
        sf_table_print (table, stdout);
    }
    sf_table_destroy (&table);
    //  Every attempt that ended (a retried job has several)
    table = sf_table_new ("ATTEMPT|NODE|STARTED|ENDED|ERROR");
    json_array_foreach (json_object_get (job, "attempts"), index, item) {
        json_t *error = json_object_get (item, "error");
        sf_table_addf (table, "%" PRId64, s_int (item, "attempt"));
        sf_table_add (table, s_str (item, "node"));
        sf_table_add (table, json_is_string (json_object_get (item, "started"))
                             ? s_str (item, "started"): "-");
        sf_table_add (table, s_str (item, "ended"));
        if (json_is_object (error)) {
            char *text = zsys_sprintf ("%s: %s", s_str (error, "name"), s_str (error, "text"));
            sf_table_add (table, text);
            zstr_free (&text);
        }
        else
            sf_table_add (table, "-");
    }
    if (json_array_size (json_object_get (job, "attempts")) > 1) {
        printf ("\n");
        sf_table_print (table, stdout);
    }
    sf_table_destroy (&table);
    table = sf_table_new ("IMAGE|DISK|>SIZE|PARENT|SHA256|PATH");
    json_array_foreach (json_object_get (job, "images"), index, item) {
        char size [32];
        sf_table_add (table, s_str (item, "id"));
        sf_table_add (table, s_str (item, "disk_target"));
        sf_table_add (table, s_size (item, "size", size, sizeof (size)));
        sf_table_add (table, json_is_string (json_object_get (item, "parent"))
                             ? s_str (item, "parent"): "-");
        sf_table_add (table, s_str (item, "sha256"));
        sf_table_add (table, s_str (item, "path"));
    }
    if (sf_table_rows (table)) {
        printf ("\n");
        sf_table_print (table, stdout);
    }
    sf_table_destroy (&table);
}

//  --------------------------------------------------------------------------
//  A bulk

//  "12 done, 1 failed, 0 skipped, 3 running, 24 queued" (", 2 cancelled"
//  after skipped if any were)

static void
s_print_counts (json_t *bulk, FILE *out)
{
    fprintf (out, "%" PRId64 " done, %" PRId64 " failed, %" PRId64 " skipped, ",
             s_int (bulk, "done"), s_int (bulk, "failed"), s_int (bulk, "skipped"));
    if (s_int (bulk, "cancelled"))
        fprintf (out, "%" PRId64 " cancelled, ", s_int (bulk, "cancelled"));
    fprintf (out, "%" PRId64 " running, %" PRId64 " queued", s_int (bulk, "running"),
             s_int (bulk, "queued"));
}

//  The failed and skipped jobs with their reasons; all jobs with all_jobs

static void
s_print_bulk_jobs (json_t *bulk, bool all_jobs)
{
    sf_table_t *table = all_jobs
        ? sf_table_new ("JOB|INSTANCE|NODE|STATE|PHASE|STRATEGY|>SIZE|ERROR")
        : sf_table_new ("JOB|INSTANCE|NODE|STATE|ERROR");
    json_t *jobs = json_object_get (bulk, all_jobs? "jobs": "failures");
    size_t index;
    json_t *job;
    json_array_foreach (jobs, index, job) {
        json_t *error = json_object_get (job, "error");
        char size [32];
        sf_table_add (table, s_str (job, "job_id"));
        sf_table_add (table, s_str (job, "instance"));
        sf_table_add (table, s_str (job, "node"));
        sf_table_add (table, s_str (job, "state"));
        if (all_jobs) {
            sf_table_add (table, s_str (job, "phase"));
            sf_table_add (table, s_str (job, "strategy"));
            sf_table_add (table, s_size (job, "bytes", size, sizeof (size)));
        }
        if (json_is_object (error))
            sf_table_addf (table, "%s: %s", sf_err_name ((int) s_int (error, "code")),
                           s_str (error, "text"));
        else
            sf_table_add (table, json_string_value (error));
    }
    if (sf_table_rows (table)) {
        printf ("\n");
        sf_table_print (table, stdout);
    }
    sf_table_destroy (&table);
}

void
snapfleet_print_bulk (json_t *bulk, bool all_jobs)
{
    char buf [4][32];
    printf ("bulk         %s\n", s_str (bulk, "bulk_id"));
    printf ("state        %s\n", s_str (bulk, "state"));
    printf ("schedule     %s\n", *s_str (bulk, "schedule")? s_str (bulk, "schedule"): "-");
    printf ("created      %s\n", snapfleet_when (bulk, "created", buf [0], sizeof (buf [0])));
    printf ("priority     %" PRId64 "\n", s_int (bulk, "priority"));
    printf ("deadline     %s\n", snapfleet_when (bulk, "deadline", buf [0], sizeof (buf [0])));
    printf ("window end   %s\n", snapfleet_when (bulk, "window_end", buf [0],
                                                 sizeof (buf [0])));
    printf ("jobs         %" PRId64 ": ", s_int (bulk, "total"));
    s_print_counts (bulk, stdout);
    printf ("\nsize         %s of about %s\n",
            s_size (bulk, "bytes", buf [0], sizeof (buf [0])),
            s_size (bulk, "bytes_total", buf [1], sizeof (buf [1])));
    printf ("throughput   %s/s\n", s_size (bulk, "throughput_bps", buf [0], sizeof (buf [0])));
    printf ("eta          %s\n", snapfleet_ms (bulk, "eta_ms", buf [0], sizeof (buf [0])));
    printf ("started      %s\n", snapfleet_when (bulk, "started", buf [0], sizeof (buf [0])));
    printf ("finished     %s\n", snapfleet_when (bulk, "finished", buf [0], sizeof (buf [0])));
    s_print_bulk_jobs (bulk, all_jobs);
}

void
snapfleet_print_bulk_summary (json_t *bulk)
{
    char bytes [32], rate [32], took [32] = "";
    json_t *started = json_object_get (bulk, "started");
    json_t *finished = json_object_get (bulk, "finished");
    if (json_is_integer (started) && json_is_integer (finished)) {
        strcpy (took, " in ");
        sf_table_duration (json_integer_value (finished) - json_integer_value (started),
                           took + 4, sizeof (took) - 4);
    }
    char cancelled [48] = "";
    if (s_int (bulk, "cancelled"))
        snprintf (cancelled, sizeof (cancelled), ", %" PRId64 " cancelled",
                  s_int (bulk, "cancelled"));
    printf ("bulk %s %s: %" PRId64 " of %" PRId64 " done, %" PRId64 " failed, %" PRId64
            " skipped%s; %s%s (%s/s)\n", s_str (bulk, "bulk_id"), s_str (bulk, "state"),
            s_int (bulk, "done"), s_int (bulk, "total"), s_int (bulk, "failed"),
            s_int (bulk, "skipped"), cancelled, s_size (bulk, "bytes", bytes, sizeof (bytes)),
            took, s_size (bulk, "throughput_bps", rate, sizeof (rate)));
    s_print_bulk_jobs (bulk, false);
}
