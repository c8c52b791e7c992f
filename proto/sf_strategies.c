/*  =========================================================================
    sf_strategies - the snapshot strategies: the one table of rules

    A row per strategy: the storage classes and states it can capture and
    whether it needs Ceph. The default is the first row that fits (so
    file-live before file-cold); a forced strategy must fit its own row.
    =========================================================================
*/
#include "sf_core.h"

typedef struct {
    const char *name;
    const char *classes [4];    //  Storage classes it captures, NULL-ended
    const char *states [3];     //  Instance states it captures, NULL-ended
    bool needs_ceph;            //  Worker needs [storage.rbd] for it
} strategy_t;

static const strategy_t s_strategies [] = {
    { SF_STRATEGY_FILE_LIVE, { "file", NULL }, { "running", "paused", NULL }, false },
    { SF_STRATEGY_FILE_COLD, { "file", NULL }, { "running", "paused", NULL }, false },
    { SF_STRATEGY_RBD, { "rbd", NULL }, { "running", "paused", NULL }, true },
    { SF_STRATEGY_MIXED, { "mixed", NULL }, { "running", "paused", NULL }, true },
    { SF_STRATEGY_OFFLINE, { "file", "rbd", "mixed", NULL }, { "shutoff", NULL }, false },
};

#define S_COUNT (sizeof (s_strategies) / sizeof (s_strategies [0]))

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
    for (size_t i = 0; i < S_COUNT; i++)
        if (streq (s_strategies [i].name, name))
            return &s_strategies [i];
    return NULL;
}

static bool
s_fits (const strategy_t *row, const char *state, const char *storage_class)
{
    return s_in (row->classes, storage_class) && s_in (row->states, state);
}

//  --------------------------------------------------------------------------
//  The table

size_t
sf_strategies_count (void)
{
    return S_COUNT;
}

const char *
sf_strategies_name (size_t index)
{
    return index < S_COUNT ? s_strategies [index].name : NULL;
}

bool
sf_strategies_known (const char *name)
{
    assert (name);
    return s_lookup (name) != NULL;
}

//  --------------------------------------------------------------------------
//  Choosing and checking

