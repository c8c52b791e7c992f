/*  =========================================================================
    sf_stor_ours - is a Ceph object one that snapfleet made for a job? The
    checks every removal of the worker passes first (sf_naming's names, a
    clone's parent), and the removal of one object

    Built on sf_stor's client API only (sf_stor_parent, sf_stor_list and
    the removals), so the checks cost the same calls, with the same
    deadline, as any other.
    =========================================================================
*/
#include "sf_worker_classes.h"

int
sf_stor_obj_exists (sf_stor_t *self, const sf_stor_obj_t *obj, bool *exists, sf_err_t *err)
{
    assert (self && obj && exists);
    *exists = false;
    if (obj->kind == SF_STOR_CLONE) {
        bool is_clone;
        return sf_stor_parent (self, &obj->spec, exists, &is_clone, NULL, err);
    }
    zlistx_t *objs = sf_stor_list (self, &obj->spec, obj->snap, err);
    if (!objs)
        return -1;
    const sf_stor_obj_t *found = (const sf_stor_obj_t *) zlistx_first (objs);
    for (; found && !*exists; found = (const sf_stor_obj_t *) zlistx_next (objs))
        *exists = found->kind == SF_STOR_SNAP && streq (found->snap, obj->snap);
    zlistx_destroy (&objs);
    return 0;
}

//  Refuse obj: not what job_id made

static int
s_not_ours (const sf_stor_obj_t *obj, const char *job_id, const char *why, sf_err_t *err)
{
    char name [520];
    sf_stor_spec_str (&obj->spec, name, sizeof (name));
    if (obj->kind == SF_STOR_SNAP)
        return sf_err_set (err, SF_EINVAL, "snapshot '%s@%s' is not one snapfleet made for "
                           "job %s; not deleted (%s)", name, obj->snap, job_id ? job_id : "",
                           why);
    return sf_err_set (err, SF_EINVAL, "image '%s' is not one snapfleet made for job %s; "
                       "not deleted (%s)", name, job_id ? job_id : "", why);
}

int
sf_stor_clone_check (sf_stor_t *self, const sf_stor_obj_t *obj, const char *catalog_id,
                     const char *job_id, bool *exists, sf_stor_obj_t *snap, sf_err_t *err)
{
    char source [256];
    *exists = false;
    memset (snap, 0, sizeof (*snap));
    if (!sf_naming_is_clone (obj->spec.image, catalog_id, job_id, source, sizeof (source)))
        return s_not_ours (obj, job_id, "not the job's clone name", err);
    bool is_clone;
    if (sf_stor_parent (self, &obj->spec, exists, &is_clone, snap, err))
        return -1;
    if (*exists && !is_clone)
        return s_not_ours (obj, job_id, "it is not a clone", err);
    if (*exists && snap->kind == SF_STOR_SNAP
    &&  (!sf_naming_is_snap (snap->snap, catalog_id, job_id)
         || !streq (snap->spec.image, source))) {
        char why [600], line [600];
        snprintf (why, sizeof (why), "its parent is %s",
                  sf_stor_obj_str (snap, line, sizeof (line)));
        return s_not_ours (obj, job_id, why, err);
    }
    return 0;
}

int
sf_stor_obj_check_ours (sf_stor_t *self, const sf_stor_obj_t *obj, const char *catalog_id,
                        const char *job_id, sf_err_t *err)
{
    assert (self && obj);
    if (obj->kind == SF_STOR_SNAP)
        return sf_naming_is_snap (obj->snap, catalog_id, job_id) ? 0
             : s_not_ours (obj, job_id, "not the job's snapshot name", err);
    bool exists;
    sf_stor_obj_t snap;
    return sf_stor_clone_check (self, obj, catalog_id, job_id, &exists, &snap, err);
}

int
sf_stor_obj_remove (sf_stor_t *self, const sf_stor_obj_t *obj, const char *catalog_id,
                    const char *job_id, sf_err_t *err)
{
    assert (self && obj);
    if (sf_stor_obj_check_ours (self, obj, catalog_id, job_id, err))
        return -1;
    if (obj->kind == SF_STOR_CLONE)
        return sf_stor_clone_remove (self, &obj->spec, err);
    return sf_stor_snap_remove (self, &obj->spec, obj->snap, err);
}
