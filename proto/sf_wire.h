/*  =========================================================================
    sf_wire - the only place that packs and unpacks protobuf-c messages

    A message on the wire is one ZeroMQ frame holding an sf.v1.Envelope (on
    the scheduler's ROUTER, preceded by the peer's routing-id frame). Decode
    checks, in order: frame count, size cap, the wire format's repeated
    counts before anything is allocated (sf_wire_scan), protobuf syntax, protocol
    version, that a body is set, and per-body field bounds (string lengths,
    repeated counts, enum ranges, required ids). Anything that fails is
    SF_EPROTO with a one-line reason and must be logged, counted and dropped.
    =========================================================================
*/
#ifndef SF_WIRE_H_INCLUDED
#define SF_WIRE_H_INCLUDED

#include "snapfleet.pb-c.h"

#define SF_WIRE_VERSION     1
#define SF_WIRE_MAX_BYTES   (4 * 1024 * 1024)   //  one envelope, packed
#define SF_WIRE_MAX_STRING  4096                //  any string field
#define SF_WIRE_MAX_PATH    4096                //  a restore's target, with its NUL
#define SF_WIRE_MAX_XML     65536               //  a domain's XML (no NUL in it)
#define SF_WIRE_MAX_PATTERN 256                 //  Verify.life_pattern
#define SF_WIRE_MAX_INSTANCES 4096              //  per Inventory
#define SF_WIRE_MAX_DISKS   64                  //  per Instance, Images per result
#define SF_WIRE_MAX_CHAIN   32                  //  backing chain depth
#define SF_WIRE_MAX_TAGS    64                  //  per Instance
#define SF_WIRE_MAX_STRATEGIES 32               //  per Hello
#define SF_WIRE_MAX_RUNNING 1024                //  running_jobs per Hello
#define SF_WIRE_MAX_IMAGES  SF_WIRE_MAX_DISKS   //  per JobResult
#define SF_WIRE_MAX_ACKS    4096                //  per Acks
#define SF_WIRE_MAX_HOLDINGS 4096               //  per GcHoldings, GcRemove,
                                                //  and each list of GcRemoved

//  Ranges of the numbers a peer sends, checked before any arithmetic (so
//  that sums, products and conversions to int64_t cannot overflow): a
//  value outside its range makes the message SF_EPROTO, naming the field.
//  Bytes of one disk or image, scratch free and rates (bytes/s) are at
//  most 1 PiB, the bytes of a whole job (up to SF_WIRE_MAX_DISKS disks)
//  at most 64 PiB; durations at most 366 days; wall-clock times at most
//  9999-12-31 (ms since the epoch); the heartbeat interval at most 1h; a worker's max_jobs and running_jobs
//  at most 65535 (the scheduler caps max_jobs further per node).
#define SF_WIRE_MAX_SIZE    (1ULL << 50)                    //  bytes, bytes/s
#define SF_WIRE_MAX_TOTAL   (SF_WIRE_MAX_SIZE * SF_WIRE_MAX_DISKS)  //  a job
#define SF_WIRE_MAX_MS      (366ULL * 24 * 3600 * 1000)     //  a duration
#define SF_WIRE_MAX_HEARTBEAT_MS 3600000                     //  Welcome: 1h
#define SF_WIRE_MAX_TIME_MS 253402300799999ULL              //  epoch ms
#define SF_WIRE_MAX_JOBS    65535                           //  jobs at once

