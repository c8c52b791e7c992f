/*  =========================================================================
    sf_hv - hypervisor interface (driver vtable + dispatch) and the domain
    and disk values the worker reasons about

    A domain is read into plain values (sf_hv_domain_t) so that nothing
    outside the driver touches libvirt types. Disk sizes and backing chains
    of file and block disks come from `qemu-img info --backing-chain`, which
    is hypervisor-independent, so the dispatcher fills them in for every
    driver. The storage class is derived here from the disks, never
    configured; which strategy fits it is the shared table's rule
    (proto/sf_strategies).
    =========================================================================
*/
#ifndef SF_HV_H_INCLUDED
#define SF_HV_H_INCLUDED

typedef struct _sf_hv_t sf_hv_t;

//  Domain states: the wire values, so they pass through unchanged
#define SF_HV_RUNNING   SF_STATE_RUNNING
#define SF_HV_PAUSED    SF_STATE_PAUSED
#define SF_HV_SHUTOFF   SF_STATE_SHUTOFF
#define SF_HV_OTHER     SF_STATE_OTHER

//  One disk of a domain. Strings are owned by the disk.
typedef struct {
    char *target;               //  "vda"
    int type;                   //  SF_DISK_FILE, _BLOCK, _RBD, _OTHER
    char *source;               //  path, device, "pool/image"; "" if empty
    char *protocol;             //  network protocol ("rbd"), "" otherwise
    char *format;               //  driver type "qcow2", "raw"; "raw" if the
                                //  XML names none (never what a probe finds)
    char *device;               //  "disk", "cdrom", "floppy", "lun"
    uint64_t virtual_size;      //  bytes, 0 if unknown
    uint64_t allocated_size;    //  bytes on the host, whole chain
    zlistx_t *backing_chain;    //  Owned list of char *, top to bottom,
                                //  excluding source
} sf_hv_disk_t;

//  Instance tags: in the domain XML as
//    <metadata><sf:tags xmlns:sf="urn:snapfleet:tags:1">
//      <sf:tag key="tier" value="gold"/> ...</sf:tags></metadata>
//  (matched by namespace URI, any prefix). Keys are safe identifiers,
//  values UTF-8; at most SF_HV_MAX_TAGS per domain, first of a key wins.
#define SF_HV_TAGS_NS       "urn:snapfleet:tags:1"
#define SF_HV_MAX_TAGS      64          //  = SF_WIRE_MAX_TAGS
#define SF_HV_TAG_KEY_MAX   63          //  bytes
#define SF_HV_TAG_VALUE_MAX 255         //  bytes

//  One tag. Strings are owned by the tag.
typedef struct {
    char *key;
    char *value;
} sf_hv_tag_t;

//  One domain. Owned by whoever got it from sf_hv_list or sf_hv_lookup.
typedef struct {
    char uuid [37];             //  lowercase, dashed
    char *name;                 //  Owned
    int state;                  //  SF_HV_*
    zlistx_t *disks;            //  Owned list of sf_hv_disk_t *
    zlistx_t *tags;             //  Owned list of sf_hv_tag_t *, document order
    char *refusal;              //  Owned; why snapfleet will not snapshot
                                //  it (too many disks, an unsafe target or
                                //  source), NULL if it may
} sf_hv_domain_t;

//  Lookup flags
#define SF_HV_SIZES     1       //  probe sizes/chains with qemu-img info

//  Progress of a live copy (backup job)
typedef struct {
    bool done;                  //  the job has ended (successfully: else -1)
    uint64_t processed;         //  bytes copied so far, 0 if unknown
    uint64_t total;             //  bytes to copy, 0 if unknown
} sf_hv_progress_t;

//  One disk of a live copy: the disk's target (a safe name) and the file
//  its copy (backup) or its new top layer (external snapshot) goes to, an
//  absolute path; NULL path: the disk takes no part.
typedef struct {
    const char *target;
    const char *path;
} sf_hv_live_t;

