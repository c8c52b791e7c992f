/*  =========================================================================
    sf_imgcheck - is an image a worker reports in a JobResult one that
    job made?

    Pure: reads only its arguments. A refused image fails its job (sf_jobs)
    and no image row is written, so retention can never delete it.
    =========================================================================
*/
#include "sf_sched_classes.h"

//  Longest part of a peer's string quoted in an error
#define QUOTE_MAX 200

//  Set err to the refusal of image: SF_EPROTO, the image's id, the job and
//  why (printf-style). Returns -1.

static int
s_refuse (const sf_imgcheck_job_t *job, const sf_image_t *image, sf_err_t *err,
          const char *format, ...) __attribute__ ((format (printf, 4, 5)));

static int
s_refuse (const sf_imgcheck_job_t *job, const sf_image_t *image, sf_err_t *err,
          const char *format, ...)
{
    char why [512];
    va_list args;
    va_start (args, format);
    vsnprintf (why, sizeof (why), format, args);
    va_end (args);
    return sf_err_set (err, SF_EPROTO, "worker reported image '%.*s' that is not job %s's: %s",
                       QUOTE_MAX, image && image->id? image->id: "", job->job_id, why);
}

static const char *
s_str (const char *text)
{
    return text? text: "";
}

static bool
s_is_hex (const char *text, size_t length)
{
    if (strlen (text) != length)
        return false;
    for (const char *p = text; *p; p++)
        if (!isxdigit ((unsigned char) *p))
            return false;
    return true;
}

//  A lowercase canonical uuid: 8-4-4-4-12 hex digits

static bool
s_is_uuid (const char *text)
{
    if (strlen (text) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = text [i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        }
        else
        if (!isdigit ((unsigned char) c) && !(c >= 'a' && c <= 'f'))
            return false;
    }
    return true;
}

//  The disk of instance whose target is target, or NULL

static const sf_disk_rec_t *
s_disk (const sf_instance_rec_t *instance, const char *target)
{
    for (size_t i = 0; i < instance->n_disks; i++)
        if (streq (instance->disks [i].target, target))
            return &instance->disks [i];
    return NULL;
}

//  The image name of an RBD spec "pool/name" or "pool/namespace/name"
//  (every part non-empty, no '@'), or NULL

static const char *
s_rbd_name (const char *spec)
{
    if (strchr (spec, '@') || *spec == '/')
        return NULL;
    int slashes = 0;
    for (const char *p = spec; *p; p++)
        if (*p == '/') {
            if (p [1] == '/' || p [1] == 0)
                return NULL;
            slashes++;
        }
    if (slashes < 1 || slashes > 2)
        return NULL;
    return strrchr (spec, '/') + 1;
}

static int
s_check_rbd (const sf_imgcheck_job_t *job, const sf_image_t *image,
             const sf_disk_rec_t *disk, sf_err_t *err)
{
    const char *id = s_str (image->id);
    if (!streq (job->strategy, "rbd") && !streq (job->strategy, "mixed"))
        return s_refuse (job, image, err, "strategy '%s' makes no RBD clones", job->strategy);
    if (!streq (disk->type, "rbd"))
        return s_refuse (job, image, err, "disk '%s' is not on RBD", disk->target);
    const char *name = s_rbd_name (id);
    if (!name)
        return s_refuse (job, image, err, "an RBD image id is pool/name");
    char parent [256];
    if (!sf_naming_is_clone (name, job->catalog_id, job->job_id, parent, sizeof (parent)))
        return s_refuse (job, image, err, "'%.*s' is not the name of a clone this job makes",
                         QUOTE_MAX, name);
    const char *source = s_rbd_name (s_str (disk->source));
    if (!source || !streq (parent, source))
        return s_refuse (job, image, err, "it is a clone of '%.*s', not of disk '%s''s "
                         "image '%s'", QUOTE_MAX, parent, disk->target, s_str (disk->source));
    char path [600];
    snprintf (path, sizeof (path), "rbd:%s", id);
    if (!streq (s_str (image->path), path))
        return s_refuse (job, image, err, "its path is not '%s'", path);
    if (!streq (s_str (image->format), "raw"))
        return s_refuse (job, image, err, "an RBD clone's format is raw");
    const char *sha256 = s_str (image->sha256);
    if (*sha256 && !s_is_hex (sha256, 64))
        return s_refuse (job, image, err, "sha256 is not 64 hex digits");
    return 0;
}

