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
#define SF_CLI_UNAVAILABLE  69      //  EX_UNAVAILABLE: scheduler unreachable
#define SF_CLI_TEMPFAIL     75      //  EX_TEMPFAIL: --wait timed out

//  Connect to endpoint; each request waits at most timeout_ms for its
//  answer. Returns NULL with err set (SF_EINVAL) if the endpoint is not a
//  valid ZeroMQ endpoint. Caller owns the result.
sf_cli_t *
    sf_cli_new (const char *endpoint, int timeout_ms, sf_err_t *err);

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

//  Self test of this class
void
    sf_cli_test (bool verbose);

#endif