//  Short names for the generated types, so the rest of the code does not
//  spell Sf__V1__ everywhere.
typedef Sf__V1__Envelope    sf_envelope_t;
typedef Sf__V1__Hello       sf_hello_t;
typedef Sf__V1__Welcome     sf_welcome_t;
typedef Sf__V1__Heartbeat   sf_heartbeat_t;
typedef Sf__V1__Inventory   sf_inventory_t;
typedef Sf__V1__Instance    sf_instance_t;
typedef Sf__V1__Disk        sf_disk_t;
typedef Sf__V1__JobAssign   sf_job_assign_t;
typedef Sf__V1__JobCancel   sf_job_cancel_t;
typedef Sf__V1__JobEvent    sf_job_event_t;
typedef Sf__V1__JobResult   sf_job_result_t;
typedef Sf__V1__Image       sf_image_t;
typedef Sf__V1__ErrorInfo   sf_error_info_t;
typedef Sf__V1__Tag         sf_tag_t;
typedef Sf__V1__JobGrant    sf_job_grant_t;
typedef Sf__V1__ImageDelete sf_image_delete_t;
typedef Sf__V1__ImageDeleted sf_image_deleted_t;
typedef Sf__V1__RateApplied sf_rate_applied_t;
typedef Sf__V1__Ack         sf_ack_t;
typedef Sf__V1__Acks        sf_acks_t;
typedef Sf__V1__JobQuery    sf_job_query_t;
typedef Sf__V1__JobStatus   sf_job_status_t;
typedef Sf__V1__Holding     sf_holding_t;
typedef Sf__V1__GcList      sf_gc_list_t;
typedef Sf__V1__GcHoldings  sf_gc_holdings_t;
typedef Sf__V1__GcRemove    sf_gc_remove_t;
typedef Sf__V1__GcRemoved   sf_gc_removed_t;
typedef Sf__V1__Restore     sf_restore_t;
typedef Sf__V1__Verify      sf_verify_t;
typedef Sf__V1__VerifyResult sf_verify_result_t;
typedef Sf__V1__Incremental sf_incremental_t;
typedef Sf__V1__IncrementalDisk sf_incremental_disk_t;

#define SF_ENVELOPE_INIT    SF__V1__ENVELOPE__INIT
#define SF_HELLO_INIT       SF__V1__HELLO__INIT
#define SF_WELCOME_INIT     SF__V1__WELCOME__INIT
#define SF_HEARTBEAT_INIT   SF__V1__HEARTBEAT__INIT
#define SF_INVENTORY_INIT   SF__V1__INVENTORY__INIT
#define SF_INSTANCE_INIT    SF__V1__INSTANCE__INIT
#define SF_DISK_INIT        SF__V1__DISK__INIT
#define SF_JOB_ASSIGN_INIT  SF__V1__JOB_ASSIGN__INIT
#define SF_JOB_CANCEL_INIT  SF__V1__JOB_CANCEL__INIT
#define SF_JOB_EVENT_INIT   SF__V1__JOB_EVENT__INIT
#define SF_JOB_RESULT_INIT  SF__V1__JOB_RESULT__INIT
#define SF_IMAGE_INIT       SF__V1__IMAGE__INIT
#define SF_ERROR_INFO_INIT  SF__V1__ERROR_INFO__INIT
#define SF_TAG_INIT         SF__V1__TAG__INIT
#define SF_JOB_GRANT_INIT   SF__V1__JOB_GRANT__INIT
#define SF_IMAGE_DELETE_INIT SF__V1__IMAGE_DELETE__INIT
#define SF_IMAGE_DELETED_INIT SF__V1__IMAGE_DELETED__INIT
#define SF_RATE_APPLIED_INIT SF__V1__RATE_APPLIED__INIT
#define SF_ACK_INIT         SF__V1__ACK__INIT
#define SF_ACKS_INIT        SF__V1__ACKS__INIT
#define SF_JOB_QUERY_INIT   SF__V1__JOB_QUERY__INIT
#define SF_JOB_STATUS_INIT  SF__V1__JOB_STATUS__INIT
#define SF_HOLDING_INIT     SF__V1__HOLDING__INIT
#define SF_GC_LIST_INIT     SF__V1__GC_LIST__INIT
#define SF_GC_HOLDINGS_INIT SF__V1__GC_HOLDINGS__INIT
#define SF_GC_REMOVE_INIT   SF__V1__GC_REMOVE__INIT
#define SF_GC_REMOVED_INIT  SF__V1__GC_REMOVED__INIT
#define SF_RESTORE_INIT     SF__V1__RESTORE__INIT
#define SF_VERIFY_INIT      SF__V1__VERIFY__INIT
#define SF_VERIFY_RESULT_INIT SF__V1__VERIFY_RESULT__INIT
#define SF_INCREMENTAL_INIT SF__V1__INCREMENTAL__INIT
#define SF_INCREMENTAL_DISK_INIT SF__V1__INCREMENTAL_DISK__INIT

