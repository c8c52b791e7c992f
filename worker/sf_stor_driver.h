/*  =========================================================================
    sf_stor_driver - the table a block-storage driver fills (libvirt's
    driver-hypervisor.h): what sf_stor.c dispatches to, on a call thread
    with a deadline

    A driver includes this header after sf_worker_classes.h, defines one
    const sf_stor_driver_t and is either listed in s_drivers[] of sf_stor.c
    (production drivers, picked by name) or handed to sf_stor_new_with
    (a test's own driver).
    =========================================================================
*/
#ifndef SF_STOR_DRIVER_H_INCLUDED
#define SF_STOR_DRIVER_H_INCLUDED

//  Driver functions run on a call thread with a deadline and may block;
//  they get the connection handle their connect made, never the sf_stor_t.
//  They fill err with texts that name Ceph and the object ("ceph: cannot
//  ..."). connect gets the arg given to sf_stor_new_with (NULL through
//  sf_stor_new).
struct _sf_stor_driver_t {
    const char *name;
    int (*connect) (const sf_stor_cfg_t *cfg, void *arg, void **conn, sf_err_t *err);
    void (*disconnect) (void *conn);
    int (*size) (void *conn, const sf_stor_spec_t *spec, uint64_t *size, sf_err_t *err);
    int (*snap_create) (void *conn, const sf_stor_spec_t *spec, const char *snap,
                        sf_err_t *err);
    int (*snap_protect) (void *conn, const sf_stor_spec_t *spec, const char *snap,
                         sf_err_t *err);
    //  Unprotects first if protected; an absent snapshot or image is done
    int (*snap_remove) (void *conn, const sf_stor_spec_t *spec, const char *snap,
                        sf_err_t *err);
    int (*clone) (void *conn, const sf_stor_spec_t *spec, const char *snap,
                  const sf_stor_spec_t *clone, sf_err_t *err);
    //  An absent clone is done
    int (*clone_remove) (void *conn, const sf_stor_spec_t *clone, sf_err_t *err);
    //  Append (sf_stor_obj_t *, heap) the snapshots of spec whose name
    //  starts with prefix, each preceded by its clones
    int (*list) (void *conn, const sf_stor_spec_t *spec, const char *prefix,
                 zlistx_t *objs, sf_err_t *err);
    //  An image kept open across calls: *image gets the driver's handle
    int (*image_open) (void *conn, const sf_stor_spec_t *spec, void **image,
                       uint64_t *size, sf_err_t *err);
    int (*image_snap_create) (void *conn, void *image, const sf_stor_spec_t *spec,
                              const char *snap, sf_err_t *err);
    void (*image_close) (void *conn, void *image);
    //  The cluster's fsid into buf
    int (*cluster_id) (void *conn, char *buf, size_t size, sf_err_t *err);
    //  The parent snapshot of image clone: *exists false if the image is
    //  absent; *is_clone true if it has a parent; parent->kind 0 if it has
    //  no parent Ceph wants removed by name (none, flattened, or already
    //  in the trash), else SF_STOR_SNAP
    int (*parent) (void *conn, const sf_stor_spec_t *clone, bool *exists, bool *is_clone,
                   sf_stor_obj_t *parent, sf_err_t *err);
    //  Number of clones of snapshot snap of spec, those in the trash
    //  included (they keep it protected); 0 if it is absent
    int (*children) (void *conn, const sf_stor_spec_t *spec, const char *snap,
                     size_t *count, sf_err_t *err);
    //  Rename image spec to name in its pool and namespace; fails with
    //  EEXIST (SF_EEXIST) if an image of that name exists. NULL: the
    //  driver cannot (SF_ENOTSUP)
    int (*rename) (void *conn, const sf_stor_spec_t *spec, const char *name,
                   sf_err_t *err);
};

//  For drivers: set err to "ceph: cannot " + the formatted text + ": " +
//  strerror (-r), code SF_ECEPH (SF_EEXIST for EEXIST). Returns -1.
int
    sf_stor_fail (sf_err_t *err, int r, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  The production drivers
#ifdef SF_WITH_RBD
extern const sf_stor_driver_t sf_stor_rbd_driver;
#endif

#endif
