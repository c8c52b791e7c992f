/*  =========================================================================
    snapfleet_schedule - the CLI's schedule commands: schedule add, list, rm
    =========================================================================
*/
#include "snapfleet_cmds.h"

#define s_str snapfleet_str
#define s_int snapfleet_int

//  A schedule's selector for people: "all", "node=n1", "tag=tier=gold",
//  "instances=web1,web2"

static void
s_cell_select (sf_table_t *table, json_t *schedule, const char *key)
{
    json_t *select = json_object_get (schedule, key);
    if (json_is_true (json_object_get (select, "all")))
        sf_table_add (table, "all");
    else
    if (json_is_string (json_object_get (select, "node")))
        sf_table_addf (table, "node=%s", s_str (select, "node"));
    else
    if (json_is_string (json_object_get (select, "tag")))
        sf_table_addf (table, "tag=%s", s_str (select, "tag"));
    else {
        char *text = strdup ("instances=");
        size_t index;
        json_t *name;
        json_array_foreach (json_object_get (select, "instances"), index, name) {
            char *longer = zsys_sprintf ("%s%s%s", text, index? ",": "",
                                         json_string_value (name)? json_string_value (name): "");
            free (text);
            text = longer;
        }
        sf_table_add (table, text);
        free (text);
    }
}

//  "last=3 daily=7", or "-" if nothing is pruned

static void
s_cell_keep (sf_table_t *table, json_t *schedule, const char *key)
{
    json_t *keep = json_object_get (schedule, key);
    static const char *rules [] = { "last", "daily", "weekly", "monthly", NULL };
    char text [128] = "";
    size_t used = 0;
    for (const char **rule = rules; *rule; rule++)
        if (json_integer_value (json_object_get (keep, *rule)) > 0)
            used += snprintf (text + used, sizeof (text) - used, "%s%s=%" PRId64,
                              used? " ": "", *rule, s_int (keep, *rule));
    sf_table_add (table, text);
}

//  "1h 30m", or "-" if the runs have no window

static void
s_cell_window (sf_table_t *table, json_t *schedule, const char *key)
{
    char window [32];
    sf_table_add (table, json_integer_value (json_object_get (schedule, key))
                  ? snapfleet_ms (schedule, key, window, sizeof (window)): "-");
}

static const snapfleet_column_t s_columns [] = {
    { "NAME", "name", snapfleet_cell_str },
    { "CALENDAR", "calendar", snapfleet_cell_str },
    { "SELECT", "select", s_cell_select },
    { "STRATEGY", "strategy", snapfleet_cell_str },
    { ">PRIORITY", "priority", snapfleet_cell_int },
    { ">WINDOW", "window_ms", s_cell_window },
    { "KEEP", "keep", s_cell_keep },
    { ">VERIFY", "verify", snapfleet_cell_int },
    { "NEXT RUN", "next_run", snapfleet_cell_when },
    { "LAST RUN", "last_run", snapfleet_cell_when },
    { "LAST BULK", "last_bulk", snapfleet_cell_str },
    { NULL }
};

static int
s_schedule_add (snapfleet_t *app, const snapfleet_cmd_t *cmd, const char *name,
                const snapfleet_opts_t *opts)
{
    if (!opts->calendar)
        return snapfleet_usage_error (cmd, "'schedule add' needs --calendar EXPR");
    if (!sf_name_is_safe (name))
        return snapfleet_usage_error (cmd, "schedule name '%s' must be 1 to 128 letters, "
                                      "digits, '.', '_', ':' or '-', not starting with '.' "
                                      "or '-'", name);
    char *end = NULL;
    long sample = opts->verify_sample? strtol (opts->verify_sample, &end, 10): 0;
    if (opts->verify_sample && (!*opts->verify_sample || *end || sample < 0 || sample > 100))
        return snapfleet_usage_error (cmd, "--verify must be an integer from 0 to 100, not "
                                      "'%s'", opts->verify_sample);
    json_t *request = snapfleet_select_request (cmd, "schedule_add", opts);
    if (!request)
        return SF_CLI_USAGE;
    if (opts->verify_sample)
        json_object_set_new (request, "verify", json_integer (sample));
    json_object_set_new (request, "name", json_string (name));
    json_object_set_new (request, "calendar", json_string (opts->calendar));
    json_t *reply = NULL;
    int rc = snapfleet_call (app, request, &reply);
    json_decref (request);
    if (rc)
        return rc;
    json_t *schedule = json_object_get (reply, "schedule");
    if (app->json)
        snapfleet_print_json (schedule);
    else {
        char next [32];
        printf ("schedule %s added: '%s' (%s), next run %s\n", s_str (schedule, "name"),
                s_str (schedule, "calendar"), s_str (schedule, "normalized"),
                snapfleet_when (schedule, "next_run", next, sizeof (next)));
    }
    json_decref (reply);
    return SF_CLI_OK;
}

