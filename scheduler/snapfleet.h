/*  =========================================================================
    snapfleet - private header of the operator CLI (snapfleet.c, the main
    program and global options; snapfleet_cmds.c, one function per command)
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

//  Send a request (not consumed) and return the reply (caller owns it) in
//  *reply_p. Prints "snapfleet: ..." on stderr for any error. Returns the
//  exit status (SF_CLI_OK, SF_CLI_FAILED, SF_CLI_UNAVAILABLE, SF_CLI_USAGE
//  for a bad endpoint).
int
    snapfleet_call (snapfleet_t *app, json_t *request, json_t **reply_p);

//  Parse "--format" values and "--timeout" seconds. Return 0, or -1 after
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