//  Driver table (see STYLE.md B9). Drivers fill the domain and its disks
//  from their own sources; the dispatcher does the rest.
typedef struct {
    const char *name;
    int (*open) (sf_hv_t *self, const char *uri, sf_err_t *err);
    void (*close) (sf_hv_t *self);
    //  Append every domain (without sizes) to list
    int (*list) (sf_hv_t *self, zlistx_t *list, sf_err_t *err);
    sf_hv_domain_t *(*lookup) (sf_hv_t *self, const char *uuid, sf_err_t *err);
    int (*state) (sf_hv_t *self, const char *uuid, int *state, sf_err_t *err);
    int (*suspend) (sf_hv_t *self, const char *uuid, sf_err_t *err);
    int (*resume) (sf_hv_t *self, const char *uuid, sf_err_t *err);
    //  Optional: freeze / thaw the guest's filesystems (guest agent)
    int (*fs_freeze) (sf_hv_t *self, const char *uuid, sf_err_t *err);
    int (*fs_thaw) (sf_hv_t *self, const char *uuid, sf_err_t *err);
    //  Optional: live copies (see sf_hv_backup_begin and below)
    int (*backup_begin) (sf_hv_t *self, const char *uuid, const char *xml, sf_err_t *err);
    int (*backup_poll) (sf_hv_t *self, const char *uuid, sf_hv_progress_t *progress,
                        sf_err_t *err);
    int (*backup_abort) (sf_hv_t *self, const char *uuid, sf_err_t *err);
    int (*snapshot_external) (sf_hv_t *self, const char *uuid, const char *xml,
                              sf_err_t *err);
    int (*commit_start) (sf_hv_t *self, const char *uuid, const char *target,
                         sf_err_t *err);
    int (*commit_pivot) (sf_hv_t *self, const char *uuid, const char *target,
                         bool *ready, sf_err_t *err);
    int (*commit_abort) (sf_hv_t *self, const char *uuid, const char *target,
                         sf_err_t *err);
    //  Optional: domains made from XML (see sf_hv_domain_xml and below)
    int (*domain_xml) (sf_hv_t *self, const char *uuid, char **xml, sf_err_t *err);
    int (*name_exists) (sf_hv_t *self, const char *name, bool *exists, sf_err_t *err);
    int (*define) (sf_hv_t *self, const char *name, const char *xml, char *uuid,
                   size_t uuid_size, sf_err_t *err);
    int (*create_transient) (sf_hv_t *self, const char *name, const char *xml,
                             sf_err_t *err);
    int (*destroy_named) (sf_hv_t *self, const char *name, sf_err_t *err);
    int (*agent_ping) (sf_hv_t *self, const char *name, int timeout_s, sf_err_t *err);
    //  Optional: checkpoints (incremental backups, issue 13). backup_begin_cp
    //  is backup_begin that also creates the checkpoint of checkpoint_xml
    int (*backup_begin_cp) (sf_hv_t *self, const char *uuid, const char *xml,
                            const char *checkpoint_xml, sf_err_t *err);
    int (*checkpoint_list) (sf_hv_t *self, const char *uuid, zlistx_t *names,
                            sf_err_t *err);
    int (*checkpoint_delete) (sf_hv_t *self, const char *uuid, const char *name,
                              sf_err_t *err);
} sf_hv_driver_t;

//  Open the hypervisor at uri with the driver that handles it (libvirt
//  for every URI today). Returns NULL with err (SF_EHV) if it cannot
//  connect. Caller owns the result and must destroy it.
sf_hv_t *
    sf_hv_new (const char *uri, sf_err_t *err);

//  How long the hypervisor may stay silent before a call fails: every
//  connection opened after this is set (process-wide) gets it. libvirt:
//  the connect is bounded by it, then keepalive probes (ms / 6 apart)
//  close a connection whose libvirtd stops answering, and a call waiting
//  on it fails with SF_ETIMEDOUT "libvirtd at URI did not answer for N s".
//  0: no bound (calls wait for as long as libvirtd takes; the pause guard,
//  which must act once libvirtd answers again). Default SF_HV_ANSWER_MS.
#define SF_HV_ANSWER_MS     30000
void
    sf_hv_set_answer_timeout (int64_t ms);
int64_t
    sf_hv_answer_timeout (void);

//  Whether file-live may use the hypervisor's backup API (process-wide,
//  [hypervisor] backup_api; default true). Off: it goes straight to its
//  fallback, the external snapshot.
void
    sf_hv_set_backup_api (bool on);
bool
    sf_hv_backup_api (void);

//  Stop what the drivers run for the whole process (libvirt: the event
//  loop thread keepalive needs), once every connection is closed; before
//  the process exits, so that no driver thread runs while it does.
void
    sf_hv_shutdown (void);