static int
s_check_dir (const sf_imgcheck_job_t *job, const sf_image_t *image, sf_err_t *err)
{
    const char *id = s_str (image->id);
    const char *path = s_str (image->path);
    if (!s_is_uuid (id))
        return s_refuse (job, image, err, "a dir image's id is a lowercase uuid");
    char tail [64];
    snprintf (tail, sizeof (tail), "/%s.qcow2", id);
    size_t length = strlen (path);
    if (*path != '/' || strstr (path, "..") || length <= strlen (tail)
    ||  !streq (path + length - strlen (tail), tail))
        return s_refuse (job, image, err, "its path is not an absolute path without '..' "
                         "ending in '%s'", tail + 1);
    if (!streq (s_str (image->format), "qcow2"))
        return s_refuse (job, image, err, "a dir image's format is qcow2");
    if (image->size == 0)
        return s_refuse (job, image, err, "its size is 0");
    if (!s_is_hex (s_str (image->sha256), 64))
        return s_refuse (job, image, err, "sha256 is not 64 hex digits");
    return 0;
}

//  Whether the node's store (Hello.store) allows image store kind: a store
//  named "<kind>@<node>" (the worker's default) must be of that kind

static bool
s_node_has_store (const char *node_store, const char *kind)
{
    const char *at = node_store? strchr (node_store, '@'): NULL;
    if (!at)
        return true;
    return strlen (kind) == (size_t) (at - node_store)
        && strncmp (node_store, kind, strlen (kind)) == 0;
}

//  A Glance image (worker/sf_imgstore_glance.c): its id a lowercase uuid,
//  its path <Glance's http(s) URL>/v2/images/<id>, a qcow2 with a sha256

static int
s_check_glance (const sf_imgcheck_job_t *job, const sf_image_t *image, sf_err_t *err)
{
    const char *id = s_str (image->id);
    const char *path = s_str (image->path);
    if (!s_is_uuid (id))
        return s_refuse (job, image, err, "a Glance image's id is a lowercase uuid");
    char tail [64];
    snprintf (tail, sizeof (tail), "/v2/images/%s", id);
    size_t length = strlen (path);
    if ((strncmp (path, "http://", 7) && strncmp (path, "https://", 8))
    ||  length <= strlen (tail) || !streq (path + length - strlen (tail), tail))
        return s_refuse (job, image, err, "its path is not an http(s) URL ending in '%s'",
                         tail + 1);
    if (!streq (s_str (image->format), "qcow2"))
        return s_refuse (job, image, err, "a Glance image's format is qcow2");
    if (image->size == 0)
        return s_refuse (job, image, err, "its size is 0");
    if (!s_is_hex (s_str (image->sha256), 64))
        return s_refuse (job, image, err, "sha256 is not 64 hex digits");
    return 0;
}

static int
s_check_one (const sf_imgcheck_job_t *job, const sf_image_t *image,
             const char **seen, size_t n_seen, sf_err_t *err)
{
    if (!image || !image->id || !*image->id)
        return s_refuse (job, image, err, "it has no id");
    if (!job->instance)
        return s_refuse (job, image, err, "its node's inventory has no instance of the job");
    const char *target = s_str (image->disk_target);
    const sf_disk_rec_t *disk = s_disk (job->instance, target);
    if (!disk)
        return s_refuse (job, image, err, "disk '%.*s' is not one of instance '%s''s disks",
                         QUOTE_MAX, target, job->instance->name);
    for (size_t i = 0; i < n_seen; i++)
        if (streq (seen [i], target))
            return s_refuse (job, image, err, "disk '%s' has another image in the result",
                             target);
    if (image->size > INT64_MAX)
        return s_refuse (job, image, err, "its size is out of range");
    const char *store = s_str (image->store);
    if (streq (store, "rbd"))
        return s_check_rbd (job, image, disk, err);
    if (streq (store, "dir") && s_node_has_store (job->node_store, store))
        return s_check_dir (job, image, err);
    if (streq (store, "glance") && s_node_has_store (job->node_store, store))
        return s_check_glance (job, image, err);
    return s_refuse (job, image, err, "store '%.*s' is neither 'rbd' nor the node's "
                     "image store '%s'", QUOTE_MAX, store, s_str (job->node_store));
}

