/*  =========================================================================
    sf_strategy - which snapshot strategy an instance gets, and which ones
    it may be given

    A row per strategy: the storage classes and states it can capture. The
    default is the first row that fits; a forced strategy must fit its own
    row. Every (storage class, state) pair fits at most one row today, so
    --strategy cannot change what happens, only insist on it (a script
    that wants "rbd or nothing" gets a clear refusal instead of a pause).
    =========================================================================
*/
#include "sf_sched_classes.h"

typedef struct {
    const char *name;
    const char *classes [4];    //  Storage classes it captures, NULL-ended
    const char *states [3];     //  Instance states it captures, NULL-ended
    bool needs_ceph;            //  Worker needs [storage.rbd] for it
} strategy_t;

static const strategy_t s_strategies [] = {
    { SF_STRATEGY_FILE_COLD, { "file", NULL }, { "running", "paused", NULL }, false },
    { SF_STRATEGY_RBD, { "rbd", NULL }, { "running", "paused", NULL }, true },
    { SF_STRATEGY_MIXED, { "mixed", NULL }, { "running", "paused", NULL }, true },
    { SF_STRATEGY_OFFLINE, { "file", "rbd", "mixed", NULL }, { "shutoff", NULL }, false },
    { NULL }
};

static bool
s_in (const char *const *list, const char *value)
{
    for (; *list; list++)
        if (streq (*list, value))
            return true;
    return false;
}

static const strategy_t *
s_lookup (const char *name)
{
    for (const strategy_t *row = s_strategies; row->name; row++)
        if (streq (row->name, name))
            return row;
    return NULL;
}

static bool
s_fits (const strategy_t *row, const char *state, const char *storage_class)
{
    return s_in (row->classes, storage_class) && s_in (row->states, state);
}

//  --------------------------------------------------------------------------
//  Choosing and checking

const char *
sf_strategy_choose (const char *state, const char *storage_class, sf_err_t *err)
{
    assert (state);
    assert (storage_class);
    for (const strategy_t *row = s_strategies; row->name; row++)
        if (s_fits (row, state, storage_class))
            return row->name;
    if (streq (storage_class, "none") || !*storage_class)
        sf_err_set (err, SF_EINVAL, "instance has no disks to snapshot");
    else
    if (!streq (storage_class, "file") && !streq (storage_class, "rbd")
    &&  !streq (storage_class, "mixed"))
        sf_err_set (err, SF_ENOTSUP, "unknown storage class '%s'", storage_class);
    else
        sf_err_set (err, SF_ESTATE,
                    "instance is in state '%s'; only running, paused or shut-off "
                    "instances can be snapshotted", state);
    return NULL;
}

bool
sf_strategy_known (const char *name)
{
    assert (name);
    return s_lookup (name) != NULL;
}

int
sf_strategy_check (const char *strategy, const char *instance, const char *state,
                   const char *storage_class, sf_err_t *err)
{
    assert (strategy && instance && state && storage_class);
    const strategy_t *row = s_lookup (strategy);
    if (!row)
        return sf_err_set (err, SF_EINVAL, "unknown strategy '%.64s' (known: %s, %s, "
                           "%s, %s)", strategy, SF_STRATEGY_FILE_COLD, SF_STRATEGY_RBD,
                           SF_STRATEGY_MIXED, SF_STRATEGY_OFFLINE);
    if (!s_fits (row, state, storage_class))
        return sf_err_set (err, SF_EINVAL,
                           "strategy '%s' does not fit instance '%s' (storage class %s, %s)",
                           strategy, instance, *storage_class? storage_class: "none",
                           state);
    return 0;
}

bool
sf_strategy_needs_ceph (const char *strategy)
{
    assert (strategy);
    const strategy_t *row = s_lookup (strategy);
    return row && row->needs_ceph;
}

//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    const char *state;
    const char *storage_class;
    const char *strategy;       //  Expected default, NULL if none
    int code;                   //  Expected error code if none
} choice_t;