//  Close and free. Nullifies *self_p.
void
    sf_hv_destroy (sf_hv_t **self_p);

//  Driver-private state, for drivers only.
void *
    sf_hv_priv (sf_hv_t *self);
void
    sf_hv_set_priv (sf_hv_t *self, void *priv);
const char *
    sf_hv_uri (sf_hv_t *self);

//  Every domain a driver reads is vetted here: one with more disks than
//  SF_WIRE_MAX_DISKS keeps none and gets a refusal saying so; one with a
//  data disk whose target is not a safe name (sf_name_is_safe), whose
//  file or block source is not an absolute path that sf_hv_source_check
//  accepts, or whose RBD source it refuses, gets a refusal too. Refused
//  domains are listed (the inventory shows them) but never probed.

//  List every domain, sorted by uuid. flags: SF_HV_SIZES. Returns a new
//  list of sf_hv_domain_t * (caller owns it; destroying the list destroys
//  the domains), or NULL with err. A disk whose size cannot be probed is
//  listed with size 0 (a missing file is not a listing error).
zlistx_t *
    sf_hv_list (sf_hv_t *self, int flags, sf_err_t *err);

//  Look up one domain by uuid. Returns a new domain (caller owns it) or
//  NULL with err: SF_ENOENT if there is no such domain. With SF_HV_SIZES a
//  failing probe is an error (the job needs the sizes).
sf_hv_domain_t *
    sf_hv_lookup (sf_hv_t *self, const char *uuid, int flags, sf_err_t *err);

//  Current state (SF_HV_*). Returns 0 or -1 with err.
int
    sf_hv_state (sf_hv_t *self, const char *uuid, int *state, sf_err_t *err);

//  Suspend / resume the domain's vCPUs. Returns 0 or -1 with err (SF_EHV).
int
    sf_hv_suspend (sf_hv_t *self, const char *uuid, sf_err_t *err);
int
    sf_hv_resume (sf_hv_t *self, const char *uuid, sf_err_t *err);

//  Freeze / thaw every filesystem of the guest through its guest agent.
//  Returns 0 or -1 with err: SF_ENOTSUP when freezing is unavailable (no
//  agent channel, or no agent answers), with the reason alone as the text
//  ("QEMU guest agent is not configured"); SF_EHV for other failures.
int
    sf_hv_fs_freeze (sf_hv_t *self, const char *uuid, sf_err_t *err);
int
    sf_hv_fs_thaw (sf_hv_t *self, const char *uuid, sf_err_t *err);

//  --------------------------------------------------------------------------
//  Live copies (strategy file-live). Every call returns 0 or -1 with err:
//  SF_ENOTSUP when the hypervisor has no such operation (the driver lacks
//  it, libvirt says the operation, argument or configuration is not
//  supported): the caller may fall back; SF_EINVAL for a disk list the
//  XML builders refuse; SF_EHV for every other failure.

//  The <domainbackup mode='push'> XML that copies every disk with a path
//  into a qcow2 file at that path (reused: the caller creates it) and
//  leaves the others out; the <domainsnapshot> XML that puts every disk
//  with a path on a new qcow2 top layer at that path (reused, created by
//  the caller with the disk as its backing file) and the others
//  snapshot='no'. Targets must be safe names and paths absolute ones that
//  sf_hv_source_check accepts; attribute values are escaped. At least one
//  disk needs a path. Returns a new string or NULL with err (SF_EINVAL).
char *
    sf_hv_backup_xml (const sf_hv_live_t *disks, size_t count, sf_err_t *err);
char *
    sf_hv_snapshot_xml (const sf_hv_live_t *disks, size_t count, sf_err_t *err);

//  Start a push backup of the domain's disks (sf_hv_backup_xml): a
//  point-in-time copy as of the call, written while the guest runs.
int
    sf_hv_backup_begin (sf_hv_t *self, const char *uuid, const sf_hv_live_t *disks,
                        size_t count, sf_err_t *err);

//  How far the domain's backup job is. -1 with err (SF_EHV, libvirt's
//  reason) if it failed or was cancelled.
int
    sf_hv_backup_poll (sf_hv_t *self, const char *uuid, sf_hv_progress_t *progress,
                       sf_err_t *err);

