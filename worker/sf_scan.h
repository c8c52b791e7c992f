/*  =========================================================================
    sf_scan - the inventory scanner, an actor with its own hypervisor
    connection

    Listing domains and probing every disk with qemu-img takes time the
    agent's event loop must not spend, so it happens here. On each "SCAN"
    from its pipe the scanner (1) resumes what the pause journal says older
    worker runs paused and left paused, (2) lists every domain with sizes,
    and (3) answers with one of:
        "INVENTORY" + frame     an encoded sf_wire Envelope{Inventory}
        "FAILED" + text         the hypervisor could not be listed
    It reconnects on the next SCAN after a failure.
    =========================================================================
*/
#ifndef SF_SCAN_H_INCLUDED
#define SF_SCAN_H_INCLUDED

//  Arguments of the actor (copied before zactor_new returns)
typedef struct {
    const char *uri;            //  hypervisor
    const char *workdir;        //  holds the pause journal
    const char *run_id;         //  this worker run (journal owner)
} sf_scan_args_t;

//  Start a scanner: zactor_new (sf_scan_actor, &args).
void
    sf_scan_actor (zsock_t *pipe, void *args);

//  Encode domains (a list from sf_hv_list, borrowed) as an Inventory
//  envelope frame. Returns the frame (caller owns it) or NULL with err.
zframe_t *
    sf_scan_encode (zlistx_t *domains, sf_err_t *err);

//  Find an instance in a decoded Inventory envelope; NULL if absent.
const sf_instance_t *
    sf_scan_find (const sf_envelope_t *inventory, const char *uuid);

//  Self test of this class
void
    sf_scan_test (bool verbose);

#endif
