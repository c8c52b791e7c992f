/*  =========================================================================
    snapfleet_opts - what the CLI's commands share: the command type, option
    parsing, requests to the scheduler, field access and printing helpers

    Every snapfleet_<noun>.c includes this header and calls down into it
    (and into snapfleet_view, sf_cli and sf_table), never up into
    snapfleet.c or across into another noun.
    =========================================================================
*/
#ifndef SNAPFLEET_OPTS_H_INCLUDED
#define SNAPFLEET_OPTS_H_INCLUDED

#include "sf_core.h"
#include "sf_cli.h"
#include "sf_table.h"

#include <getopt.h>
#include <jansson.h>

//  The global usage lines, for 'snapfleet --help' and global usage errors
#define SNAPFLEET_USAGE \
    "usage: snapfleet [--admin ENDPOINT] [--format table|json] [--timeout SECS]\n" \
    "                 [--cert PATH] [--server-key PATH] [--insecure] COMMAND [ARGS]\n"

//  Lines of the commands' --help texts that many commands share
#define SNAPFLEET_HELP_FORMAT \
    "  --format FORMAT       'table' (default) or 'json'\n"
#define SNAPFLEET_HELP_TIMEOUT \
    "  --timeout SECS        how long to wait for the scheduler's answer (default 5)\n"
#define SNAPFLEET_HELP_HELP \
    "  -h, --help            show this help\n"

//  State shared by all commands
typedef struct {
    const char *admin;          //  Borrowed from argv or the environment
    const char *cert;           //  Our key pair (--cert, $SNAPFLEET_CERT), borrowed
    const char *server_key;     //  The scheduler's public key, pinned (borrowed)
    bool insecure;              //  Plaintext (--insecure, $SNAPFLEET_INSECURE=1)
    bool json;                  //  --format json
    int timeout_ms;             //  Per-request timeout
    sf_cli_t *cli;              //  Owned, connected on first use
    const char **slots;         //  Owned: room for every --instance (argc)
} snapfleet_t;

typedef struct _snapfleet_cmd_t snapfleet_cmd_t;

//  A command: its name, its help, the options it takes, and the function
//  that runs it with argv [0] = the command name. Returns the exit status.
//  Each snapfleet_<noun>.c defines its commands (snapfleet_cmds.h lists
//  them); snapfleet.c holds the table.
struct _snapfleet_cmd_t {
    const char *name;
    const char *synopsis;       //  "instances [--node N]"
    const char *summary;        //  One line for the global help
    const char *help;           //  What it does and its options, for --help
    const char *options;        //  Short codes of the options it accepts
    int (*run) (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv);
};

//  A command's options; each command lists the ones it accepts
typedef struct {
    sf_cli_args_t select;       //  Selectors and bulk options, as given
    const char *calendar;       //  schedule add --calendar
    bool wait;                  //  snapshot --wait
    int wait_ms;                //  snapshot --timeout, 0 = no limit
    bool jobs;                  //  bulk show / plan --jobs: every job
    const char *limit;          //  jobs, instances, images --limit N
    const char *after;          //  ... --after CURSOR (the last page's next)
    const char *bulk;           //  cancel --bulk ID
    bool dry_run;               //  gc --dry-run
    const char *show;           //  gc --show RUN
    const char *to;             //  restore --to FILE
    const char *rbd;            //  restore --rbd POOL/NAME
    bool flatten;               //  restore --flatten
    const char *image_format;   //  restore --format qcow2|raw
    const char *as_domain;      //  restore --as-domain NAME
    bool boot;                  //  verify --boot
    const char *verify_sample;  //  schedule add --verify N
    bool help;
    int first;                  //  Index of the first positional argument
} snapfleet_opts_t;

//  Parse the command's options (argv [0] = the command name); print its
//  help if asked; check that it got positionals arguments (-1: any
//  number). Returns -1 when the command is done (exit status in *rc), 0 to
//  go on.
int
    snapfleet_start (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv,
                     int positionals, snapfleet_opts_t *opts, int *rc);

//  Send a request (not consumed) and return the reply (caller owns it) in
//  *reply_p. Prints "snapfleet: ..." on stderr for any error. Returns the
//  exit status (SF_CLI_OK, SF_CLI_FAILED, SF_CLI_UNAVAILABLE, SF_CLI_USAGE
//  for a bad endpoint).
int
    snapfleet_call (snapfleet_t *app, json_t *request, json_t **reply_p);

//  Send {"cmd": name, key: value} (key and value may be NULL) and return
//  the reply in *reply_p, as snapfleet_call.
int
    snapfleet_request (snapfleet_t *app, const char *name, const char *key,
                       const char *value, json_t **reply_p);

//  How often --wait asks about one job
#define SNAPFLEET_WAIT_POLL_MS 150
//  How long --wait keeps asking a scheduler that does not answer
#define SNAPFLEET_WAIT_PATIENCE_MS 30000

//  Poll job *job_p (a JOB object, replaced by each new view) until it has
//  ended (done, failed, cancelled, skipped) or wait_ms (0 = no limit) has
//  passed; with progress, print each new phase on stderr. A poll the
//  scheduler does not answer in time is sent again, until it has been
//  silent for SNAPFLEET_WAIT_PATIENCE_MS. Returns SF_CLI_OK once it has
//  ended, SF_CLI_TEMPFAIL on the timeout ("it goes on"), or an error of
//  snapfleet_request (SF_CLI_UNAVAILABLE once the patience is spent).
int
    snapfleet_wait_job (snapfleet_t *app, json_t **job_p, int wait_ms, bool progress);

