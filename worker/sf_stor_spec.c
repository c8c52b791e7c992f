/*  =========================================================================
    sf_stor_spec - block-storage interface: image specs ("pool/image",
    "pool/namespace/image") and the object lines of the leftovers journal
    ("snap POOL/IMAGE@SNAP", "clone POOL/IMAGE"); pure text, no cluster

    Part of the sf_stor class (sf_stor.h); its self test is sf_stor's.
    =========================================================================
*/
#include "sf_worker_classes.h"

static bool
s_name_ok (const char *name, size_t max)
{
    size_t len = strlen (name);
    if (len == 0 || len >= max)
        return false;
    for (const char *c = name; *c; c++)
        if (*c == '/' || *c == '@' || *c == '\\' || (unsigned char) *c < 0x21)
            return false;
    return true;
}

int
sf_stor_spec_parse (const char *text, sf_stor_spec_t *spec, sf_err_t *err)
{
    assert (text && spec);
    memset (spec, 0, sizeof (*spec));
    char copy [1024];
    if (strlen (text) >= sizeof (copy))
        return sf_err_set (err, SF_EINVAL, "rbd image name is too long");
    snprintf (copy, sizeof (copy), "%s", text);
    char *parts [4] = { NULL };
    int count = 0;
    char *save = NULL;
    for (char *part = strtok_r (copy, "/", &save); part && count < 4;
         part = strtok_r (NULL, "/", &save))
        parts [count++] = part;
    const char *pool = parts [0];
    const char *nspace = count == 3 ? parts [1] : "";
    const char *image = count == 3 ? parts [2] : parts [1];
    if ((count != 2 && count != 3) || strstr (text, "//") || text [strlen (text) - 1] == '/'
    ||  !s_name_ok (pool, sizeof (spec->pool)) || !s_name_ok (image, sizeof (spec->image))
    ||  (*nspace && !s_name_ok (nspace, sizeof (spec->nspace))))
        return sf_err_set (err, SF_EINVAL, "'%s' is not an rbd image name of the form "
                           "pool/image or pool/namespace/image", text);
    snprintf (spec->pool, sizeof (spec->pool), "%s", pool);
    snprintf (spec->nspace, sizeof (spec->nspace), "%s", nspace);
    snprintf (spec->image, sizeof (spec->image), "%s", image);
    return 0;
}

const char *
sf_stor_spec_str (const sf_stor_spec_t *spec, char *buf, size_t size)
{
    assert (spec && buf);
    if (*spec->nspace)
        snprintf (buf, size, "%s/%s/%s", spec->pool, spec->nspace, spec->image);
    else
        snprintf (buf, size, "%s/%s", spec->pool, spec->image);
    return buf;
}

const char *
sf_stor_obj_str (const sf_stor_obj_t *obj, char *buf, size_t size)
{
    assert (obj && buf);
    char spec [520];
    sf_stor_spec_str (&obj->spec, spec, sizeof (spec));
    if (obj->kind == SF_STOR_CLONE)
        snprintf (buf, size, "clone %s", spec);
    else
        snprintf (buf, size, "snap %s@%s", spec, obj->snap);
    return buf;
}

int
sf_stor_obj_parse (const char *line, sf_stor_obj_t *obj, sf_err_t *err)
{
    assert (line && obj);
    memset (obj, 0, sizeof (*obj));
    char text [1024];
    snprintf (text, sizeof (text), "%s", line);
    text [strcspn (text, "\r\n")] = 0;
    char *name = strchr (text, ' ');
    if (name)
        *name++ = 0;
    if (name && streq (text, "clone")) {
        obj->kind = SF_STOR_CLONE;
        return sf_stor_spec_parse (name, &obj->spec, err);
    }
    char *snap = name ? strchr (name, '@') : NULL;
    if (snap && streq (text, "snap")) {
        *snap++ = 0;
        obj->kind = SF_STOR_SNAP;
        if (!s_name_ok (snap, sizeof (obj->snap)))
            return sf_err_set (err, SF_EINVAL, "bad snapshot name in '%s'", line);
        snprintf (obj->snap, sizeof (obj->snap), "%s", snap);
        return sf_stor_spec_parse (name, &obj->spec, err);
    }
    return sf_err_set (err, SF_EINVAL, "'%s' is not 'snap POOL/IMAGE@SNAP' or "
                       "'clone POOL/IMAGE'", line);
}

//  qemu's rbd: filename syntax separates options with ':', so a ':' or
//  '\' inside a value is escaped with '\'

static void
s_uri_append (char **uri, const char *key, const char *value)
{
    size_t len = strlen (*uri);
    char *grown = (char *) realloc (*uri, len + strlen (key) + 2 * strlen (value) + 2);
    assert (grown);
    char *out = grown + len;
    out += sprintf (out, "%s", key);
    for (const char *in = value; *in; in++) {
        if (*in == ':' || *in == '\\')
            *out++ = '\\';
        *out++ = *in;
    }
    *out = 0;
    *uri = grown;
}

char *
sf_stor_snap_uri (sf_stor_t *self, const sf_stor_spec_t *spec, const char *snap)
{
    assert (self && spec);
    const sf_stor_cfg_t *cfg = sf_stor_cfg (self);
    char text [520];
    char *uri = strdup ("rbd:");
    s_uri_append (&uri, "", sf_stor_spec_str (spec, text, sizeof (text)));
    if (snap)
        s_uri_append (&uri, "@", snap);
    s_uri_append (&uri, ":id=", cfg->client_id);
    if (*cfg->ceph_conf)
        s_uri_append (&uri, ":conf=", cfg->ceph_conf);
    if (*cfg->keyring)
        s_uri_append (&uri, ":keyring=", cfg->keyring);
    return uri;
}

char *
sf_stor_image_uri (sf_stor_t *self, const sf_stor_spec_t *spec)
{
    return sf_stor_snap_uri (self, spec, NULL);
}
