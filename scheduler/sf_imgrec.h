/*  =========================================================================
    sf_imgrec - an image's record in the store, as the commands that read an
    image back (restore, verify) and the jobs that carry one (their loads,
    an incremental offer) need it: found by id in any store, its node
    checked, its columns made into an sf_image_t
    =========================================================================
*/
#ifndef SF_IMGREC_H_INCLUDED
#define SF_IMGREC_H_INCLUDED

//  The image a command names, as the store has it
typedef struct {
    char store [16];
    char id [600];
    char sha256 [80];
    uint64_t size;
    int64_t missing;
    char instance_uuid [256];
    char instance_name [256];
    char node [256];            //  of the job that made it, "" if forgotten
    char job_id [64];           //  the job that made it
    int64_t job_images;         //  images its job made
    int64_t xml;                //  1 if its job kept the guest's XML
} sf_imgrec_t;

//  Find the image id (in any store) for a command that would verb it
//  ("restore", "verify"). Returns 0 with *image filled, or -1 with err set
//  (no such image, or one in two stores: "cannot tell which to <verb>").
int
    sf_imgrec_find (sf_store_t *store, const char *id, const char *verb, sf_imgrec_t *image,
                    sf_err_t *err);

//  The node a command runs on: named ("" when the job that made the image
//  is forgotten and --node was not given) and known. 0, or -1 with err.
int
    sf_imgrec_check_node (sf_store_t *store, const char *node, sf_err_t *err);

//  A new sf_image_t of the columns store, id, path, size, sha256,
//  disk_target, format of stmt's row, from col on. Free it with
//  sf_imgrec_image_free.
sf_image_t *
    sf_imgrec_image (sqlite3_stmt *stmt, int col);

//  Free an sf_image_t from sf_imgrec_image (NULL: nothing). Nullifies
//  *image_p.
void
    sf_imgrec_image_free (sf_image_t **image_p);

//  Self test of this class
void
    sf_imgrec_test (bool verbose);

#endif