//  Send request (not consumed), a command that starts a job, and return
//  the reply's JOB object (caller owns it) in *job_p; with wait, poll it
//  until it has ended, as snapfleet_wait_job (progress: its phases on
//  stderr). Returns SF_CLI_OK, or the exit status of snapfleet_call or
//  snapfleet_wait_job (*job_p NULL then).
int
    snapfleet_call_job (snapfleet_t *app, json_t *request, bool wait, int wait_ms,
                        bool progress, json_t **job_p);

//  Print "snapfleet: job ID STATE: TEXT" on stderr, text escaped
void
    snapfleet_job_failure (json_t *job, const char *text);

//  'NOUN show ID' (NOUN = cmd->name), after snapfleet_start: check the
//  positional arguments, send {"cmd": "NOUN_show", "NOUN_id": ID} and
//  return the reply in *reply_p, as snapfleet_call.
int
    snapfleet_show (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv,
                    const snapfleet_opts_t *opts, json_t **reply_p);

//  Build the request of a command that takes selectors (see
//  sf_cli_select_request); NULL after printing a usage error.
json_t *
    snapfleet_select_request (const snapfleet_cmd_t *cmd, const char *name,
                              const snapfleet_opts_t *opts);

//  Parse "--format" values and "--timeout" seconds (or a duration with a
//  unit: "90s", "5m"). Return 0, or -1 after
//  printing a usage error.
int
    snapfleet_parse_format (snapfleet_t *app, const char *value);
int
    snapfleet_parse_seconds (const char *option, const char *value, int *ms);

//  Print a usage error for command ("snapfleet: MESSAGE" and the command's
//  usage line; with no command, the global usage) and return SF_CLI_USAGE.
int
    snapfleet_usage_error (const snapfleet_cmd_t *cmd, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Field access for printing: "" or 0 if missing
const char *
    snapfleet_str (json_t *object, const char *key);
int64_t
    snapfleet_int (json_t *object, const char *key);

//  object [key] (epoch ms, or null) as "2026-11-25T21:00:00Z", or "-".
//  Returns buf.
char *
    snapfleet_when (json_t *object, const char *key, char *buf, size_t size);

//  object [key] (bytes) as "1.5 GiB"; object [key] (ms) as "4.2 s", or "-"
//  if null. Return buf.
char *
    snapfleet_size (json_t *object, const char *key, char *buf, size_t size);
char *
    snapfleet_ms (json_t *object, const char *key, char *buf, size_t size);

//  object [key] (ms) as "4.2 s", or "0 ms" if missing or null. Returns buf.
char *
    snapfleet_duration (json_t *object, const char *key, char *buf, size_t size);

//  Print a JSON document on stdout (pretty, key order kept).
void
    snapfleet_print_json (json_t *json);

//  Print {"key": reply [key]} as JSON on stdout.
void
    snapfleet_print_payload (json_t *reply, const char *key);

//  --------------------------------------------------------------------------
//  Lists (nodes, instances, images, jobs, bulks, schedule list): one
//  request, then its array as JSON or as a table of columns

//  Add the cell that shows row [key] to table
typedef void (snapfleet_cell_fn) (sf_table_t *table, json_t *row, const char *key);

//  A column of a list
typedef struct {
    const char *header;         //  "NAME"; ">SIZE" is right-aligned
    const char *key;            //  The field of each row it shows
    snapfleet_cell_fn *cell;    //  How
} snapfleet_column_t;

//  Send {"cmd": name, key: value} (key and value may be NULL) and print
//  the array reply [array]: {array: [...]} with --format json, else a
//  table of columns (terminated by a NULL header). Returns the exit status.
int
    snapfleet_list (snapfleet_t *app, const char *name, const char *key, const char *value,
                    const char *array, const snapfleet_column_t *columns);

//  The same for a paginated list (jobs, instances, images): the request
//  carries opts->limit and opts->after if given; the JSON output has
//  "more" and "next" too, and the table is followed (on stderr) by the
//  command for the next page when more rows follow.
int
    snapfleet_list_page (snapfleet_t *app, const char *name, const char *key,
                         const char *value, const char *array,
                         const snapfleet_column_t *columns, const snapfleet_opts_t *opts);

//  Help text of --limit and --after
#define SNAPFLEET_HELP_PAGE \
    "  --limit N             at most N rows (default 1000, at most 10000)\n" \
    "  --after CURSOR        the rows after CURSOR: the 'next' of the previous page\n" \
    "                        (printed after a table that has more rows to follow)\n"

//  Cells: row [key] as text, an integer, a size ("1.5 GiB"), a time (as
//  snapfleet_when) or a duration (as snapfleet_duration)
void
    snapfleet_cell_str (sf_table_t *table, json_t *row, const char *key);
void
    snapfleet_cell_int (sf_table_t *table, json_t *row, const char *key);
void
    snapfleet_cell_size (sf_table_t *table, json_t *row, const char *key);
void
    snapfleet_cell_when (sf_table_t *table, json_t *row, const char *key);
void
    snapfleet_cell_duration (sf_table_t *table, json_t *row, const char *key);

#endif
