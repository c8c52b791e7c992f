/*  =========================================================================
    sf_strategy - which snapshot strategy an instance gets

    The strategy follows from what the worker reported in its inventory:
    the instance's state and its storage class (derived by the worker from
    the domain XML, never configured). One function, so that the instance
    listing and the snapshot command can never disagree.
    =========================================================================
*/
#ifndef SF_STRATEGY_H_INCLUDED
#define SF_STRATEGY_H_INCLUDED

#include <stdbool.h>

//  Consistency levels that go with each strategy
#define SF_STRATEGY_FILE_COLD   "file-cold"     //  consistency "paused"
#define SF_STRATEGY_OFFLINE     "offline"       //  consistency "offline"

//  Choose the strategy for an instance in state (running|paused|shutoff|
//  other) with storage_class (file|rbd|mixed|none). Returns a static string
//  ("file-cold", "offline"), or NULL with err set: SF_ENOTSUP for a storage
//  class without a strategy yet (rbd, mixed, unknown), SF_EINVAL for an
//  instance without disks, SF_ESTATE for a state that cannot be captured.
const char *
    sf_strategy_choose (const char *state, const char *storage_class,
                        sf_err_t *err);

//  Self test of this class
void
    sf_strategy_test (bool verbose);

#endif
