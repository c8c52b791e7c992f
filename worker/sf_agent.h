/*  =========================================================================
    sf_agent - the worker object: configuration, the DEALER connection to
    the scheduler, and dispatch of jobs to task actors

    One zloop on one thread: the scheduler socket, a heartbeat timer, an
    inventory timer that asks the scanner actor for a fresh view, and one
    reader per running task whose events and result are forwarded as they
    come. Nothing on this thread waits on libvirt or qemu-img.

    Protocol (contract.md): Hello + Inventory on start and whenever the
    scheduler answers ErrorInfo{SF_ENODE}; Heartbeat every heartbeat;
    Inventory again when the scan changed. A JobAssign it cannot take gets
    an immediate JobResult{ok=0}; a repeat of a running job_id+attempt and
    an older attempt are ignored (fencing); a repeat of a finished one gets
    its stored result again, so a lost result never causes a second pause.
    =========================================================================
*/
#ifndef SF_AGENT_H_INCLUDED
#define SF_AGENT_H_INCLUDED

typedef struct _sf_agent_t sf_agent_t;

//  Bounds on what the scheduler can make the agent do
#define SF_AGENT_BEAT_MIN_MS    100     //  a Welcome's heartbeat is clamped
#define SF_AGENT_BEAT_MAX_MS    60000   //  to this range
#define SF_AGENT_HWM            1000    //  messages queued each way on the DEALER
#define SF_AGENT_MAX_MSG        (SF_WIRE_MAX_BYTES + 4096)  //  bytes, framing slack

//  The parts an agent runs jobs with, built by its caller
typedef struct {
    sf_stor_t *stor;            //  RBD storage; NULL = RBD support off
    sf_conv_t *conv;            //  the disk converter, never NULL
} sf_agent_parts_t;

//  Create the worker: resolve this program's path, prepare the work
//  directory (stale scratch from a killed run is removed), connect the
//  DEALER and start the scanner. cfg is copied. The parts are the
//  production ones cfg names: RBD storage if [storage.rbd] ceph_conf is
//  set, qemu-img. Returns NULL with err.
sf_agent_t *
    sf_agent_new (const sf_agent_cfg_t *cfg, sf_err_t *err);

//  The same on parts built by the caller (borrowed; they must outlive the
//  agent): a test injects its own storage driver and converter. cfg's
//  [storage.rbd] settings other than mode and clone_pool are not used.
sf_agent_t *
    sf_agent_new_with (const sf_agent_cfg_t *cfg, const sf_agent_parts_t *parts,
                       sf_err_t *err);

//  Stop everything (running tasks are cancelled: qemu-img killed, guests
//  resumed, scratch removed) and free. Nullifies *self_p.
void
    sf_agent_destroy (sf_agent_t **self_p);

//  Run the event loop until stop_fd (a signalfd, or -1) or pipe (an actor
//  pipe, or NULL; "$TERM") asks to stop. Stopping cancels running jobs and
//  waits (bounded) for their results so they still reach the scheduler.
//  Returns 0.
int
    sf_agent_run (sf_agent_t *self, int stop_fd, zsock_t *pipe);

//  Number of invalid messages from the scheduler dropped so far.
size_t
    sf_agent_invalid (sf_agent_t *self);

//  What sf_agent_actor is started with
typedef struct {
    const sf_agent_cfg_t *cfg;
    const sf_agent_parts_t *parts;  //  NULL: sf_agent_new, else sf_agent_new_with
} sf_agent_actor_args_t;

//  The agent as an actor (self tests): args is a const
//  sf_agent_actor_args_t *. Pipe commands: "$TERM"; "INVALID" -> replies
//  the count as a string; "LIMITS" -> "HEARTBEAT_MS MAXMSGSIZE SNDHWM
//  RCVHWM", the current heartbeat period and the DEALER's limits.
void
    sf_agent_actor (zsock_t *pipe, void *args);

//  Self test of this class
void
    sf_agent_test (bool verbose);

#endif