//  Body selectors, e.g. env->body_case == SF_BODY_JOB_RESULT
#define SF_BODY_NONE        SF__V1__ENVELOPE__BODY__NOT_SET
#define SF_BODY_HELLO       SF__V1__ENVELOPE__BODY_HELLO
#define SF_BODY_WELCOME     SF__V1__ENVELOPE__BODY_WELCOME
#define SF_BODY_HEARTBEAT   SF__V1__ENVELOPE__BODY_HEARTBEAT
#define SF_BODY_INVENTORY   SF__V1__ENVELOPE__BODY_INVENTORY
#define SF_BODY_JOB_ASSIGN  SF__V1__ENVELOPE__BODY_JOB_ASSIGN
#define SF_BODY_JOB_CANCEL  SF__V1__ENVELOPE__BODY_JOB_CANCEL
#define SF_BODY_JOB_EVENT   SF__V1__ENVELOPE__BODY_JOB_EVENT
#define SF_BODY_JOB_RESULT  SF__V1__ENVELOPE__BODY_JOB_RESULT
#define SF_BODY_ERROR       SF__V1__ENVELOPE__BODY_ERROR
#define SF_BODY_JOB_GRANT   SF__V1__ENVELOPE__BODY_JOB_GRANT
#define SF_BODY_IMAGE_DELETE SF__V1__ENVELOPE__BODY_IMAGE_DELETE
#define SF_BODY_IMAGE_DELETED SF__V1__ENVELOPE__BODY_IMAGE_DELETED
#define SF_BODY_RATE_APPLIED SF__V1__ENVELOPE__BODY_RATE_APPLIED
#define SF_BODY_ACKS        SF__V1__ENVELOPE__BODY_ACKS
#define SF_BODY_JOB_QUERY   SF__V1__ENVELOPE__BODY_JOB_QUERY
#define SF_BODY_JOB_STATUS  SF__V1__ENVELOPE__BODY_JOB_STATUS
#define SF_BODY_GC_LIST     SF__V1__ENVELOPE__BODY_GC_LIST
#define SF_BODY_GC_HOLDINGS SF__V1__ENVELOPE__BODY_GC_HOLDINGS
#define SF_BODY_GC_REMOVE   SF__V1__ENVELOPE__BODY_GC_REMOVE
#define SF_BODY_GC_REMOVED  SF__V1__ENVELOPE__BODY_GC_REMOVED

//  What a Holding is (GcHoldings, GcRemove, GcRemoved)
#define SF_HOLDING_IMAGE    SF__V1__HOLDING_KIND__HOLDING_KIND_IMAGE
#define SF_HOLDING_TEMP     SF__V1__HOLDING_KIND__HOLDING_KIND_TEMP
#define SF_HOLDING_SCRATCH  SF__V1__HOLDING_KIND__HOLDING_KIND_SCRATCH
#define SF_HOLDING_SNAP     SF__V1__HOLDING_KIND__HOLDING_KIND_SNAP
#define SF_HOLDING_CLONE    SF__V1__HOLDING_KIND__HOLDING_KIND_CLONE
#define SF_HOLDING_LAST     SF_HOLDING_CLONE

//  Phase and enum values
#define SF_PHASE_QUEUED     SF__V1__PHASE__PHASE_QUEUED
#define SF_PHASE_PAUSED     SF__V1__PHASE__PHASE_PAUSED
#define SF_PHASE_RESUMED    SF__V1__PHASE__PHASE_RESUMED
#define SF_PHASE_CONVERTED  SF__V1__PHASE__PHASE_CONVERTED
#define SF_PHASE_UPLOADED   SF__V1__PHASE__PHASE_UPLOADED
#define SF_PHASE_DONE       SF__V1__PHASE__PHASE_DONE
#define SF_PHASE_FAILED     SF__V1__PHASE__PHASE_FAILED
#define SF_PHASE_UPLOAD_WAIT SF__V1__PHASE__PHASE_UPLOAD_WAIT
#define SF_PHASE_LAST       SF_PHASE_UPLOAD_WAIT