int
sf_imgcheck_images (const sf_imgcheck_job_t *job, sf_image_t **images, size_t n,
                    sf_err_t *err)
{
    assert (job && job->catalog_id && job->job_id && job->strategy);
    assert (images || n == 0);
    const char **seen = (const char **) calloc (n + 1, sizeof (char *));
    assert (seen);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = s_check_one (job, images [i], seen, i, err);
        if (rc == 0)
            seen [i] = images [i]->disk_target;
    }
    free (seen);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self test

#define CAT "0123456789abcdef"
#define UUID "0f8e6b1c-1a2b-4c3d-8e9f-0123456789ab"

//  One case: an image and whether it is accepted (NULL) or the words the
//  refusal must contain
typedef struct {
    const char *name;
    const char *strategy;
    const char *store, *id, *path, *sha256, *target, *format;
    uint64_t size;
    const char *refusal;
} imgcase_t;

#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define CLONE "rbd/vm2-snapfleet-" CAT "-J7"

static const imgcase_t s_cases [] = {
    { "dir ok", "file-cold", "dir", UUID, "/images/" UUID ".qcow2", SHA, "vda", "qcow2", 5,
      NULL },
    { "dir of the rbd disk (export)", "rbd", "dir", UUID, "/images/" UUID ".qcow2", SHA,
      "vdb", "qcow2", 5, NULL },
    { "rbd clone ok", "rbd", "rbd", CLONE, "rbd:" CLONE, "", "vdb", "raw", 5, NULL },
    { "rbd clone in a namespace", "mixed", "rbd", "pool/ns/vm2-snapfleet-" CAT "-J7",
      "rbd:pool/ns/vm2-snapfleet-" CAT "-J7", "", "vdb", "raw", 5, NULL },
    { "no id", "file-cold", "dir", "", "/images/x.qcow2", SHA, "vda", "qcow2", 5, "no id" },
    { "unknown disk", "file-cold", "dir", UUID, "/images/" UUID ".qcow2", SHA, "vdz", "qcow2",
      5, "disk 'vdz' is not one of instance 'vm1''s disks" },
    { "other store", "file-cold", "glance", UUID, "/images/" UUID ".qcow2", SHA, "vda",
      "qcow2", 5, "store 'glance' is neither" },
    { "dir id not a uuid", "file-cold", "dir", "img-1", "/images/img-1.qcow2", SHA, "vda",
      "qcow2", 5, "lowercase uuid" },
    { "dir id uppercase", "file-cold", "dir", "0F8E6B1C-1A2B-4C3D-8E9F-0123456789AB",
      "/images/0F8E6B1C-1A2B-4C3D-8E9F-0123456789AB.qcow2", SHA, "vda", "qcow2", 5,
      "lowercase uuid" },
    { "dir path with ..", "file-cold", "dir", UUID, "/images/../etc/" UUID ".qcow2", SHA,
      "vda", "qcow2", 5, "without '..'" },
    { "dir path another file", "file-cold", "dir", UUID, "/var/lib/libvirt/images/vm1.qcow2",
      SHA, "vda", "qcow2", 5, "ending in '" UUID ".qcow2'" },
    { "dir path relative", "file-cold", "dir", UUID, UUID ".qcow2", SHA, "vda", "qcow2", 5,
      "absolute" },
    { "dir path suffix only", "file-cold", "dir", UUID, "/images/x" UUID ".qcow2", SHA, "vda",
      "qcow2", 5, "ending in" },
    { "dir bad sha256", "file-cold", "dir", UUID, "/images/" UUID ".qcow2", "cafe", "vda",
      "qcow2", 5, "sha256" },
    { "dir size 0", "file-cold", "dir", UUID, "/images/" UUID ".qcow2", SHA, "vda", "qcow2", 0,
      "size is 0" },
    { "size out of range", "file-cold", "dir", UUID, "/images/" UUID ".qcow2", SHA, "vda",
      "qcow2", UINT64_MAX, "out of range" },
    { "dir format raw", "file-cold", "dir", UUID, "/images/" UUID ".qcow2", SHA, "vda", "raw",
      5, "format is qcow2" },
    { "rbd from a file strategy", "file-cold", "rbd", CLONE, "rbd:" CLONE, "", "vdb", "raw", 5,
      "makes no RBD clones" },
    { "rbd of a file disk", "rbd", "rbd", "rbd/a-snapfleet-" CAT "-J7",
      "rbd:rbd/a-snapfleet-" CAT "-J7", "", "vda", "raw", 5, "not on RBD" },
    { "rbd the source image itself", "rbd", "rbd", "rbd/vm2", "rbd:rbd/vm2", "", "vdb", "raw",
      5, "is not the name of a clone" },
    { "rbd another job's clone", "rbd", "rbd", "rbd/vm2-snapfleet-" CAT "-J8",
      "rbd:rbd/vm2-snapfleet-" CAT "-J8", "", "vdb", "raw", 5, "not the name of a clone" },
    { "rbd another catalogue's clone", "rbd", "rbd", "rbd/vm2-snapfleet-fedcba9876543210-J7",
      "rbd:rbd/vm2-snapfleet-fedcba9876543210-J7", "", "vdb", "raw", 5,
      "not the name of a clone" },
    { "rbd a clone of another image", "rbd", "rbd", "rbd/vm9-snapfleet-" CAT "-J7",
      "rbd:rbd/vm9-snapfleet-" CAT "-J7", "", "vdb", "raw", 5,
      "clone of 'vm9', not of disk 'vdb''s image 'rbd/vm2'" },
    { "rbd no pool", "rbd", "rbd", "vm2-snapfleet-" CAT "-J7", "rbd:vm2-snapfleet-" CAT "-J7",
      "", "vdb", "raw", 5, "pool/name" },
    { "rbd snapshot spec", "rbd", "rbd", CLONE "@s", "rbd:" CLONE "@s", "", "vdb", "raw", 5,
      "pool/name" },
    { "rbd other path", "rbd", "rbd", CLONE, "/images/x", "", "vdb", "raw", 5,
      "path is not 'rbd:" CLONE "'" },
    { "rbd bad sha256", "rbd", "rbd", CLONE, "rbd:" CLONE, "xyz", "vdb", "raw", 5, "sha256" },
    { NULL }
};