static const choice_t s_choices [] = {
    { "running", "file", "file-cold", 0 },
    { "paused", "file", "file-cold", 0 },
    { "shutoff", "file", "offline", 0 },
    { "running", "rbd", "rbd", 0 },
    { "paused", "rbd", "rbd", 0 },
    { "shutoff", "rbd", "offline", 0 },
    { "running", "mixed", "mixed", 0 },
    { "paused", "mixed", "mixed", 0 },
    { "shutoff", "mixed", "offline", 0 },
    { "running", "none", NULL, SF_EINVAL },
    { "shutoff", "none", NULL, SF_EINVAL },
    { "running", "", NULL, SF_EINVAL },
    { "running", "nfs", NULL, SF_ENOTSUP },
    { "other", "file", NULL, SF_ESTATE },
    { "other", "rbd", NULL, SF_ESTATE },
    { "other", "mixed", NULL, SF_ESTATE },
    { NULL }
};

void
sf_strategy_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_strategy: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    for (const choice_t *choice = s_choices; choice->state; choice++) {
        sf_err_clear (&err);
        const char *got = sf_strategy_choose (choice->state, choice->storage_class, &err);
        if (choice->strategy) {
            assert (got && streq (got, choice->strategy));
            //  The default always passes the check, and nothing else does
            assert (sf_strategy_check (got, "g1", choice->state, choice->storage_class,
                                       &err) == 0);
            for (const strategy_t *row = s_strategies; row->name; row++)
                assert (streq (row->name, got)
                     || sf_strategy_check (row->name, "g1", choice->state,
                                           choice->storage_class, &err) == -1);
        }
        else {
            assert (got == NULL && err.code == choice->code);
            for (const strategy_t *row = s_strategies; row->name; row++)
                assert (sf_strategy_check (row->name, "g1", choice->state,
                                           choice->storage_class, &err) == -1);
        }
    }
    assert (sf_strategy_choose ("running", "nfs", NULL) == NULL);     //  err optional
    assert (sf_strategy_choose ("running", "nfs", &err) == NULL);
    assert (streq (err.text, "unknown storage class 'nfs'"));
    assert (sf_strategy_choose ("running", "none", &err) == NULL);
    assert (streq (err.text, "instance has no disks to snapshot"));
    assert (sf_strategy_choose ("other", "file", &err) == NULL);
    assert (streq (err.text, "instance is in state 'other'; only running, paused or "
                   "shut-off instances can be snapshotted"));

    assert (sf_strategy_check ("rbd", "g1", "running", "file", &err) == -1);
    assert (err.code == SF_EINVAL);
    assert (streq (err.text,
                   "strategy 'rbd' does not fit instance 'g1' (storage class file, running)"));
    assert (sf_strategy_check ("file-cold", "g2", "shutoff", "file", &err) == -1);
    assert (streq (err.text, "strategy 'file-cold' does not fit instance 'g2' "
                   "(storage class file, shutoff)"));
    assert (sf_strategy_check ("offline", "g3", "running", "", &err) == -1);
    assert (streq (err.text, "strategy 'offline' does not fit instance 'g3' "
                   "(storage class none, running)"));
    assert (sf_strategy_check ("crash", "g1", "running", "file", &err) == -1);
    assert (err.code == SF_EINVAL);
    assert (streq (err.text, "unknown strategy 'crash' (known: file-cold, rbd, mixed, "
                   "offline)"));

    assert (sf_strategy_known ("mixed") && !sf_strategy_known ("File-Cold"));
    assert (sf_strategy_needs_ceph ("rbd") && sf_strategy_needs_ceph ("mixed"));
    assert (!sf_strategy_needs_ceph ("file-cold") && !sf_strategy_needs_ceph ("offline"));
    assert (!sf_strategy_needs_ceph ("nope"));
    //  @end
    printf ("OK\n");
}
