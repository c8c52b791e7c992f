/*  =========================================================================
    snapfleet - private header of the operator CLI (snapfleet.c, the main
    program and global options; snapfleet_cmds.c, the command table, option
    parsing and the single-object commands; snapfleet_bulk.c, bulk
    snapshots, bulks and plans; snapfleet_schedule.c, schedules)
    =========================================================================
*/
#ifndef SNAPFLEET_H_INCLUDED
#define SNAPFLEET_H_INCLUDED

#include "sf_core.h"
#include "sf_cli.h"
#include "sf_table.h"

#include <getopt.h>
#include <jansson.h>

#define SNAPFLEET_DEFAULT_ADMIN "tcp://127.0.0.1:7601"
#define SNAPFLEET_DEFAULT_TIMEOUT_MS 5000

//  State shared by all commands
typedef struct {
    const char *admin;          //  Borrowed from argv or the environment
    bool json;                  //  --format json
    int timeout_ms;             //  Per-request timeout
    sf_cli_t *cli;              //  Owned, connected on first use
    const char **slots;         //  Owned: room for every --instance (argc)
} snapfleet_t;

typedef struct _snapfleet_cmd_t snapfleet_cmd_t;

//  A command: its name, its help, the options it takes, and the function
//  that runs it with argv [0] = the command name. Returns the exit status.
struct _snapfleet_cmd_t {
    const char *name;
    const char *synopsis;       //  "instances [--node N]"
    const char *summary;        //  One line for the global help
    const char *help;           //  What it does and its options, for --help
    const char *options;        //  Short codes of the options it accepts
    int (*run) (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv);
};

//  The command table (NULL-terminated), in snapfleet_cmds.c
extern const snapfleet_cmd_t snapfleet_cmds [];

//  A command's options; each command lists the ones it accepts
typedef struct {
    sf_cli_args_t select;       //  Selectors and bulk options, as given
    const char *calendar;       //  schedule add --calendar
    bool wait;                  //  snapshot --wait
    int wait_ms;                //  snapshot --timeout, 0 = no limit
    bool jobs;                  //  bulk show / plan --jobs: every job
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

//  Send {"cmd": name, key: value} (key and value may be NULL) and return
//  the reply in *reply_p, as snapfleet_call.
int
    snapfleet_request (snapfleet_t *app, const char *name, const char *key,
                       const char *value, json_t **reply_p);

//  Build the request of a command that takes selectors (see
//  sf_cli_select_request); NULL after printing a usage error.
json_t *
    snapfleet_select_request (const snapfleet_cmd_t *cmd, const char *name,
                              const snapfleet_opts_t *opts);

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

//  Commands in snapfleet_bulk.c: snapshot of anything but one instance
//  (opts parsed by the snapshot command), bulk show, bulks, plan
int
    snapfleet_snapshot_bulk (snapfleet_t *app, const snapfleet_cmd_t *cmd,
                             const snapfleet_opts_t *opts);
int
    snapfleet_cmd_bulk (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv);
int
    snapfleet_cmd_bulks (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv);
int
    snapfleet_cmd_plan (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc, char **argv);

//  Command in snapfleet_schedule.c: schedule add|list|rm
int
    snapfleet_cmd_schedule (snapfleet_t *app, const snapfleet_cmd_t *cmd, int argc,
                            char **argv);

//  Send a request (not consumed) and return the reply (caller owns it) in
//  *reply_p. Prints "snapfleet: ..." on stderr for any error. Returns the
//  exit status (SF_CLI_OK, SF_CLI_FAILED, SF_CLI_UNAVAILABLE, SF_CLI_USAGE
//  for a bad endpoint).
int
    snapfleet_call (snapfleet_t *app, json_t *request, json_t **reply_p);

//  Parse "--format" values and "--timeout" seconds (or a duration with a
//  unit: "90s", "5m"). Return 0, or -1 after
//  printing a usage error.
int
    snapfleet_parse_format (snapfleet_t *app, const char *value);
int
    snapfleet_parse_seconds (const char *option, const char *value, int *ms);

//  Print a usage error for command ("snapfleet: MESSAGE" and the command's
//  usage line) and return SF_CLI_USAGE.
int
    snapfleet_usage_error (const snapfleet_cmd_t *cmd, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Print a JSON document on stdout (pretty, key order kept).
void
    snapfleet_print_json (json_t *json);

#endif
