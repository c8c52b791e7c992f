/*  =========================================================================
    sf_naming - the names of the objects snapfleet makes, and the test that
    an object is one of them

    Every object a job makes outside its scratch directory is named from
    the scheduler's catalogue id (16 lowercase hex digits, random per
    database, sent in every JobAssign and ImageDelete) and the job id:

      RBD snapshot   snapfleet-<catalog_id>-<job_id>          on the source
      RBD clone      <image>-snapfleet-<catalog_id>-<job_id>  of that snapshot

    A worker creates only such names and deletes, unprotects or flattens
    only objects whose name passes sf_naming_is_snap / sf_naming_is_clone
    for the catalogue and job it was told; the scheduler accepts an image
    in a result only if its name is the job's. Job ids are safe identifiers
    (sf_name_is_safe); a catalogue id never contains '-', so the last
    "-snapfleet-" in a clone name separates the parent image's name.
    =========================================================================
*/
#ifndef SF_NAMING_H_INCLUDED
#define SF_NAMING_H_INCLUDED

//  Length of a catalogue id, without the terminating NUL
#define SF_NAMING_ID_LEN    16

//  True if id is a catalogue id: exactly SF_NAMING_ID_LEN lowercase hex
//  digits.
bool
    sf_naming_id_valid (const char *id);

//  Write a new random catalogue id into id (from the kernel's random
//  source). Returns 0, or -1 with err set (SF_EIO) if none could be
//  read.
int
    sf_naming_id_new (char id [SF_NAMING_ID_LEN + 1], sf_err_t *err);

//  Write the job's RBD snapshot name into buf. Returns 0, or -1 with err
//  set (SF_EINVAL) if the catalogue id or job id is invalid or the name
//  does not fit in size bytes.
int
    sf_naming_snap (char *buf, size_t size, const char *catalog_id, const char *job_id,
                    sf_err_t *err);

//  Write the name of the job's clone of image into buf. Returns 0, or -1
//  with err set (SF_EINVAL) as sf_naming_snap, or if image is empty.
int
    sf_naming_clone (char *buf, size_t size, const char *image, const char *catalog_id,
                     const char *job_id, sf_err_t *err);

//  True if snap is the snapshot name of job_id in catalog_id; with job_id
//  NULL, of any job in catalog_id. False for an invalid catalogue id.
bool
    sf_naming_is_snap (const char *snap, const char *catalog_id, const char *job_id);

//  True if clone is the name of a clone made by job_id in catalog_id (any
//  job of catalog_id if job_id is NULL). If parent is not NULL, the
//  source image's name is written there (truncated to parent_size).
bool
    sf_naming_is_clone (const char *clone, const char *catalog_id, const char *job_id,
                        char *parent, size_t parent_size);

//  True if name may name a domain that restore --as-domain defines: a
//  safe name (sf_name_is_safe) that does not start with "snapfleet-"
//  (snapfleet's own domains, such as a verification's transient guest,
//  are named so).
bool
    sf_naming_domain_valid (const char *name);

//  Write the name of the transient guest of verify job job_id into buf:
//  "snapfleet-verify-<job_id>". Returns 0, or -1 with err (SF_EINVAL) if
//  job_id is not a safe name or the name does not fit.
int
    sf_naming_verify_domain (char *buf, size_t size, const char *job_id, sf_err_t *err);

//  True if name is the transient guest of a verify job (of any job): the
//  inventory leaves such guests out, so no snapshot takes them.
bool
    sf_naming_is_verify_domain (const char *name);

//  Self test of this class.
void
    sf_naming_test (bool verbose);

#endif
