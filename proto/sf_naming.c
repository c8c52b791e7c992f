/*  =========================================================================
    sf_naming - the names of the objects snapfleet makes

    See sf_naming.h for the scheme.
    =========================================================================
*/
#include "sf_core.h"
#include <sys/random.h>

#define S_TAG "snapfleet-"

bool
sf_naming_id_valid (const char *id)
{
    if (!id || strlen (id) != SF_NAMING_ID_LEN)
        return false;
    for (const char *p = id; *p; p++)
        if (!isdigit ((unsigned char) *p) && !(*p >= 'a' && *p <= 'f'))
            return false;
    return true;
}

int
sf_naming_id_new (char id [SF_NAMING_ID_LEN + 1], sf_err_t *err)
{
    unsigned char bytes [SF_NAMING_ID_LEN / 2];
    if (getrandom (bytes, sizeof (bytes), 0) != (ssize_t) sizeof (bytes))
        return sf_err_set (err, SF_EIO, "cannot read random bytes: %s",
                           strerror (errno));
    for (size_t i = 0; i < sizeof (bytes); i++)
        snprintf (id + 2 * i, 3, "%02x", bytes [i]);
    return 0;
}

static int
s_check (const char *catalog_id, const char *job_id, sf_err_t *err)
{
    if (!sf_naming_id_valid (catalog_id))
        return sf_err_set (err, SF_EINVAL, "catalogue id '%s' is not %d hex digits",
                           catalog_id ? catalog_id : "", SF_NAMING_ID_LEN);
    if (!sf_name_is_safe (job_id))
        return sf_err_set (err, SF_EINVAL, "job id is not a safe identifier");
    return 0;
}

int
sf_naming_snap (char *buf, size_t size, const char *catalog_id, const char *job_id,
                sf_err_t *err)
{
    assert (buf);
    if (s_check (catalog_id, job_id, err))
        return -1;
    int len = snprintf (buf, size, S_TAG "%s-%s", catalog_id, job_id);
    if (len < 0 || (size_t) len >= size)
        return sf_err_set (err, SF_EINVAL, "snapshot name for job '%s' is too long", job_id);
    return 0;
}

int
sf_naming_clone (char *buf, size_t size, const char *image, const char *catalog_id,
                 const char *job_id, sf_err_t *err)
{
    assert (buf);
    if (s_check (catalog_id, job_id, err))
        return -1;
    if (!image || !*image)
        return sf_err_set (err, SF_EINVAL, "clone of an image without a name");
    int len = snprintf (buf, size, "%s-" S_TAG "%s-%s", image, catalog_id, job_id);
    if (len < 0 || (size_t) len >= size)
        return sf_err_set (err, SF_EINVAL, "clone name of '%s' for job '%s' is too long",
                           image, job_id);
    return 0;
}

//  True if tail is "<catalog_id>-<job>" with job_id's value (or any safe
//  identifier if job_id is NULL)

static bool
s_tail_matches (const char *tail, const char *catalog_id, const char *job_id)
{
    if (!sf_naming_id_valid (catalog_id)
    ||  strncmp (tail, catalog_id, SF_NAMING_ID_LEN)
    ||  tail [SF_NAMING_ID_LEN] != '-')
        return false;
    const char *job = tail + SF_NAMING_ID_LEN + 1;
    return job_id ? streq (job, job_id) && sf_name_is_safe (job) : sf_name_is_safe (job);
}

bool
sf_naming_is_snap (const char *snap, const char *catalog_id, const char *job_id)
{
    if (!snap || strncmp (snap, S_TAG, strlen (S_TAG)))
        return false;
    return s_tail_matches (snap + strlen (S_TAG), catalog_id, job_id);
}

bool
sf_naming_is_clone (const char *clone, const char *catalog_id, const char *job_id,
                    char *parent, size_t parent_size)
{
    if (!clone)
        return false;
    const char *tag = NULL;
    for (const char *p = strstr (clone, "-" S_TAG); p; p = strstr (p + 1, "-" S_TAG))
        tag = p;
    if (!tag || tag == clone
    ||  !s_tail_matches (tag + 1 + strlen (S_TAG), catalog_id, job_id))
        return false;
    if (parent && parent_size)
        snprintf (parent, parent_size, "%.*s", (int) (tag - clone), clone);
    return true;
}

bool
sf_naming_domain_valid (const char *name)
{
    return sf_name_is_safe (name) && strncmp (name, S_TAG, strlen (S_TAG)) != 0;
}