//  --------------------------------------------------------------------------
//  Checkpoints (incremental file-live, issue 13). Same errors as above.

//  sf_hv_backup_xml, incremental from checkpoint since (a name
//  sf_wire_checkpoint_valid accepts) when since is not NULL: QEMU copies
//  only the clusters written since then; the rest of the target stays
//  unallocated. The <domaincheckpoint> XML named name (valid as since) with
//  a persistent bitmap for every disk with a path, checkpoint='no' for the
//  others. NULL with err (SF_EINVAL) as sf_hv_backup_xml, or a bad name.
char *
    sf_hv_backup_incr_xml (const sf_hv_live_t *disks, size_t count, const char *since,
                           sf_err_t *err);
char *
    sf_hv_checkpoint_xml (const sf_hv_live_t *disks, size_t count, const char *name,
                          sf_err_t *err);

//  sf_hv_backup_begin, incremental from since (NULL: a full copy), creating
//  checkpoint name (NULL: none) at the same instant, in one call.
int
    sf_hv_backup_begin_cp (sf_hv_t *self, const char *uuid, const sf_hv_live_t *disks,
                           size_t count, const char *since, const char *name,
                           sf_err_t *err);

//  The names of the domain's checkpoints (every tool's), as a new list of
//  strings (caller destroys it); NULL with err.
zlistx_t *
    sf_hv_checkpoint_list (sf_hv_t *self, const char *uuid, sf_err_t *err);

//  Delete checkpoint name of the domain (its bitmaps merge into its
//  parent's), only if it is one snapfleet makes (sf_wire_checkpoint_valid:
//  else SF_EINVAL, nothing done). 0 also if it is already gone.
int
    sf_hv_checkpoint_delete (sf_hv_t *self, const char *uuid, const char *name,
                             sf_err_t *err);

//  Abort the domain's backup job (0 if there is none).
int
    sf_hv_backup_abort (sf_hv_t *self, const char *uuid, sf_err_t *err);

//  External disk-only snapshot without metadata (sf_hv_snapshot_xml, the
//  overlays exist): the guest goes on writing into the overlays, the old
//  layers stay read-only until committed back.
int
    sf_hv_snapshot_external (sf_hv_t *self, const char *uuid, const sf_hv_live_t *disks,
                             size_t count, sf_err_t *err);

//  Put the guest's disk target back on the file below its top layer:
//  start an active shallow commit (the top layer into its backing file,
//  never further down the chain), then, until the deadline (mono ms),
//  pivot as soon as the job is ready. On a missed deadline the commit job
//  is aborted (the guest stays on the top layer) and err is SF_ETIMEDOUT.
int
    sf_hv_commit (sf_hv_t *self, const char *uuid, const char *target, int64_t deadline,
                  sf_err_t *err);

//  --------------------------------------------------------------------------
//  Domains made from XML (restore --as-domain, verify --boot). Every call
//  returns 0 or -1 with err: SF_ENOTSUP if the driver has no such
//  operation, SF_EHV for the hypervisor's refusals.

//  The domain's inactive (persistent) XML, without secrets: a new string
//  in *xml (caller frees it).
int
    sf_hv_domain_xml (sf_hv_t *self, const char *uuid, char **xml, sf_err_t *err);

//  Whether a domain named name exists (persistent or running).
int
    sf_hv_name_exists (sf_hv_t *self, const char *name, bool *exists, sf_err_t *err);

//  Define a new persistent domain name from xml (whose <name> is name),
//  not started: refused with SF_EEXIST if a domain of that name exists
//  before the call, and refused again by the hypervisor's own define if
//  one came meanwhile (libvirt refuses a name another uuid has; the XML
//  carries no uuid, so the define cannot replace anyone's). The new
//  domain's uuid goes to uuid (uuid_size >= 37).
int
    sf_hv_define (sf_hv_t *self, const char *name, const char *xml, char *uuid,
                  size_t uuid_size, sf_err_t *err);

//  Create and start a transient domain from xml (its <name> is name);
//  SF_EEXIST if one of that name exists.
int
    sf_hv_create_transient (sf_hv_t *self, const char *name, const char *xml,
                            sf_err_t *err);

//  Stop the running transient domain name at once (it is gone then): the
//  copies verify --boot starts. SF_ENOENT if there is none; a persistent
//  domain of that name is not touched (SF_EEXIST): never one of ours.
int
    sf_hv_destroy_named (sf_hv_t *self, const char *name, sf_err_t *err);