#define SF_JOB_STATE_RUNNING  SF__V1__JOB_STATE__JOB_STATE_RUNNING
#define SF_JOB_STATE_FINISHED SF__V1__JOB_STATE__JOB_STATE_FINISHED
#define SF_JOB_STATE_UNKNOWN  SF__V1__JOB_STATE__JOB_STATE_UNKNOWN
#define SF_JOB_STATE_STALE    SF__V1__JOB_STATE__JOB_STATE_STALE
#define SF_JOB_STATE_LAST     SF_JOB_STATE_STALE

#define SF_DISK_FILE        SF__V1__DISK_TYPE__DISK_TYPE_FILE
#define SF_DISK_BLOCK       SF__V1__DISK_TYPE__DISK_TYPE_BLOCK
#define SF_DISK_RBD         SF__V1__DISK_TYPE__DISK_TYPE_RBD
#define SF_DISK_OTHER       SF__V1__DISK_TYPE__DISK_TYPE_OTHER

#define SF_STATE_RUNNING    SF__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING
#define SF_STATE_PAUSED     SF__V1__INSTANCE_STATE__INSTANCE_STATE_PAUSED
#define SF_STATE_SHUTOFF    SF__V1__INSTANCE_STATE__INSTANCE_STATE_SHUTOFF
#define SF_STATE_OTHER      SF__V1__INSTANCE_STATE__INSTANCE_STATE_OTHER

//  Pack env (its version is forced to SF_WIRE_VERSION) into a new frame.
//  Caller owns the frame. Returns NULL with err set if it exceeds the cap.
zframe_t *
    sf_wire_encode (sf_envelope_t *env, sf_err_t *err);

//  Decode and validate one frame. Caller owns the result and frees it with
//  sf_wire_free. Returns NULL with err (SF_EPROTO) on any problem.
sf_envelope_t *
    sf_wire_decode (zframe_t *frame, sf_err_t *err);

//  Walk a packed envelope's wire format along the schema, without
//  allocating: refuse malformed tags and lengths, a repeated field with
//  more entries than its cap (SF_WIRE_MAX_INSTANCES, ..._DISKS, ..._CHAIN,
//  ..._TAGS, ..._STRATEGIES, ..._RUNNING, ..._IMAGES, ..._ACKS,
//  ..._HOLDINGS), and a message with
//  more than 64 other fields. sf_wire_decode calls it before protobuf-c
//  unpacks (and allocates). Returns 0 or -1 with err (SF_EPROTO naming the
//  field, e.g. "field 'instance.disks' has more than 64 entries").
int
    sf_wire_scan (const void *data, size_t size, sf_err_t *err);

//  Free a decoded envelope. Nullifies *env_p.
void
    sf_wire_free (sf_envelope_t **env_p);

//  Message constructors, for what every sender builds alike (the worker,
//  the scheduler's test harness and the scale simulator). The results
//  point at what they are given (borrowed) and live on the caller's stack:
//      sf_heartbeat_t beat = SF_HEARTBEAT_INIT;
//      sf_envelope_t env = sf_wire_envelope (SF_BODY_HEARTBEAT, &beat);

//  An envelope carrying body, the message of the kind body_case names
//  (SF_BODY_HELLO: an sf_hello_t *, SF_BODY_JOB_EVENT: an sf_job_event_t *,
//  ...). An unknown body_case is a programming error (asserts).
sf_envelope_t
    sf_wire_envelope (int body_case, void *body);

//  A JobEvent of job_id's attempt entering phase after ms, with bytes,
//  stamped now (at_ms); no text.
sf_job_event_t
    sf_wire_job_event (const char *job_id, uint32_t attempt, int phase, uint64_t ms,
                       uint64_t bytes);

//  The answer to grant (RateApplied): its job, attempt and rate.
sf_rate_applied_t
    sf_wire_rate_applied (const sf_job_grant_t *grant);