static int
s_cmd_schedule (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv)
{
    snapfleet_opts_t opts;
    json_t *reply = NULL;
    int rc;
    if (snapfleet_start (app, cmd, argc, argv, -1, &opts, &rc))
        return rc;
    int count = argc - opts.first;
    const char *verb = count? argv [opts.first]: "";
    const char *name = count > 1? argv [opts.first + 1]: NULL;
    bool selected = opts.select.instance_count || opts.select.node || opts.select.all
                 || opts.select.tag || opts.select.strategy || opts.select.priority
                 || opts.select.window || opts.calendar || opts.select.keep [0]
                 || opts.select.keep [1] || opts.select.keep [2] || opts.select.keep [3]
                 || opts.verify_sample;
    if (streq (verb, "add")) {
        if (count != 2)
            return snapfleet_usage_error (cmd, "'schedule add' takes one schedule name");
        return s_schedule_add (app, cmd, name, &opts);
    }
    if (!streq (verb, "list") && !streq (verb, "rm"))
        return snapfleet_usage_error (cmd, "'schedule' needs a subcommand: add, list or rm");
    if (selected)
        return snapfleet_usage_error (cmd, "'schedule %s' takes no selector or schedule "
                                      "option", verb);
    if (streq (verb, "list")) {
        if (count != 1)
            return snapfleet_usage_error (cmd, "'schedule list' takes no arguments");
        return snapfleet_list (app, "schedule_list", NULL, NULL, "schedules", s_columns);
    }
    if (count != 2)
        return snapfleet_usage_error (cmd, "'schedule rm' takes one schedule name");
    if ((rc = snapfleet_request (app, "schedule_rm", "name", name, &reply)))
        return rc;
    if (app->json)
        snapfleet_print_payload (reply, "removed");
    else
        printf ("schedule %s removed\n", s_str (reply, "removed"));
    json_decref (reply);
    return SF_CLI_OK;
}

const snapfleet_cmd_t snapfleet_cmd_schedule = {
    "schedule",
    "schedule (add NAME --calendar EXPR SELECTOR [OPTIONS] | list | rm NAME)",
    "add, list or remove scheduled bulk snapshots",
    "Schedules make a bulk of the selected instances at each time the calendar\n"
    "expression names, then prune their images by the keep-* rules.\n\n"
    "  schedule add NAME --calendar EXPR SELECTOR [--strategy S] [--priority P]\n"
    "      [--window DURATION] [--keep-last N] [--keep-daily N] [--keep-weekly N]\n"
    "      [--keep-monthly N] [--verify N]\n"
    "                        add a schedule (NAME: letters, digits, . _ : -)\n"
    "  schedule list         list schedules with their next and last runs\n"
    "  schedule rm NAME      remove a schedule (its images stay)\n\n"
    "  --calendar EXPR       when to run, in systemd's OnCalendar syntax (see\n"
    "                        systemd.time(7)): 'daily', 'Mon..Fri 22:00',\n"
    "                        '*-*-* 02:30:00', 'Sat *-*-1..7 03:00'. A run\n"
    "                        missed while the scheduler was down is made up\n"
    "                        once when it starts again\n"
    "  SELECTOR              the instances, as for 'snapshot': --instance\n"
    "                        NAME|UUID (repeatable), --node N, --all or\n"
    "                        --tag KEY=VALUE\n"
    "  --strategy S, --priority P   as for 'snapshot'\n"
    "  --window DURATION     each run's jobs must end within DURATION of its\n"
    "                        start; jobs that would overrun are skipped\n"
    "  --keep-last N         keep the images of the last N successful runs\n"
    "  --keep-daily N        ... the last run of each of the last N days\n"
    "  --keep-weekly N       ... the last run of each of the last N weeks\n"
    "  --keep-monthly N      ... the last run of each of the last N months\n"
    "                        (an image any rule keeps stays; no keep-* option:\n"
    "                        nothing is pruned)\n"
    "  --verify N            after each run, verify N of its images picked at\n"
    "                        random (as 'snapfleet verify', no boot; 0..100)\n"
    SNAPFLEET_HELP_FORMAT SNAPFLEET_HELP_TIMEOUT SNAPFLEET_HELP_HELP, "fthinsagpWcLDKMV",
    s_cmd_schedule
};
