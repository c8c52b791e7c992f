/*  =========================================================================
    sf_agent_cfg - worker.conf: the schema table, defaults, loading and the
    checks a value needs beyond its type

    Keys are exactly those of contract.md ("worker.conf"). A bad file is
    reported as "FILE:LINE: ..." (syntax, unknown keys and bad values by
    sf_cfg; semantic checks find the key's line themselves), so that main
    can print it and exit 2.
    =========================================================================
*/
#ifndef SF_AGENT_CFG_H_INCLUDED
#define SF_AGENT_CFG_H_INCLUDED

//  worker.conf, see worker.conf.example
typedef struct {
    char *name;                 //  [worker] name; default: short host name
    char *scheduler;            //  [worker] scheduler
    int64_t max_jobs;           //  [worker] max_jobs
    char *workdir;              //  [worker] workdir
    int64_t heartbeat;          //  [worker] heartbeat, ms
    int64_t inventory_interval; //  [worker] inventory_interval, ms
    char *uri;                  //  [hypervisor] uri
    int64_t hv_answer_timeout;  //  [hypervisor] answer_timeout, ms
    bool hv_backup_api;         //  [hypervisor] backup_api: file-live tries it
    sf_imgstore_cfg_t store;    //  [imagestore]; name default: <driver>@<node>
    int64_t max_pause;          //  [pause] max_pause, ms
    int64_t stall_timeout;      //  [conversion] stall_timeout, ms
    uint64_t conv_rate_limit;   //  [conversion] rate_limit, bytes/s, 0 = none
    char *verify_life_pattern;  //  [verify] life_pattern (POSIX extended regex)
    int64_t verify_boot_timeout;    //  [verify] boot_timeout, ms
    char *rbd_ceph_conf;        //  [storage.rbd] ceph_conf; "" = RBD off
    char *rbd_client_id;        //  [storage.rbd] client_id
    char *rbd_keyring;          //  [storage.rbd] keyring
    char *rbd_mode;             //  [storage.rbd] mode: clone | export
    char *rbd_snapshot;         //  [storage.rbd] snapshot: rbd | backup
    char *rbd_clone_pool;       //  [storage.rbd] clone_pool
    int64_t rbd_op_timeout;     //  [storage.rbd] op_timeout, ms
    char *log_level;            //  [log] level
    char *log_format;           //  [log] format
    char *cert;                 //  [security] cert; default /etc/snapfleet/<name>
    char *scheduler_key;        //  [security] scheduler_key (public, pinned)
    bool insecure;              //  [security] insecure: plaintext, loopback only
} sf_agent_cfg_t;

//  Ranges of the timeouts
#define SF_AGENT_ANSWER_MIN     2000            //  [hypervisor] answer_timeout
#define SF_AGENT_ANSWER_MAX     600000
#define SF_AGENT_STALL_MIN      5000            //  [conversion] stall_timeout
#define SF_AGENT_STALL_MAX      86400000
#define SF_AGENT_CONV_RATE_MIN  (1024 * 1024)     //  [conversion] rate_limit, if set
#define SF_AGENT_BOOT_MIN       5000            //  [verify] boot_timeout
#define SF_AGENT_BOOT_MAX       3600000

//  The schema of worker.conf (NULL-terminated)
extern const sf_cfg_opt_t sf_agent_cfg_schema [];

//  Apply defaults, then read path (NULL: defaults only) and validate.
//  Returns 0, or -1 with err naming "FILE:LINE: ..." where it can.
int
    sf_agent_cfg_load (sf_agent_cfg_t *cfg, const char *path, sf_err_t *err);

//  Free the strings of cfg.
void
    sf_agent_cfg_release (sf_agent_cfg_t *cfg);

//  Deep copy of src into dst (release dst with sf_agent_cfg_release).
void
    sf_agent_cfg_copy (sf_agent_cfg_t *dst, const sf_agent_cfg_t *src);

//  Self test of this class
void
    sf_agent_cfg_test (bool verbose);

#endif