//  The Ack of a JobEvent or JobResult (a result: phase PHASE_DONE, at_ms
//  0) or, if job_id is NULL, of the ImageDeleted of request_id. Borrows
//  the strings.
sf_ack_t
    sf_wire_ack (const char *job_id, uint32_t attempt, int phase, uint64_t at_ms,
                 const char *request_id);

//  The Ack that acknowledges env (a JobEvent, JobResult or ImageDeleted;
//  borrows its strings). Returns false for any other message (nothing to
//  acknowledge).
bool
    sf_wire_ack_of (const sf_envelope_t *env, sf_ack_t *ack);

//  True if ack acknowledges env (as sf_wire_ack_of would build it).
bool
    sf_wire_ack_matches (const sf_ack_t *ack, const sf_envelope_t *env);

//  Send env on sock. If routing_id is not NULL (ROUTER side), it is sent
//  first (copied, not consumed). Returns 0 or -1 with err set (SF_ENODE
//  if a mandatory ROUTER has no connection to routing_id).
int
    sf_wire_send (void *sock, zframe_t *routing_id, sf_envelope_t *env, sf_err_t *err);

//  Receive one message from sock. If routing_id_p is not NULL (ROUTER
//  side), the first frame is returned there (caller owns it; set even when
//  the body fails to decode, so the caller can answer or count the peer).
//  Returns the envelope, or NULL with err set.
sf_envelope_t *
    sf_wire_recv (void *sock, zframe_t **routing_id_p, sf_err_t *err);

//  Same, and if peer_p is not NULL, sets *peer_p to the sender's name as
//  CURVE authentication vouches for it (sf_cert_peer of the body frame),
//  or NULL on a plaintext socket; set on failure too. Caller owns it.
sf_envelope_t *
    sf_wire_recv_peer (void *sock, zframe_t **routing_id_p, char **peer_p,
                       sf_err_t *err);

//  Name of a body case ("job_result") or phase ("resumed"), for logs.
const char *
    sf_wire_body_name (int body_case);
const char *
    sf_wire_phase_name (int phase);

//  The strategy of a restore job (JobAssign.restore set): a data job, not
//  a snapshot strategy (sf_strategies does not know it)
#define SF_WIRE_RESTORE     "restore"

//  The strategy of a verify job (JobAssign.verify set): a data job too
#define SF_WIRE_VERIFY      "verify"

//  A restore's target path (field names it in the error): absolute, no
//  empty, '.' or '..' component, no control character, shorter than
//  SF_WIRE_MAX_PATH. Returns 0 or -1 with err (SF_EINVAL, or SF_EPROTO if
//  it is not a valid string at all).
int
    sf_wire_path_check (const char *path, const char *field, sf_err_t *err);

//  A restore's RBD target or an RBD image id: "POOL/NAME" or
//  "POOL/NAMESPACE/NAME", no empty component, no space, control
//  character, '@', ':' or '\', at most SF_WIRE_MAX_RBD_NAME bytes.
//  Returns 0 or -1 with err (SF_EINVAL).
#define SF_WIRE_MAX_RBD_NAME    400
int
    sf_wire_rbd_name_check (const char *name, const char *field, sf_err_t *err);

//  JobResult.method: 1 to SF_WIRE_MAX_METHOD of [a-z0-9-]
#define SF_WIRE_MAX_METHOD      48
bool
    sf_wire_method_valid (const char *method);

//  True if format is one a restore writes: "qcow2" or "raw"
bool
    sf_wire_restore_format_valid (const char *format);

//  Checkpoints snapfleet makes (issue 13): "snapfleet-" + the catalogue id
//  + "-" + the job id (the worker names them), a safe name (sf_name_is_safe)
//  of at most 128 chars in all; a worker deletes only its catalogue's.
#define SF_WIRE_CHECKPOINT_PREFIX   "snapfleet-"
bool
    sf_wire_checkpoint_valid (const char *name);

//  Name of a holding kind ("image", "temp", "scratch", "snapshot",
//  "clone"), "unknown" for another value.
const char *
    sf_wire_holding_kind_name (int kind);

//  Self test of this class
void
    sf_wire_test (bool verbose);

#endif