int
sf_naming_verify_domain (char *buf, size_t size, const char *job_id, sf_err_t *err)
{
    assert (buf && size);
    if (!sf_name_is_safe (job_id))
        return sf_err_set (err, SF_EINVAL, "job id is not a safe name");
    int length = snprintf (buf, size, S_TAG "verify-%s", job_id);
    if (length < 0 || (size_t) length >= size)
        return sf_err_set (err, SF_EINVAL, "verify domain name of job '%.64s' is too long",
                           job_id);
    return 0;
}

bool
sf_naming_is_verify_domain (const char *name)
{
    const char *prefix = S_TAG "verify-";
    return name && strncmp (name, prefix, strlen (prefix)) == 0
        && sf_name_is_safe (name + strlen (prefix));
}

void
sf_naming_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_naming: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    char id [SF_NAMING_ID_LEN + 1], other [SF_NAMING_ID_LEN + 1];
    assert (sf_naming_id_new (id, &err) == 0 && sf_naming_id_valid (id));
    assert (sf_naming_id_new (other, &err) == 0 && !streq (id, other));
    assert (!sf_naming_id_valid ("0123456789ABCDEF"));
    assert (!sf_naming_id_valid ("0123456789abcde"));
    assert (!sf_naming_id_valid (NULL));

    const char *cat = "0123456789abcdef";
    char snap [128], clone [128], parent [64];
    assert (sf_naming_snap (snap, sizeof (snap), cat, "J7", &err) == 0);
    assert (streq (snap, "snapfleet-0123456789abcdef-J7"));
    assert (sf_naming_is_snap (snap, cat, "J7") && sf_naming_is_snap (snap, cat, NULL));
    assert (!sf_naming_is_snap (snap, cat, "J71") && !sf_naming_is_snap (snap, other, NULL));
    assert (!sf_naming_is_snap ("snapfleet-J7", cat, NULL));
    assert (!sf_naming_is_snap ("daily-0123456789abcdef-J7", cat, NULL));
    assert (!sf_naming_is_snap ("snapfleet-0123456789abcdef-", cat, NULL));
    assert (!sf_naming_is_snap ("snapfleet-0123456789abcdef-a/b", cat, NULL));
    assert (sf_naming_snap (snap, sizeof (snap), "xyz", "J7", &err) == -1
            && err.code == SF_EINVAL);
    assert (sf_naming_snap (snap, sizeof (snap), cat, "../J7", &err) == -1);
    assert (sf_naming_snap (snap, 12, cat, "J7", &err) == -1 && strstr (err.text, "too long"));

    assert (sf_naming_clone (clone, sizeof (clone), "vm-1-snapfleet-x", cat, "J7", &err) == 0);
    assert (streq (clone, "vm-1-snapfleet-x-snapfleet-0123456789abcdef-J7"));
    assert (sf_naming_is_clone (clone, cat, "J7", parent, sizeof (parent))
            && streq (parent, "vm-1-snapfleet-x"));
    assert (sf_naming_is_clone (clone, cat, NULL, NULL, 0));
    assert (!sf_naming_is_clone (clone, cat, "J8", NULL, 0));
    assert (!sf_naming_is_clone (clone, other, NULL, NULL, 0));
    assert (!sf_naming_is_clone ("vm1", cat, NULL, NULL, 0));
    assert (!sf_naming_is_clone ("vm1-snapfleet-J7", cat, NULL, NULL, 0));
    assert (!sf_naming_is_clone ("-snapfleet-0123456789abcdef-J7", cat, NULL, NULL, 0));
    assert (!sf_naming_is_clone ("snapfleet-0123456789abcdef-J7", cat, NULL, NULL, 0));
    assert (sf_naming_clone (clone, sizeof (clone), "", cat, "J7", &err) == -1);

    assert (sf_naming_domain_valid ("web-1.copy") && !sf_naming_domain_valid ("web 1"));
    assert (!sf_naming_domain_valid ("snapfleet-verify-J7") && !sf_naming_domain_valid (""));
    assert (!sf_naming_domain_valid (NULL) && !sf_naming_domain_valid ("../x"));
    assert (sf_naming_verify_domain (snap, sizeof (snap), "J7", &err) == 0
            && streq (snap, "snapfleet-verify-J7"));
    assert (sf_naming_verify_domain (snap, sizeof (snap), "a/b", &err) == -1);
    assert (sf_naming_verify_domain (snap, 8, "J7", &err) == -1);
    assert (sf_naming_is_verify_domain ("snapfleet-verify-J7"));
    assert (!sf_naming_is_verify_domain ("snapfleet-verify-") && !sf_naming_is_verify_domain ("vm1"));
    //  @end
    printf ("OK\n");
}