const char *
sf_strategies_choose (const char *state, const char *storage_class, sf_err_t *err)
{
    assert (state);
    assert (storage_class);
    for (size_t i = 0; i < S_COUNT; i++)
        if (s_fits (&s_strategies [i], state, storage_class))
            return s_strategies [i].name;
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

int
sf_strategies_check (const char *strategy, const char *instance, const char *state,
                     const char *storage_class, sf_err_t *err)
{
    assert (strategy && instance && state && storage_class);
    const strategy_t *row = s_lookup (strategy);
    if (!row)
        return sf_err_set (err, SF_EINVAL, "unknown strategy '%.64s' (known: %s, %s, "
                           "%s, %s, %s)", strategy, SF_STRATEGY_FILE_LIVE,
                           SF_STRATEGY_FILE_COLD, SF_STRATEGY_RBD, SF_STRATEGY_MIXED,
                           SF_STRATEGY_OFFLINE);
    if (!s_fits (row, state, storage_class))
        return sf_err_set (err, SF_EINVAL,
                           "strategy '%s' does not fit instance '%s' (storage class %s, %s)",
                           strategy, instance, *storage_class? storage_class: "none",
                           state);
    return 0;
}

bool
sf_strategies_needs_ceph (const char *strategy)
{
    assert (strategy);
    const strategy_t *row = s_lookup (strategy);
    return row && row->needs_ceph;
}

bool
sf_strategies_class_needs_ceph (const char *storage_class)
{
    assert (storage_class);
    for (size_t i = 0; i < S_COUNT; i++)
        if (s_strategies [i].needs_ceph && s_in (s_strategies [i].classes, storage_class))
            return true;
    return false;
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
    { "running", "file", "file-live", 0 },
    { "paused", "file", "file-live", 0 },
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
sf_strategies_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_strategies: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    for (const choice_t *choice = s_choices; choice->state; choice++) {
        sf_err_clear (&err);
        const char *got = sf_strategies_choose (choice->state, choice->storage_class, &err);
        if (choice->strategy) {
            assert (got && streq (got, choice->strategy));
            //  The default always passes the check, and nothing else does
            //  but the other way of copying file disks
            assert (sf_strategies_check (got, "g1", choice->state, choice->storage_class,
                                         &err) == 0);
            for (size_t i = 0; i < sf_strategies_count (); i++) {
                const char *name = sf_strategies_name (i);
                bool file_alt = (streq (got, "file-cold") || streq (got, "file-live"))
                             && (streq (name, "file-cold") || streq (name, "file-live"));
                assert (streq (name, got) || file_alt
                     || sf_strategies_check (name, "g1", choice->state,
                                             choice->storage_class, &err) == -1);
                if (file_alt)
                    assert (sf_strategies_check (name, "g1", choice->state,
                                                 choice->storage_class, &err) == 0);
            }
        }
        else {
            assert (got == NULL && err.code == choice->code);
            for (size_t i = 0; i < sf_strategies_count (); i++)
                assert (sf_strategies_check (sf_strategies_name (i), "g1", choice->state,
                                             choice->storage_class, &err) == -1);
        }
    }
    assert (sf_strategies_choose ("running", "nfs", NULL) == NULL);     //  err optional
    assert (sf_strategies_choose ("running", "nfs", &err) == NULL);
    assert (streq (err.text, "unknown storage class 'nfs'"));
    assert (sf_strategies_choose ("running", "none", &err) == NULL);
    assert (streq (err.text, "instance has no disks to snapshot"));
    assert (sf_strategies_choose ("other", "file", &err) == NULL);
    assert (streq (err.text, "instance is in state 'other'; only running, paused or "
                   "shut-off instances can be snapshotted"));

    assert (sf_strategies_check ("rbd", "g1", "running", "file", &err) == -1);
    assert (err.code == SF_EINVAL);
    assert (streq (err.text,
                   "strategy 'rbd' does not fit instance 'g1' (storage class file, running)"));
    assert (sf_strategies_check ("file-cold", "g2", "shutoff", "file", &err) == -1);
    assert (streq (err.text, "strategy 'file-cold' does not fit instance 'g2' "
                   "(storage class file, shutoff)"));
    assert (sf_strategies_check ("offline", "g3", "running", "", &err) == -1);
    assert (streq (err.text, "strategy 'offline' does not fit instance 'g3' "
                   "(storage class none, running)"));
    assert (sf_strategies_check ("crash", "g1", "running", "file", &err) == -1);
    assert (err.code == SF_EINVAL);
    assert (streq (err.text, "unknown strategy 'crash' (known: file-live, file-cold, rbd, "
                   "mixed, offline)"));
    assert (sf_strategies_check ("file-live", "g4", "shutoff", "file", &err) == -1);
    assert (sf_strategies_check ("file-live", "g4", "running", "mixed", &err) == -1);
    assert (sf_strategies_check ("file-live", "g4", "paused", "file", &err) == 0);
    assert (!sf_strategies_needs_ceph ("file-live"));

    assert (sf_strategies_known ("mixed") && !sf_strategies_known ("File-Cold"));
    assert (sf_strategies_needs_ceph ("rbd") && sf_strategies_needs_ceph ("mixed"));
    assert (!sf_strategies_needs_ceph ("file-cold") && !sf_strategies_needs_ceph ("offline"));
    assert (!sf_strategies_needs_ceph ("nope"));
    assert (sf_strategies_class_needs_ceph ("rbd") && sf_strategies_class_needs_ceph ("mixed"));
    assert (!sf_strategies_class_needs_ceph ("file") && !sf_strategies_class_needs_ceph ("none"));
    assert (sf_strategies_count () == 5 && streq (sf_strategies_name (0), "file-live"));
    assert (streq (sf_strategies_name (1), "file-cold"));
    assert (sf_strategies_name (5) == NULL);
    //  @end
    printf ("OK\n");
}
