/*  =========================================================================
    sf_schedcfg - the scheduler's configuration (scheduler.conf)

    Declared once as a schema table (sf_cfg); scheduler.conf.example
    documents every key, and the self-test checks that it does. Values that
    parse but make no sense (an unknown log level, a heartbeat longer than
    the node timeout) are errors that name the file and line too.
    =========================================================================
*/
#ifndef SF_SCHEDCFG_H_INCLUDED
#define SF_SCHEDCFG_H_INCLUDED

typedef struct {
    char *bind;                 //  ROUTER for workers
    char *admin_bind;           //  ROUTER for the CLI
    char *database;             //  SQLite file
    int64_t heartbeat_ms;       //  Told to workers in Welcome
    int64_t node_timeout_ms;    //  Silent this long: node down
    sf_limits_t limits;         //  [limits], 0 = none
    int64_t max_jobs_per_node;  //  [limits] cap on a worker's max_jobs
    int64_t max_peers;          //  [limits] nodes the scheduler accepts
    int64_t max_attempts;       //  [limits] attempts of a job (retries + 1)
    int64_t retry_backoff_ms;   //  [limits] first retry delay (doubling)
    int64_t history_days;       //  [retention] jobs, events, bulks kept
    int64_t max_chain;          //  [retention] increments on one full copy
    int64_t gc_interval_ms;     //  [gc] interval: reconcile every node; 0 = off
    bool gc_remove;             //  [gc] remove: periodic runs remove orphans
    int64_t gc_grace_ms;        //  [gc] grace: younger objects are kept
    int64_t gc_timeout_ms;      //  [gc] timeout: a node's answer, per step
    char *log_level;            //  err|warning|notice|info|debug
    char *log_format;           //  text|json
    char *cert;                 //  [security] our key pair (secret file)
    char *workers;              //  Directory of enrolled worker keys
    char *admins;               //  Directory of enrolled admin keys
    bool insecure;              //  Plaintext (loopback and ipc:// only)
} sf_schedcfg_t;

//  The schema (NULL-terminated), for --help and the self-test
extern const sf_cfg_opt_t sf_schedcfg_schema [];

//  Apply the defaults to cfg. Returns 0 (the defaults always parse).
int
    sf_schedcfg_init (sf_schedcfg_t *cfg);

//  Read path into cfg (defaults applied first) and validate it. Returns 0,
//  or -1 with err set to one line starting "path:line: " where a line is
//  known.
int
    sf_schedcfg_load (sf_schedcfg_t *cfg, const char *path, sf_err_t *err);

//  Same from a string, name used in messages (for tests).
int
    sf_schedcfg_load_string (sf_schedcfg_t *cfg, const char *text,
                             const char *name, sf_err_t *err);

//  Free the strings of cfg.
void
    sf_schedcfg_release (sf_schedcfg_t *cfg);

//  True if endpoint only listens on loopback (127.0.0.0/8, ::1, localhost)
//  or is not TCP at all (ipc://, inproc://): sf_cert_is_local.
bool
    sf_schedcfg_is_loopback (const char *endpoint);

//  Self test of this class
void
    sf_schedcfg_test (bool verbose);

#endif