static void
s_test_case (const imgcase_t *test, const sf_instance_rec_t *instance, bool verbose)
{
    sf_err_t err = SF_ERR_INIT;
    sf_image_t image = SF_IMAGE_INIT;
    image.store = (char *) test->store, image.id = (char *) test->id;
    image.path = (char *) test->path, image.sha256 = (char *) test->sha256;
    image.disk_target = (char *) test->target, image.format = (char *) test->format;
    image.size = test->size;
    sf_image_t *images [] = { &image };
    sf_imgcheck_job_t job = { .catalog_id = CAT, .job_id = "J7", .strategy = test->strategy,
                              .node_store = "dir@n1", .instance = instance };
    int rc = sf_imgcheck_images (&job, images, 1, &err);
    if (verbose || (rc == 0) != (test->refusal == NULL))
        printf ("\n    %s: %s", test->name, rc? err.text: "accepted");
    if (test->refusal) {
        assert (rc == -1 && err.code == SF_EPROTO);
        char head [128];
        snprintf (head, sizeof (head), "worker reported image '%s' that is not job J7's: ",
                  test->id);
        assert (strncmp (err.text, head, strlen (head)) == 0);
        assert (strstr (err.text, test->refusal));
    }
    else
        assert (rc == 0);
}

void
sf_imgcheck_test (bool verbose)
{
    printf (" * sf_imgcheck: ");
    //  @selftest
    sf_disk_rec_t disks [] = {
        { .target = "vda", .type = "file", .source = "/img/a.qcow2" },
        { .target = "vdb", .type = "rbd", .source = "rbd/vm2" }
    };
    sf_instance_rec_t instance = { .uuid = "u1", .name = "vm1", .node = "n1",
                                   .n_disks = 2, .disks = disks };
    for (const imgcase_t *test = s_cases; test->name; test++)
        s_test_case (test, &instance, verbose);

    //  Two images: one per disk is fine, two for the same disk are not
    sf_err_t err = SF_ERR_INIT;
    sf_image_t one = SF_IMAGE_INIT, two = SF_IMAGE_INIT;
    one.store = "dir", one.id = UUID, one.path = "/images/" UUID ".qcow2", one.sha256 = SHA;
    one.disk_target = "vda", one.format = "qcow2", one.size = 1;
    two = one;
    two.id = "1f8e6b1c-1a2b-4c3d-8e9f-0123456789ab";
    two.path = "/images/1f8e6b1c-1a2b-4c3d-8e9f-0123456789ab.qcow2";
    sf_image_t *images [] = { &one, &two };
    sf_imgcheck_job_t job = { .catalog_id = CAT, .job_id = "J7", .strategy = "file-cold",
                              .node_store = NULL, .instance = &instance };
    assert (sf_imgcheck_images (&job, images, 2, &err) == -1);
    assert (strstr (err.text, "disk 'vda' has another image in the result"));
    assert (strstr (err.text, "image '1f8e6b1c-"));
    two.disk_target = "vdb";
    assert (sf_imgcheck_images (&job, images, 2, &err) == 0);
    assert (sf_imgcheck_images (&job, NULL, 0, &err) == 0);
    //  A node whose store is of another kind; an instance not reported
    job.node_store = "glance@n1";
    assert (sf_imgcheck_images (&job, images, 1, &err) == -1);
    assert (strstr (err.text, "image store 'glance@n1'"));
    job.node_store = "fast-store";      //  A name that says no kind
    assert (sf_imgcheck_images (&job, images, 1, &err) == 0);
    //  A Glance image: on a glance node only, its path Glance's URL of it
    sf_image_t glance = one;
    glance.store = "glance";
    glance.path = "http://127.0.0.1:9292/v2/images/" UUID;
    sf_image_t *glances [] = { &glance };
    job.node_store = "glance@n1";
    assert (sf_imgcheck_images (&job, glances, 1, &err) == 0);
    job.node_store = "dir@n1";
    assert (sf_imgcheck_images (&job, glances, 1, &err) == -1);
    assert (strstr (err.text, "neither 'rbd' nor the node's image store 'dir@n1'"));
    job.node_store = "glance@n1";
    glance.path = "/images/" UUID ".qcow2";
    assert (sf_imgcheck_images (&job, glances, 1, &err) == -1);
    assert (strstr (err.text, "its path is not an http(s) URL ending in 'v2/images/"));
    glance.path = "https://g/v2/images/" UUID;
    glance.format = "raw";
    assert (sf_imgcheck_images (&job, glances, 1, &err) == -1);
    assert (strstr (err.text, "a Glance image's format is qcow2"));
    glance.format = "qcow2";
    glance.id = "img-1";
    assert (sf_imgcheck_images (&job, glances, 1, &err) == -1);
    assert (strstr (err.text, "a Glance image's id is a lowercase uuid"));
    job.node_store = "fast-store";
    job.instance = NULL;
    assert (sf_imgcheck_images (&job, images, 1, &err) == -1);
    assert (strstr (err.text, "inventory has no instance of the job"));
    //  A missing image entry or a NULL id
    sf_image_t *none [] = { NULL };
    job.instance = &instance;
    assert (sf_imgcheck_images (&job, none, 1, &err) == -1);
    assert (strstr (err.text, "image '' that is not job J7's: it has no id"));
    //  @end
    printf ("OK\n");
}