//  Ask the guest agent of domain name for "guest-ping", waiting at most
//  timeout_s: 0 if it answered, -1 with err (SF_ENOTSUP: no agent channel
//  or none connected; SF_EHV otherwise).
int
    sf_hv_agent_ping (sf_hv_t *self, const char *name, int timeout_s, sf_err_t *err);

//  Probe one file or block disk with `qemu-img info -U --output=json -f
//  FORMAT --backing-chain -- SOURCE` (-U: the image may be in use; the
//  format is the disk's, raw if unset, never probed). Fills virtual_size,
//  allocated_size and backing_chain; a layer whose backing file has no
//  recorded format is an error (qemu would probe it). cancel may be NULL.
//  Returns 0 or -1 with err.
int
    sf_hv_disk_probe (sf_hv_disk_t *disk, zsock_t *cancel, sf_err_t *err);

//  The format to pass qemu-img for disk with -f: its format, "raw" if it
//  has none.
const char *
    sf_hv_disk_format (const sf_hv_disk_t *disk);

//  Check that source may go on a qemu-img command line (after "--"): not
//  empty, at most SF_WIRE_MAX_STRING bytes, not starting with '-', valid
//  UTF-8 without control characters. Returns 0 or -1 with err (SF_EINVAL)
//  naming disk target.
int
    sf_hv_source_check (const char *target, const char *source, sf_err_t *err);

//  True for the disks a snapshot captures (device "disk" or "lun", with a
//  source); CD-ROMs and floppies are not guest data.
bool
    sf_hv_disk_is_data (const sf_hv_disk_t *disk);

//  "rbd" if every data disk is RBD, "file" if every one is file or block,
//  "mixed" if both, "none" if there are none (or only other types).
const char *
    sf_hv_domain_storage_class (const sf_hv_domain_t *domain);

//  The strategy that fits the domain (sf_strategies_choose on its state
//  and storage class), "" if none or if the domain has a refusal.
const char *
    sf_hv_domain_strategy (const sf_hv_domain_t *domain);

//  Check that strategy can run on domain (sf_strategies_check). Returns 0,
//  or -1 with err (SF_EINVAL for a domain with a refusal, which is the
//  text, an unknown strategy or one that does not fit).
int
    sf_hv_strategy_check (const sf_hv_domain_t *domain, const char *strategy,
                          sf_err_t *err);

//  Name of a state for messages: "running", "paused", "shutoff", "other".
const char *
    sf_hv_state_name (int state);

//  Create a disk or domain value (for drivers and tests); free them.
sf_hv_disk_t *
    sf_hv_disk_new (void);
void
    sf_hv_disk_destroy (sf_hv_disk_t **self_p);
sf_hv_domain_t *
    sf_hv_domain_new (const char *uuid, const char *name, int state);
void
    sf_hv_domain_destroy (sf_hv_domain_t **self_p);

//  Check one tag: key 1..SF_HV_TAG_KEY_MAX bytes of [A-Za-z0-9_.-]
//  starting with a letter or digit; value valid UTF-8 without control
//  characters, at most SF_HV_TAG_VALUE_MAX bytes. Returns 0 or -1 with err
//  (SF_EINVAL) saying why.
int
    sf_hv_tag_check (const char *key, const char *value, sf_err_t *err);

//  Add a tag to domain if it is valid, not a duplicate key, and the
//  domain has fewer than SF_HV_MAX_TAGS. Returns 0 or -1 with err (the tag
//  was skipped).
int
    sf_hv_domain_tag_add (sf_hv_domain_t *domain, const char *key, const char *value,
                          sf_err_t *err);

//  The value of tag key, NULL if the domain has none.
const char *
    sf_hv_domain_tag (const sf_hv_domain_t *domain, const char *key);

//  Find a domain by uuid in a list from sf_hv_list; NULL if absent.
sf_hv_domain_t *
    sf_hv_domain_find (zlistx_t *domains, const char *uuid);

//  The drivers
extern const sf_hv_driver_t sf_hv_libvirt_driver;
void
    sf_hv_libvirt_shutdown (void);     //  see sf_hv_shutdown

//  Self test of this class
void
    sf_hv_test (bool verbose);

#endif
